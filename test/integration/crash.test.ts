/**
 * Fault injection: the lifecycle jobs run as real child processes and are
 * killed with SIGKILL at random moments once they are visibly working, many
 * times; then a run to completion, and an audit of every file's bytes and location.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Context } from '../../src/core/context.js';
import { closeStores, openStores } from '../helpers/daemon.js';
import { allObjects, seedReady, sha, type Seeded } from '../helpers/seed.js';
import { ROOT, testEnv } from '../helpers/stack.js';

const DAY = 24 * 3600 * 1000;
const t0 = new Date('2026-09-01T00:00:00Z');
const at = (d: number) => new Date(t0.getTime() + d * DAY).toISOString();

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string>, killWhen?: () => Promise<boolean>): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'biostore.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let done = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    if (killWhen) {
      // Kill at a random moment once the job is visibly doing work (not during start-up).
      void (async () => {
        const deadline = Date.now() + 30_000;
        while (!done && Date.now() < deadline && !(await killWhen())) await new Promise((r) => setTimeout(r, 25));
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 600)));
        if (!done) child.kill('SIGKILL');
      })();
    }
    child.on('close', (code, signal) => {
      done = true;
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Kills `args` `kills` times, each at a random moment after `progress()` moved; returns how many kills landed mid-run. */
async function killRepeatedly(args: string[], env: Record<string, string>, kills: number, progress: () => Promise<number>): Promise<number> {
  let landed = 0;
  for (let i = 0; i < kills; i++) {
    const before = await progress();
    const r = await run(args, env, async () => (await progress()) > before);
    if (r.signal === 'SIGKILL') landed++;
    else if (r.code !== 0) throw new Error(`run exited ${r.code}: ${r.stderr.slice(-600)} ${r.stdout.slice(-300)}`);
  }
  return landed;
}

