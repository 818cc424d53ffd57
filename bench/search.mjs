#!/usr/bin/env node
/**
 * Similarity search and embedding throughput against the running local stack,
 * by hand (never from the tests):
 *
 *   npx tsc -p tsconfig.build.json && node bench/search.mjs [--sizes 5000,50000] [--queries 30] [--reindex 300] [--heap-mb 32]
 *
 * 1. For each size N: a user with N files carrying random 256-d unit vectors
 *    (biostore-local-v1, BSON float32 vectors), inserted with insertMany in
 *    batches of 1,000 into a database of the benchmark's own. Then, in a
 *    fresh child process (so peak RSS belongs to that size alone), ~30 rounds
 *    of: (a) the floor, merely reading that user's vectors with the search's
 *    own filter, projection and batch size, doing nothing with them; (b) one
 *    real `searchSimilar` (top-10, min_similarity -1 so the heap is always
 *    full: the worst case), which reads the same cursor, scores and hydrates
 *    the winners. Interleaved, so load on the machine hits both alike.
 *    Printed: median and p99 of both, the ratio search/floor (target <= 1.5),
 *    this process's CPU per query for both (the database's share of the
 *    wall time hides what scoring costs), and peak RSS per size (should stay
 *    flat from 5k to 50k).
 * 2. Local-provider throughput: localEmbedding on 320 px WebP thumbnails
 *    (what the pipeline embeds) and on 1920 px gallery images, and the whole
 *    `reindexEmbeddings` job end to end (claim, S3 read, embed, write) on
 *    --reindex files.
 * Everything it creates is deleted at the end.
 */
import { fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // as bin/biostore.js does
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, '..', 'shared', 'fixtures', 'images');
const args = Object.fromEntries(
  process.argv.slice(2).flatMap((a, i, all) => (a.startsWith('--') ? [[a.slice(2), all[i + 1]?.startsWith('--') ? 'true' : (all[i + 1] ?? 'true')]] : [])),
);

let dist;
try {
  dist = {
    context: await import('../dist/core/context.js'),
    config: await import('../dist/core/config.js'),
    search: await import('../dist/core/search.js'),
    vectors: await import('../dist/storage/vector-store.js'),
    schema: await import('../dist/storage/mongo-schema.js'),
  };
} catch (err) {
  console.error(`cannot load dist/ (${err.message.split('\n')[0]}): run \`npx tsc -p tsconfig.build.json\` first`);
  process.exit(2);
}
const { parse } = await import('dotenv');
const stackEnv = parse(readFileSync(join(ROOT, '.stack', 'env')));

function ctxFor(extra) {
  const config = dist.config.loadConfig({ env: { ...stackEnv, LOG_LEVEL: 'silent', ...extra }, envFile: '/dev/null' });
  return new dist.context.Context(config);
}

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function unitVector(next, dim = 256) {
  const v = new Float32Array(dim);
  let ss = 0;
  for (let i = 0; i < dim; i++) {
    v[i] = next() * 2 - 1;
    ss += v[i] * v[i];
  }
  const n = Math.sqrt(ss);
  for (let i = 0; i < dim; i++) v[i] /= n;
  return v;
}

const cpuMs = (c0) => {
  const d = process.cpuUsage(c0);
  return (d.user + d.system) / 1000;
};
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const ms = (x) => `${x.toFixed(1)} ms`;

// ---------- child: one size, fresh process ----------
if (args.phase) {
  const { db, user, queries } = JSON.parse(args.phase);
  const ctx = ctxFor({ MONGO_DB_NAME: db });
  const filter = dist.search.searchableFilter(user, 'biostore-local-v1', 256);
  const next = rng(42);
  const floorOnce = async () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let n = 0;
    // Exactly the search's cursor: filter, projection, batch size; nothing done with the documents.
    const projection = { _id: 1, embedding_vector: 1, ...Object.fromEntries(dist.search.SEARCH_FIELDS.map((f) => [f, 1])) };
    const cursor = ctx.registry.files.find(filter, { projection, batchSize: 1000 });
    for await (const _doc of cursor) n++;
    return { t: performance.now() - t0, cpu: cpuMs(c0), n };
  };
  const searchOnce = async () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await dist.search.searchSimilar(ctx, { userId: user, vector: Array.from(unitVector(next)), topK: 10, minSimilarity: -1, urls: false });
    return { t: performance.now() - t0, cpu: cpuMs(c0), n: r.scanned, k: r.results.length };
  };
  for (let i = 0; i < 2; i++) {
    await floorOnce();
    await searchOnce(); // warm-up: connections, JIT
  }
  const floor = [];
  const search = [];
  const floorCpu = [];
  const searchCpu = [];
  let scanned = 0;
  for (let q = 0; q < queries; q++) {
    const f = await floorOnce();
    const s = await searchOnce();
    floor.push(f.t);
    search.push(s.t);
    floorCpu.push(f.cpu);
    searchCpu.push(s.cpu);
    scanned = s.n;
    if (s.k !== 10) throw new Error(`expected 10 results, got ${s.k}`);
  }
  await ctx.close();
  process.send({ floor, search, floorCpu, searchCpu, scanned, maxRssMb: process.resourceUsage().maxRSS / 1024 });
  process.exit(0);
}

