import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Context } from '../../src/core/context.js';
import { OptimizerPool } from '../../src/daemon/optimizer-pool.js';
import { claimNext, processClaimed } from '../../src/jobs/optimize.js';
import { reprocess } from '../../src/jobs/reprocess.js';
import { closeStores, openStores } from '../helpers/daemon.js';
import { seedUploaded } from '../helpers/seed.js';
import { cleanup, FIXTURES, testConfig, testEnv } from '../helpers/stack.js';

const env = testEnv('optimizer');
let ctx: Context;

beforeAll(async () => {
  ctx = await openStores(env);
});
afterAll(async () => {
  await closeStores(ctx, env);
});

const fixture = (name: string) => readFileSync(join(FIXTURES, name));

async function processOne(c: Context, owner = 'test-worker') {
  const claimed = await claimNext(c, owner);
  expect(claimed).not.toBeNull();
  return processClaimed(c, claimed!, owner);
}

describe('optimizer pipeline on the real stack', () => {
  it('turns the 12 MP phone photo into an upright portrait WebP within 1080x1920 with no EXIF or GPS', async () => {
    const rec = await seedUploaded(ctx, 'alice', fixture('coffee-phone-4032x3024.jpg'), 'image/jpeg');
    const r = await processOne(ctx);
    expect(r.outcome).toBe('ready');
    const done = (await ctx.registry.get(rec._id))!;
    expect(done).toMatchObject({
      status: 'ready',
      gallery_key: `gallery/alice/${rec._id}.webp`,
      thumb_key: `gallery/alice/${rec._id}.thumb.webp`,
      optimizer_version: expect.any(String),
    });
    expect(done.lease_owner).toBeUndefined();
    const gallery = (await ctx.objects.read(env.BUCKET_HOT!, done.gallery_key!, 10e6))!;
    const meta = await sharp(gallery).metadata();
    expect(meta.format).toBe('webp');
    expect([meta.width, meta.height]).toEqual([done.gallery_width, done.gallery_height]);
    expect(meta.width!).toBeLessThanOrEqual(1080);
    expect(meta.height!).toBeLessThanOrEqual(1920);
    expect(meta.height!).toBeGreaterThan(meta.width!);
    expect(meta.exif).toBeUndefined();
    expect(meta.xmp).toBeUndefined();
    // exiftool (installed by .ci/run) sees no GPS and no camera data
    const tags = JSON.parse(execFileSync('exiftool', ['-j', '-G', '-'], { input: gallery }).toString())[0];
    expect(Object.keys(tags).filter((k) => /GPS|Make|Model|Artist|DateTimeOriginal/i.test(k))).toEqual([]);
    const thumb = await sharp((await ctx.objects.read(env.BUCKET_HOT!, done.thumb_key!, 10e6))!).metadata();
    expect(Math.max(thumb.width!, thumb.height!)).toBe(320);
  });

  it('keeps the transparency of a PNG with alpha', async () => {
    const rec = await seedUploaded(ctx, 'alice', fixture('chelsea-alpha.png'), 'image/png');
    expect((await processOne(ctx)).outcome).toBe('ready');
    const done = (await ctx.registry.get(rec._id))!;
    const { data, info } = await sharp((await ctx.objects.read(env.BUCKET_HOT!, done.gallery_key!, 10e6))!).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    let minAlpha = 255;
    for (let i = 3; i < data.length; i += 4) minAlpha = Math.min(minAlpha, data[i]!);
    expect(minAlpha).toBeLessThan(255);
  });

  it('fails a truncated file with a readable reason, and the good file queued after it becomes ready', async () => {
    const bad = await seedUploaded(ctx, 'bob', fixture('truncated.jpg'), 'image/jpeg', new Date(Date.now() - 2000));
    const good = await seedUploaded(ctx, 'bob', fixture('rocket.jpg'), 'image/jpeg', new Date(Date.now() - 1000));
    const pool = new OptimizerPool(ctx, { concurrency: 1, pollMs: 50 });
    pool.start();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const [b, g] = await Promise.all([ctx.registry.get(bad._id), ctx.registry.get(good._id)]);
      if (b!.status === 'failed' && g!.status === 'ready') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await pool.stop();
    const b = (await ctx.registry.get(bad._id))!;
    expect(b.status).toBe('failed');
    expect(b.reason).toMatch(/corrupt|truncated|premature|invalid/i);
    expect((await ctx.registry.get(good._id))!.status).toBe('ready');
  });

  it('lets two workers racing over the same files process each exactly once', async () => {
    const u = `race${Date.now()}`;
    const files = await Promise.all(Array.from({ length: 8 }, () => seedUploaded(ctx, u, fixture('chelsea.png'), 'image/png')));
    const seen: string[] = [];
    const worker = async (owner: string) => {
      for (;;) {
        const rec = await claimNext(ctx, owner);
        if (!rec) return;
        seen.push(rec._id);
        expect((await processClaimed(ctx, rec, owner)).outcome).toBe('ready');
      }
    };
    await Promise.all([worker('w1'), worker('w2')]);
    expect(seen.sort()).toEqual(files.map((f) => f._id).sort());
    for (const f of files) expect((await ctx.registry.get(f._id))!).toMatchObject({ status: 'ready', attempts: 1 });
  });

  it('takes up a crashed worker’s file again once its lease has expired', async () => {
    const rec = await seedUploaded(ctx, 'carol', fixture('chelsea.png'), 'image/png');
    const claimed = await claimNext(ctx, 'crashed-worker');
    expect(claimed!._id).toBe(rec._id);
    expect(await claimNext(ctx, 'other')).toBeNull(); // leased
    const later = Object.create(ctx, { clock: { value: { now: () => new Date(Date.now() + 10 * 60_000) } } }) as Context;
    const again = await claimNext(later, 'other');
    expect(again).toMatchObject({ _id: rec._id, lease_owner: 'other', attempts: 2 });
    expect((await processClaimed(later, again!, 'other')).outcome).toBe('ready');
    // the crashed worker coming back cannot overwrite the result
    expect((await processClaimed(ctx, claimed!, 'crashed-worker')).outcome).toBe('lost');
  });
});

