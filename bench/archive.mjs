#!/usr/bin/env node
// bench:archive — run by hand. Archives N files end to end against the local
// stack (FerretDB + versitygw + Redis), and in the same run moves the same
// number of objects between two buckets with `rclone move` (server-side copy),
// the tool an operator would otherwise use (it keeps no registry).
// Prints objects/s for both, the ratio, and peak RSS; with --rss also the peak
// RSS of archive-run over N and 10N candidates.
//
//   npm run build && node bench/archive.mjs [N=10000] [--rss | --rss-only]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID, createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'dotenv';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 10000);
const stack = parse(readFileSync(join(ROOT, '.stack', 'env')));
const { loadConfig } = await import('../dist/core/config.js');
const { Context } = await import('../dist/core/context.js');
const { initMongo } = await import('../dist/storage/mongo-schema.js');
const { initBuckets } = await import('../dist/storage/s3.js');
const pLimit = (await import('p-limit')).default;

const id = randomBytes(3).toString('hex');
const env = {
  ...stack,
  MONGO_DB_NAME: `bench_archive_${id}`,
  BUCKET_HOT: `bench-${id}-hot`,
  BUCKET_ARCHIVE: `bench-${id}-arc`,
  ARCHIVE_STORAGE_CLASS: 'STANDARD_IA',
  LOG_LEVEL: 'warn',
};
const ctx = new Context(loadConfig({ env, envFile: '/dev/null' }));
const t0 = new Date('2026-01-01T00:00:00Z');

async function seed(user, n, bucket) {
  const limit = pLimit(32);
  const docs = [];
  await Promise.all(
    Array.from({ length: n }, () =>
      limit(async () => {
        const fid = randomUUID();
        const body = randomBytes(2048);
        const key = `gallery/${user}/${fid}.webp`;
        await ctx.objects.put(bucket, key, body, 'image/webp');
        docs.push({
          _id: fid, user_id: user, status: 'ready', s3_key: `raw/${user}/${fid}.jpg`, content_type: 'image/jpeg',
          original_filename: 'x.jpg', use_case: 'gallery', size_bytes: 6000, reserved_bytes: 0, upload_mode: 'put',
          created_at: t0, updated_at: t0, upload_timestamp: t0, last_accessed_at: t0, gallery_key: key,
          gallery_bytes: body.length, gallery_sha256: createHash('sha256').update(body).digest('hex'),
        });
      }),
    ),
  );
  return docs;
}