// ---------- orchestrator ----------
const SIZES = String(args.sizes ?? '5000,50000').split(',').map(Number);
const QUERIES = Number(args.queries ?? 30);
const REINDEX = Number(args.reindex ?? 300);
const tag = randomBytes(3).toString('hex');
const created = { dbs: [], buckets: [] };

console.log(`node ${process.version}, ${availableParallelism()} CPUs; MongoDB: ${stackEnv.MONGODB_URI} (FerretDB), S3: ${stackEnv.S3_ENDPOINT_URL}`);

async function seed(n) {
  const db = `bench_search_${n}_${tag}`;
  created.dbs.push(db);
  const ctx = ctxFor({ MONGO_DB_NAME: db });
  await dist.schema.initMongo(ctx.mongo, { vectorDim: 256 });
  const user = `bench-${n}`;
  const next = rng(n);
  const t0 = performance.now();
  const now = new Date();
  for (let i = 0; i < n; i += 1000) {
    const docs = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      const id = randomUUID();
      docs.push({
        _id: id,
        user_id: user,
        status: 'ready',
        s3_key: `raw/${user}/${id}.jpg`,
        content_type: 'image/jpeg',
        original_filename: 'x',
        use_case: 'gallery',
        size_bytes: 2_000_000,
        reserved_bytes: 0,
        upload_mode: 'put',
        created_at: now,
        updated_at: now,
        upload_timestamp: now,
        gallery_key: `gallery/${user}/${id}.webp`,
        thumb_key: `gallery/${user}/${id}.thumb.webp`,
        gallery_width: 1920,
        gallery_height: 1080,
        embedding_vector: dist.vectors.toStoredVector(unitVector(next)),
        embedding_model: 'biostore-local-v1',
        embedding_dim: 256,
        embedded_at: now,
      });
    }
    await ctx.registry.files.insertMany(docs, { ordered: false });
  }
  const s = (performance.now() - t0) / 1000;
  await ctx.close();
  console.log(`  seeded ${n.toLocaleString('en')} files for ${user} in ${s.toFixed(1)} s (${Math.round(n / s)} docs/s)`);
  return { db, user };
}

