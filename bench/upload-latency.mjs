#!/usr/bin/env node
// bench:latency — run by hand. Upload-to-ready latency of one 12 MP phone photo
// through the daemon's path: presigned PUT to S3, the S3 event reaching the
// webhook route, registration, the optimizer pool making the WebP derivatives.
// Prints each run and the median (ms from the end of the PUT to `ready`).
//
//   npm run build && node bench/upload-latency.mjs [runs=7]
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'dotenv';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.argv[2] ?? 7);
const stack = parse(readFileSync(join(ROOT, '.stack', 'env')));
const { loadConfig } = await import('../dist/core/config.js');
const { Context } = await import('../dist/core/context.js');
const { Metrics } = await import('../dist/core/metrics.js');
const { initMongo } = await import('../dist/storage/mongo-schema.js');
const { initBuckets } = await import('../dist/storage/s3.js');
const { buildApp } = await import('../dist/daemon/app.js');
const { OptimizerPool } = await import('../dist/daemon/optimizer-pool.js');
const { configureSharp } = await import('../dist/media/images.js');
const { mintToken } = await import('../dist/core/auth.js');

const id = randomBytes(3).toString('hex');
const env = { ...stack, MONGO_DB_NAME: `bench_lat_${id}`, BUCKET_HOT: `lat-${id}-hot`, BUCKET_ARCHIVE: `lat-${id}-arc`, LOG_LEVEL: 'warn' };
const ctx = new Context(loadConfig({ env, envFile: '/dev/null' }));
ctx.metrics = new Metrics(false);
await initMongo(ctx.mongo, { vectorDim: 256 });
const c = ctx.config.s3;
await initBuckets(ctx.s3, c.endpoint, { hot: c.bucketHot, archive: c.bucketArchive, corsOrigins: ['*'], region: c.region });
configureSharp({ concurrency: 1, cache: false });
const pool = new OptimizerPool(ctx, { concurrency: ctx.config.optimizer.concurrency });
ctx.onRegistered = () => pool.kick();
const app = buildApp(ctx, { logger: false });
const url = await app.listen({ host: '127.0.0.1', port: 0 });
pool.start();

const photo = readFileSync(resolve(ROOT, '..', 'shared', 'fixtures', 'images', 'coffee-phone-4032x3024.jpg'));
const token = (await mintToken(ctx.config.auth, { userId: 'bench', scopes: [], ttlSeconds: 3600, now: new Date() })).token;
const hook = `${url}/api/v1/webhooks/s3?token=${encodeURIComponent(stack.WEBHOOK_SECRET)}`;
const times = [];
console.log(`upload-to-ready, 12 MP JPEG (${photo.length} bytes), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (let i = 0; i < RUNS; i++) {
  const sign = await (await fetch(`${url}/api/v1/upload/sign`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ filename: 'coffee.jpg', content_type: 'image/jpeg', size_bytes: photo.length }),
  })).json();
  const headers = Object.fromEntries(Object.entries(sign.headers).filter(([k]) => k.toLowerCase() !== 'content-length'));
  const put = await fetch(sign.upload_url, { method: 'PUT', headers, body: photo });
  await put.arrayBuffer();
  const t0 = performance.now();
  // the S3 server's event, as versitygw/AWS deliver it
  await fetch(hook, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ Records: [{ eventName: 's3:ObjectCreated:Put', s3: { bucket: { name: c.bucketHot }, object: { key: sign.key } } }] }),
  });
  for (;;) {
    const r = await ctx.registry.get(sign.file_id);
    if (r.status === 'ready' || r.status === 'failed') break;
    await new Promise((res) => setTimeout(res, 10));
  }
  const ms = performance.now() - t0;
  times.push(ms);
  console.log(`run ${i + 1}: ${ms.toFixed(0)} ms`);
}
times.sort((a, b) => a - b);
console.log(`median ${times[Math.floor(times.length / 2)].toFixed(0)} ms, min ${times[0].toFixed(0)} ms, max ${times.at(-1).toFixed(0)} ms`);
await pool.stop();
await app.close();
await ctx.mongo.db.dropDatabase();
const { deleteBucketDeep } = await import('./lib/s3-cleanup.mjs');
for (const b of [c.bucketHot, c.bucketArchive]) await deleteBucketDeep(ctx, b);
await ctx.close();
