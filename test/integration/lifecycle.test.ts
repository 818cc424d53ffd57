import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Context, fixedClock } from '../../src/core/context.js';
import { ConflictError } from '../../src/core/errors.js';
import { archiveRun } from '../../src/jobs/archive.js';
import { planPurge, purgeRun } from '../../src/jobs/purge.js';
import { rehydratePending, requestRehydrate } from '../../src/jobs/rehydrate.js';
import { ArchiveLog } from '../../src/storage/archive-log.js';
import { cli } from '../helpers/cli.js';
import { closeStores, openStores } from '../helpers/daemon.js';
import { allObjects, seedReady, sha } from '../helpers/seed.js';
import { stackEnv, testEnv } from '../helpers/stack.js';

const DAY = 24 * 3600 * 1000;
const t0 = new Date('2026-10-01T12:00:00Z');
const at = (days: number) => new Date(t0.getTime() + days * DAY);
const later = (ctx: Context, days: number) => Object.create(ctx, { clock: { value: fixedClock(at(days)) } }) as Context;

describe('archive-run and purge-run against versitygw', () => {
  const env = testEnv('lifecycle', { ARCHIVE_STORAGE_CLASS: 'STANDARD_IA' });
  let ctx: Context;
  beforeAll(async () => {
    ctx = await openStores(env);
  });
  afterAll(async () => {
    await closeStores(ctx, env);
  });

  it('archives exactly the files untouched for 30 days, verified, and frees the hot copies', async () => {
    const old = await seedReady(ctx, 'alice', 6, t0);
    const fresh = await seedReady(ctx, 'alice', 2, at(20));

    const dry = await archiveRun(later(ctx, 31), { dryRun: true });
    expect(dry).toMatchObject({ candidates: 6, bytes: 6 * 2048, dry_run: true });
    expect((await ctx.registry.get(old[0]!.rec._id))!.status).toBe('ready');

    const r = await archiveRun(later(ctx, 31), {});
    expect(r).toMatchObject({ archived: 6, failed: 0, bytes: 6 * 2048 });
    for (const { rec, sha256 } of old) {
      const f = (await ctx.registry.get(rec._id))!;
      expect(f).toMatchObject({ status: 'archived', is_archived: true, archive_s3_key: `archive/2026-11-01/alice/${rec._id}.webp` });
      expect(f.archive_timestamp).toBeInstanceOf(Date);
      expect(f.ttl_expire_at!.toISOString()).toBe(at(90).toISOString());
      expect(f.cleanup_keys).toBeUndefined();
      expect(await sha(ctx, env.BUCKET_ARCHIVE!, f.archive_s3_key!)).toBe(sha256);
      expect(await ctx.objects.head(env.BUCKET_HOT!, rec.gallery_key!)).toBeNull();
      expect(await ctx.objects.head(env.BUCKET_HOT!, rec.thumb_key!)).not.toBeNull(); // thumbnails stay hot
    }
    for (const { rec } of fresh) expect((await ctx.registry.get(rec._id))!.status).toBe('ready');
    const log = await new ArchiveLog(ctx.mongo).recent('archive');
    expect(log[0]).toMatchObject({ operation: 'archive', files_count: 6, total_bytes_freed: 6 * 2048, status: 'completed' });
    expect(log[0]!.s3_path_prefix).toBe(`s3://${env.BUCKET_ARCHIVE}/archive/2026-11-01/`);

    expect((await archiveRun(later(ctx, 31), {})).archived).toBe(0);
  });

  it('refuses a second concurrent run with a clear conflict', async () => {
    const lock = await ctx.runLocks.acquire('archive-run');
    try {
      await expect(archiveRun(later(ctx, 31), {})).rejects.toThrow(ConflictError);
      await expect(archiveRun(later(ctx, 31), {})).rejects.toThrow(/another archive-run is running/);
    } finally {
      await lock.release();
    }
  });

  it('rehydrates an instant-class file back to the hot bucket with a fresh access time and TTL', async () => {
    const { rec, sha256 } = (await seedReady(ctx, 'rita', 1, t0))[0]!;
    await archiveRun(later(ctx, 40), { user: 'rita' });
    const archived = (await ctx.registry.get(rec._id))!;
    await expect(requestRehydrate(ctx, { fileId: rec._id, userId: 'someone-else' })).rejects.toThrow(/not found/);
    const r = await requestRehydrate(later(ctx, 50), { archiveKey: archived.archive_s3_key, userId: 'rita' });
    expect(r.status).toBe('ready');
    const f = (await ctx.registry.get(rec._id))!;
    expect(f).toMatchObject({ status: 'ready', is_archived: false, gallery_key: rec.gallery_key });
    expect(f.last_accessed_at!.toISOString()).toBe(at(50).toISOString());
    expect(f.ttl_expire_at!.toISOString()).toBe(at(140).toISOString());
    expect(f.archive_s3_key).toBeUndefined();
    expect(await sha(ctx, env.BUCKET_HOT!, rec.gallery_key!)).toBe(sha256);
    expect(await ctx.objects.head(env.BUCKET_ARCHIVE!, archived.archive_s3_key!)).toBeNull();
  });

  it('serves the archive summary and rehydrate over HTTP, for the owner only', async () => {
    const { buildApp } = await import('../../src/daemon/app.js');
    const { mintToken } = await import('../../src/core/auth.js');
    const seeded = await seedReady(ctx, 'hana', 3, t0);
    await archiveRun(later(ctx, 45), { user: 'hana' });
    const app = buildApp(later(ctx, 46), { logger: false });
    const tok = async (u: string) => `Bearer ${(await mintToken(ctx.config.auth, { userId: u, scopes: [], ttlSeconds: 60, now: new Date() })).token}`;
    try {
      const st = await app.inject({ method: 'GET', url: '/api/v1/archive/status', headers: { authorization: await tok('hana') } });
      expect(st.json()).toEqual({ total_archived: 3, pending_archive: 0, restoring: 0, next_purge_at: at(90).toISOString() });
      const id = seeded[0]!.rec._id;
      const other = await app.inject({ method: 'POST', url: '/api/v1/archive/rehydrate', headers: { authorization: await tok('mallory') }, payload: { file_id: id } });
      expect(other.statusCode).toBe(404);
      const mine = await app.inject({ method: 'POST', url: '/api/v1/archive/rehydrate', headers: { authorization: await tok('hana') }, payload: { file_id: id } });
      expect(mine.statusCode).toBe(200);
      expect(mine.json()).toMatchObject({ file_id: id, status: 'ready' });
      const both = await app.inject({ method: 'POST', url: '/api/v1/archive/rehydrate', headers: { authorization: await tok('hana') }, payload: {} });
      expect(both.statusCode).toBe(400);
    } finally {
      await app.close();
    }
  });

  it('purge-run without a terminal and without --yes changes nothing and exits 2', async () => {
    const before = await allObjects(ctx);
    const r = await cli(['purge-run', '--now', at(200).toISOString()], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--yes required when not running interactively/);
    expect(await allObjects(ctx)).toEqual(before);
    expect(await ctx.registry.count({})).toBeGreaterThan(0);
  });

  it('purges files past retention (objects, then record, quota released), stale raw uploads and, with --orphans, unreferenced objects', async () => {
    const raw = 'raw/alice/00000000-0000-4000-8000-000000000001.jpg';
    await ctx.objects.put(env.BUCKET_HOT!, raw, Buffer.from('stale upload'), 'image/jpeg');
    const orphan = 'gallery/nobody/00000000-0000-4000-8000-00000000dead.webp';
    await ctx.objects.put(env.BUCKET_HOT!, orphan, Buffer.from('garbage'), 'image/webp');
    // alice's eight files as registration would have counted them against her quota
    for (let i = 0; i < 8; i++) {
      await ctx.usage.reserve('alice', 6144, { bytes: 0, files: 0 });
      await ctx.usage.commit('alice', 6144, 6144);
    }
    const usageBefore = (await ctx.usage.get('alice'))!.files;

    // Day 91 by the registry, and (for S3's own timestamps) two days after the objects above were written.
    const farFuture = Object.create(ctx, { clock: { value: fixedClock(new Date(Math.max(at(91).getTime(), Date.now() + 2 * DAY))) } }) as Context;
    const plan = await planPurge(farFuture, { orphans: true });
    expect(plan.orphans.map((o) => o.key)).toContain(orphan);
    expect(plan.orphans.map((o) => o.key)).not.toContain(expect.stringMatching(/^archive\//));

    const r = await purgeRun(farFuture, { orphans: true });
    expect(r.failed).toBe(0);
    expect(r.purged_files).toBe(8); // alice's six and hana's two archived files; fresher and rehydrated files stay
    expect(await ctx.registry.count({ status: 'archived' })).toBe(0);
    expect(await ctx.objects.head(env.BUCKET_HOT!, raw)).toBeNull();
    expect(await ctx.objects.head(env.BUCKET_HOT!, orphan)).toBeNull();
    const left = [...(await allObjects(ctx))];
    expect(left.filter((k) => k.includes('/archive/'))).toEqual([]);
    expect((await ctx.usage.get('alice'))!.files).toBe(usageBefore - 6); // quota released per purged file
    expect(await ctx.registry.count({ user_id: 'alice' })).toBe(2);
    const log = await new ArchiveLog(ctx.mongo).recent('purge');
    expect(log[0]).toMatchObject({ operation: 'purge', files_count: 8 });
  });
});

describe('Glacier archive and restore against moto server', () => {
  const env = testEnv('glacier', { S3_ENDPOINT_URL: stackEnv().MOTO_ENDPOINT_URL!, ARCHIVE_STORAGE_CLASS: 'GLACIER' });
  let ctx: Context;
  beforeAll(async () => {
    ctx = await openStores(env);
  });
  afterAll(async () => {
    await closeStores(ctx, env);
  });

  it('archives to GLACIER (GET refused until restored), then restores through rehydrate and --pending', async () => {
    const { rec, sha256 } = (await seedReady(ctx, 'gus', 1, t0))[0]!;
    expect((await archiveRun(later(ctx, 31), {})).archived).toBe(1);
    const archived = (await ctx.registry.get(rec._id))!;
    const head = await ctx.objects.head(env.BUCKET_ARCHIVE!, archived.archive_s3_key!);
    expect(head!.storageClass).toBe('GLACIER');
    await expect(ctx.objects.read(env.BUCKET_ARCHIVE!, archived.archive_s3_key!, 1e6)).rejects.toThrow(/InvalidObjectState|not valid for the object's storage class/);

    const r = await requestRehydrate(ctx, { fileId: rec._id, userId: 'gus', tier: 'Expedited' });
    expect(r.status).toBe('restoring');
    expect((await ctx.registry.get(rec._id))!.status).toBe('restoring');
    expect(r.message).toMatch(/restore requested/);

    const p = await rehydratePending(ctx);
    expect(p).toMatchObject({ checked: 1, restored: 1, failed: 0 });
    const f = (await ctx.registry.get(rec._id))!;
    expect(f).toMatchObject({ status: 'ready', is_archived: false });
    expect(await sha(ctx, env.BUCKET_HOT!, f.gallery_key!)).toBe(sha256);
    expect(await ctx.objects.head(env.BUCKET_ARCHIVE!, archived.archive_s3_key!)).toBeNull();
  });
});