function runPhase(spec) {
  return new Promise((resolve, reject) => {
    // --heap-mb caps the child's V8 old space: a search that held all vectors would then run out of memory.
    const execArgv = args['heap-mb'] ? [`--max-old-space-size=${Number(args['heap-mb'])}`] : [];
    const child = fork(fileURLToPath(import.meta.url), ['--phase', JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    child.on('message', resolve);
    child.on('error', reject);
    child.on('exit', (code) => code && reject(new Error(`phase exited ${code}`)));
  });
}

async function dropAll() {
  const ctx = ctxFor({});
  try {
    await ctx.mongo.connect();
    for (const db of created.dbs) await ctx.mongo.client.db(db).dropDatabase();
    const { DeleteBucketCommand } = await import('@aws-sdk/client-s3');
    for (const b of created.buckets) {
      for await (const o of ctx.objects.list(b, '')) await ctx.objects.delete(b, o.key);
      await ctx.s3.send(new DeleteBucketCommand({ Bucket: b })).catch(() => undefined);
    }
  } finally {
    await ctx.close();
  }
}

try {
  console.log(`\n1. exact search (top-10, 256-d, ${QUERIES} queries per size) vs merely reading the vectors`);
  const rows = [];
  for (const n of SIZES) {
    const spec = await seed(n);
    const r = await runPhase({ ...spec, queries: QUERIES });
    const f = [...r.floor].sort((a, b) => a - b);
    const s = [...r.search].sort((a, b) => a - b);
    const fc = [...r.floorCpu].sort((a, b) => a - b);
    const sc = [...r.searchCpu].sort((a, b) => a - b);
    rows.push({ n, f, s, r });
    console.log(
      `  ${String(n).padStart(6)} files: search median ${ms(pct(s, 50))}, p99 ${ms(pct(s, 99))}; ` +
        `read-only floor median ${ms(pct(f, 50))}, p99 ${ms(pct(f, 99))}; ` +
        `search/floor ${(pct(s, 50) / pct(f, 50)).toFixed(2)}x (scoring adds ${(100 * (pct(s, 50) / pct(f, 50) - 1)).toFixed(0)}%); ` +
        `peak RSS ${r.maxRssMb.toFixed(0)} MB; scanned ${r.scanned}`,
    );
    // Wall time is mostly the database; this process's CPU shows what decoding and scoring cost here.
    console.log(
      `  ${' '.repeat(6)}        node CPU per query: search median ${ms(pct(sc, 50))}, read-only median ${ms(pct(fc, 50))} ` +
        `(scoring ${(pct(sc, 50) - pct(fc, 50)).toFixed(1)} ms = ${((1000 * (pct(sc, 50) - pct(fc, 50))) / n).toFixed(2)} µs a file)`,
    );
  }
  if (rows.length > 1) {
    const [a, b] = [rows[0], rows[rows.length - 1]];
    console.log(`  peak RSS ${a.n} -> ${b.n} files: ${a.r.maxRssMb.toFixed(0)} MB -> ${b.r.maxRssMb.toFixed(0)} MB; latency x${(pct(b.s, 50) / pct(a.s, 50)).toFixed(1)} for x${b.n / a.n} files`);
  }

  console.log('\n2. local provider throughput');
  const sharp = (await import('sharp')).default;
  const { LocalEmbeddingProvider } = await import('../dist/core/embeddings.js');
  const { localEmbedding } = await import('../dist/media/embedding.js');
  const { configureSharp } = await import('../dist/media/images.js');
  configureSharp({ concurrency: 1, cache: false }); // as the daemon and jobs run it
  const photos = ['coffee.png', 'chelsea.png', 'rocket.jpg', 'coffee-phone-4032x3024.jpg', 'chelsea-exif-orient6.jpg'].map((f) => readFileSync(join(FIXTURES, f)));
  const box = (b, size) => sharp(b).autoOrient().resize(size, size, { fit: 'inside' }).webp({ quality: 80 }).toBuffer();
  const thumbs = await Promise.all(photos.map((p) => box(p, 320)));
  const gallery = await Promise.all(photos.map((p) => box(p, 1920)));
  const throughput = async (label, inputs, concurrency, total) => {
    for (const b of inputs) await localEmbedding(b);
    const p = new LocalEmbeddingProvider(concurrency);
    const t0 = performance.now();
    const batch = Array.from({ length: total }, (_, i) => inputs[i % inputs.length]);
    await p.embed(batch);
    const s = (performance.now() - t0) / 1000;
    console.log(`  ${label.padEnd(28)} concurrency ${String(concurrency).padStart(2)}: ${(total / s).toFixed(0).padStart(5)} images/s`);
  };
  for (const c of [1, availableParallelism()]) await throughput('320 px WebP thumbnail', thumbs, c, 1000);
  for (const c of [1, availableParallelism()]) await throughput('1920 px WebP gallery', gallery, c, 100);

  // End to end: the reindex job over REINDEX ready files whose thumbnails are in S3.
  const db = `bench_reindex_${tag}`;
  const bucket = `bench-reindex-${tag}`;
  created.dbs.push(db);
  const ctx = ctxFor({ MONGO_DB_NAME: db, BUCKET_HOT: bucket, BUCKET_ARCHIVE: `${bucket}-arc` });
  await dist.schema.initMongo(ctx.mongo, { vectorDim: 256 });
  const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
  await ctx.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  created.buckets.push(bucket);
  const now = new Date();
  const docs = [];
  for (let i = 0; i < REINDEX; i++) {
    const id = randomUUID();
    const thumbKey = `gallery/bench/${id}.thumb.webp`;
    await ctx.objects.put(bucket, thumbKey, thumbs[i % thumbs.length], 'image/webp');
    docs.push({ _id: id, user_id: 'bench', status: 'ready', s3_key: `raw/bench/${id}.jpg`, thumb_key: thumbKey, content_type: 'image/jpeg', original_filename: 'x', use_case: 'gallery', size_bytes: 1, reserved_bytes: 0, upload_mode: 'put', created_at: now, updated_at: now });
  }
  await ctx.registry.files.insertMany(docs);
  const { reindexEmbeddings } = await import('../dist/jobs/reindex-embeddings.js');
  for (const concurrency of [4]) {
    const t0 = performance.now();
    const r = await reindexEmbeddings(ctx, { concurrency });
    const s = (performance.now() - t0) / 1000;
    console.log(`  reindex-embeddings end to end (claim, S3 read, embed, write; FerretDB doc locks), concurrency ${concurrency}: ${r.embedded} files in ${s.toFixed(1)} s = ${(r.embedded / s).toFixed(0)} files/s`);
  }
  await ctx.close();
} finally {
  await dropAll();
}