describe('kill -9 at random moments, then resume: nothing lost', () => {
  const env = testEnv('crash', { ARCHIVE_STORAGE_CLASS: 'STANDARD_IA' });
  let ctx: Context;
  let files: Seeded[];
  beforeAll(async () => {
    ctx = await openStores(env);
    files = await seedReady(ctx, 'kim', 300, t0, 4096);
  }, 120_000);
  afterAll(async () => {
    await closeStores(ctx, env);
  });

  it('archive-run: killed 12 times, then completed; every file archived exactly once with its bytes intact, no orphan', async () => {
    const args = ['archive-run', '--yes', '--json', '--now', at(31), '--concurrency', '8'];
    const archived = () => ctx.registry.count({ status: 'archived' });
    const landed = await killRepeatedly(args, env, 12, archived);
    const byThen = await archived();
    console.log(`archive-run: ${landed} of 12 SIGKILLs landed mid-run; ${byThen} of 300 archived by then, ${await ctx.registry.count({ status: 'archiving' })} in flight`);
    expect(landed).toBeGreaterThan(5);
    expect(byThen).toBeGreaterThan(0);
    const final = await run(args, env);
    expect(final.code, final.stderr).toBe(0);
    expect(JSON.parse(final.stdout).failed).toBe(0);

    const objects = await allObjects(ctx);
    for (const { rec } of files) {
      const f = (await ctx.registry.get(rec._id))!;
      expect(f).toMatchObject({ status: 'archived', is_archived: true });
      expect(f.cleanup_keys).toBeUndefined();
      expect(f.lease_owner).toBeUndefined();
      expect(objects.has(`${env.BUCKET_HOT}/${rec.gallery_key}`)).toBe(false);
      expect(objects.has(`${env.BUCKET_ARCHIVE}/${f.archive_s3_key}`)).toBe(true);
    }
    // exactly one archive copy per file, one hot thumbnail per file, nothing else
    expect([...objects].filter((k) => k.startsWith(`${env.BUCKET_ARCHIVE}/`))).toHaveLength(300);
    expect([...objects].filter((k) => k.startsWith(`${env.BUCKET_HOT}/`)).every((k) => k.endsWith('.thumb.webp'))).toBe(true);
    // bytes intact (a sample of 60; all sizes were verified by the job itself)
    for (const { rec, sha256 } of files.slice(0, 60)) {
      expect(await sha(ctx, env.BUCKET_ARCHIVE!, (await ctx.registry.get(rec._id))!.archive_s3_key!)).toBe(sha256);
    }
  }, 240_000);

  it('rehydrate --pending: killed 6 times, then completed; every file back in the hot bucket with its bytes', async () => {
    const some = files.slice(0, 80);
    for (const { rec } of some) await ctx.registry.transition(rec._id, 'archived', { status: 'restoring' });
    const restored = async () => 80 - (await ctx.registry.count({ status: 'restoring' }));
    const landed = await killRepeatedly(['rehydrate', '--pending', '--json'], env, 6, restored);
    console.log(`rehydrate --pending: ${landed} of 6 SIGKILLs landed mid-run`);
    const final = await run(['rehydrate', '--pending', '--json'], env);
    expect(final.code, final.stderr).toBe(0);
    const objects = await allObjects(ctx);
    for (const { rec, sha256 } of some) {
      const f = (await ctx.registry.get(rec._id))!;
      expect(f).toMatchObject({ status: 'ready', is_archived: false, gallery_key: rec.gallery_key });
      expect(f.cleanup_keys).toBeUndefined();
      expect(await sha(ctx, env.BUCKET_HOT!, rec.gallery_key!)).toBe(sha256);
    }
    expect([...objects].filter((k) => k.startsWith(`${env.BUCKET_ARCHIVE}/`))).toHaveLength(300 - 80);
  }, 180_000);

  it('purge-run: killed 6 times, then completed; every expired file and its objects gone, the others untouched', async () => {
    // The 220 still archived expire at day 90 + ; the 80 rehydrated ones got a fresh TTL.
    const args = ['purge-run', '--yes', '--json', '--now', at(95), '--concurrency', '8'];
    const purged = async () => 300 - (await ctx.registry.count({ user_id: 'kim' })) + (await ctx.registry.count({ status: 'purging' }));
    const landed = await killRepeatedly(args, env, 6, purged);
    console.log(`purge-run: ${landed} of 6 SIGKILLs landed mid-run`);
    const final = await run(args, env);
    expect(final.code, final.stderr).toBe(0);
    expect(await ctx.registry.count({ user_id: 'kim' })).toBe(80);
    expect(await ctx.registry.count({ status: 'purging' })).toBe(0);
    const objects = await allObjects(ctx);
    expect([...objects].filter((k) => k.startsWith(`${env.BUCKET_ARCHIVE}/`))).toEqual([]);
    for (const { rec } of files.slice(80)) {
      expect(objects.has(`${env.BUCKET_HOT}/${rec.thumb_key}`)).toBe(false);
    }
  }, 180_000);
});

describe('two archive-runs at once', () => {
  const env = testEnv('twoarchive', { ARCHIVE_STORAGE_CLASS: 'STANDARD_IA' });
  let ctx: Context;
  beforeAll(async () => {
    ctx = await openStores(env);
    await seedReady(ctx, 'lee', 120, t0);
  }, 60_000);
  afterAll(async () => {
    await closeStores(ctx, env);
  });

  it('never conflict: one runs, the other skips with exit 6 and says so; every file archived once', async () => {
    const args = ['archive-run', '--yes', '--json', '--now', at(31)];
    const [a, b] = await Promise.all([run(args, env), run(args, env)]);
    const codes = [a.code, b.code].sort();
    expect(codes).toEqual([0, 6]);
    const skipped = a.code === 6 ? a : b;
    expect(skipped.stderr).toMatch(/another archive-run is running .*skipped/);
    expect(await ctx.registry.count({ status: 'archived' })).toBe(120);
    const objects = await allObjects(ctx);
    expect([...objects].filter((k) => k.startsWith(`${env.BUCKET_ARCHIVE}/`))).toHaveLength(120);
  }, 120_000);
});