describe('reprocess', () => {
  it('--stale after a settings change touches exactly the stale files', async () => {
    const renv = testEnv('reprocess');
    const a = await openStores(renv);
    try {
      const files = await Promise.all(Array.from({ length: 3 }, () => seedUploaded(a, 'dan', fixture('chelsea.png'), 'image/png')));
      for (let i = 0; i < 3; i++) expect((await processOne(a)).outcome).toBe('ready');
      // Thumbnail size changes: everything made so far is stale.
      const b = new Context(testConfig({ ...renv, THUMBNAIL_SIZE: '200' }));
      try {
        const dry = await reprocess(b, { stale: true, dryRun: true });
        expect(dry.items.map((i) => i.outcome)).toEqual(['would-reprocess', 'would-reprocess', 'would-reprocess']);
        // One more file, made with the new settings, is not stale.
        await seedUploaded(b, 'dan', fixture('chelsea.png'), 'image/png');
        expect((await processOne(b)).outcome).toBe('ready');
        const r = await reprocess(b, { stale: true });
        expect(r.selected).toBe(3);
        expect(r.ready).toBe(3);
        expect(r.items.map((i) => i.file_id).sort()).toEqual(files.map((f) => f._id).sort());
        const thumb = await sharp((await b.objects.read(renv.BUCKET_HOT!, (await b.registry.get(files[0]!._id))!.thumb_key!, 1e7))!).metadata();
        expect(Math.max(thumb.width!, thumb.height!)).toBe(200);
        expect((await reprocess(b, { stale: true })).selected).toBe(0);
        // When the original has expired, it skips and says why.
        await b.objects.delete(renv.BUCKET_HOT!, files[0]!.s3_key);
        const c = new Context(testConfig({ ...renv, THUMBNAIL_SIZE: '240' }));
        try {
          const s = await reprocess(c, { stale: true, fileId: files[0]!._id });
          expect(s.items[0]).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/expired.*--from-gallery/) });
          const g = await reprocess(c, { stale: true, fileId: files[0]!._id, fromGallery: true });
          expect(g.items[0]!.outcome).toBe('ready');
        } finally {
          await c.close();
        }
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
      await cleanup(renv);
    }
  });
});