function peakRssOf(cmd, args, extraEnv) {
  return new Promise((resolveRun) => {
    const start = performance.now();
    const childEnv = { ...process.env, ...extraEnv };
    for (const [k, v] of Object.entries(childEnv)) if (v === '') delete childEnv[k];
    const child = spawn(cmd, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let peak = 0;
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setInterval(() => {
      try {
        const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // exited
      }
    }, 50);
    child.on('close', (code) => {
      clearInterval(timer);
      resolveRun({ code, ms: performance.now() - start, peakMb: peak, out, err });
    });
  });
}

console.log(`bench:archive N=${N} load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
await initMongo(ctx.mongo, { vectorDim: 256 });
const c = ctx.config.s3;
await initBuckets(ctx.s3, c.endpoint, { hot: c.bucketHot, archive: c.bucketArchive, corsOrigins: ['*'], region: c.region });

const rssOnly = process.argv.includes('--rss-only');
// --- biostore archive-run ---
let t = performance.now();
if (!rssOnly) {
const docs = await seed('bench', N, c.bucketHot);
for (let i = 0; i < docs.length; i += 1000) await ctx.mongo.db.collection('files_metadata').insertMany(docs.slice(i, i + 1000));
console.log(`seeded ${N} files in ${((performance.now() - t) / 1000).toFixed(1)} s`);
const bio = await peakRssOf(process.execPath, [join(ROOT, 'bin', 'biostore.js'), 'archive-run', '--yes', '--json', '--now', '2026-03-01', '--concurrency', '16'], env);
const report = JSON.parse(bio.out || '{}');
if (bio.code !== 0) console.log(bio.err);
const bioRate = (report.archived ?? 0) / (bio.ms / 1000);

// --- rclone move, same number of objects, same S3 server ---
var src = `bench-${id}-rcs`;
var dst = `bench-${id}-rcd`;
await initBuckets(ctx.s3, c.endpoint, { hot: src, archive: dst, corsOrigins: ['*'], region: c.region });
await seed('bench', N, src);
const conf = join(mkdtempSync(join(tmpdir(), 'rclone-')), 'rclone.conf');
writeFileSync(conf, `[s3]\ntype = s3\nprovider = Other\naccess_key_id = ${stack.AWS_ACCESS_KEY_ID}\nsecret_access_key = ${stack.AWS_SECRET_ACCESS_KEY}\nendpoint = ${stack.S3_ENDPOINT_URL}\nregion = us-east-1\nforce_path_style = true\n`);
const hasRclone = spawnSync('rclone', ['version']).status === 0;
let rc = null;
if (hasRclone) {
  // rclone's S3 backend refuses AWS_CA_BUNDLE with its own transport; the stack is plain http anyway.
  rc = await peakRssOf('rclone', ['--config', conf, 'move', `s3:${src}/gallery`, `s3:${dst}/archive`, '--transfers', '16', '--checkers', '16', '--s3-storage-class', 'STANDARD_IA', '--s3-no-check-bucket'], { AWS_CA_BUNDLE: '' });
  if (rc.code !== 0) console.log(rc.err.slice(-2000));
}
const rcRate = rc ? N / (rc.ms / 1000) : NaN;

console.log('');
console.log('| tool | objects | seconds | objects/s | peak RSS |');
console.log('|---|---|---|---|---|');
console.log(`| biostore archive-run (registry kept exact) | ${report.archived} | ${(bio.ms / 1000).toFixed(1)} | ${bioRate.toFixed(1)} | ${bio.peakMb.toFixed(0)} MB |`);
if (rc) console.log(`| rclone move (no registry) | ${N} | ${(rc.ms / 1000).toFixed(1)} | ${rcRate.toFixed(1)} | ${rc.peakMb.toFixed(0)} MB |`);
else console.log('| rclone | not installed (apt-get install rclone) | | | |');
if (rc) console.log(`ratio biostore/rclone: ${(bioRate / rcRate).toFixed(2)}`);
console.log(`load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

// --- memory over candidate count (dry run streams the same cursor) ---
if (process.argv.includes('--rss') || rssOnly) {
  const rows = [];
  for (const n of [N, N * 10]) {
    const have = await ctx.mongo.db.collection('files_metadata').countDocuments({ status: 'ready' });
    const more = [];
    for (let i = have; i < n; i++) {
      const fid = randomUUID();
      more.push({ _id: fid, user_id: 'rss', status: 'ready', s3_key: `raw/rss/${fid}.jpg`, created_at: t0, updated_at: t0, upload_timestamp: t0, last_accessed_at: t0, gallery_key: `gallery/rss/${fid}.webp`, gallery_bytes: 2048, size_bytes: 1, reserved_bytes: 0 });
      if (more.length === 5000) await ctx.mongo.db.collection('files_metadata').insertMany(more.splice(0));
    }
    if (more.length) await ctx.mongo.db.collection('files_metadata').insertMany(more);
    const r = await peakRssOf(process.execPath, [join(ROOT, 'bin', 'biostore.js'), 'archive-run', '--dry-run', '--json', '--now', '2026-03-01'], env);
    rows.push([n, r.peakMb, JSON.parse(r.out).candidates]);
  }
  for (const [n, mb, cands] of rows) console.log(`archive-run over ${n} candidates (${cands} seen): peak RSS ${mb.toFixed(0)} MB`);
  console.log(`RSS ratio ${rows[1][0]}/${rows[0][0]}: ${(rows[1][1] / rows[0][1]).toFixed(2)} (target <= 1.20)`);
}

// clean up
await ctx.mongo.db.dropDatabase();
const { deleteBucketDeep } = await import('./lib/s3-cleanup.mjs');
for (const b of [c.bucketHot, c.bucketArchive, ...(rssOnly ? [] : [src, dst])]) await deleteBucketDeep(ctx, b);
await ctx.close();
