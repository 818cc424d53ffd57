#!/usr/bin/env node
// Benchmark of the local embedding provider and of exact in-process scoring.
// Run by hand after a build:  npx tsc -p tsconfig.build.json && node bench/embed.mjs
//
// 1. Throughput of localEmbedding on gallery-sized WebP (the fixture photos
//    scaled into the 1920x1080 box, q80), one at a time and concurrently, and
//    on 320 px thumbnails for comparison.
// 2. Exact cosine top-10 over 5,000 and 50,000 random 256-d unit vectors:
//    median and p99 milliseconds per query over 50 queries.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { LOCAL_EMBEDDING_DIM, localEmbedding } from '../dist/media/embedding.js';
import { TopK, dot, l2normalize } from '../dist/core/vector.js';

const FIXTURES = new URL('../../shared/fixtures/images/', import.meta.url).pathname;
const PHOTOS = ['coffee.png', 'chelsea.png', 'rocket.jpg', 'coffee-phone-4032x3024.jpg', 'chelsea-exif-orient6.jpg'];

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function galleryWebp(file, box) {
  const img = sharp(await readFile(join(FIXTURES, file))).autoOrient();
  const { width, height } = await sharp(await img.clone().png().toBuffer()).metadata();
  const [w, h] = width >= height ? [box, Math.round((box * 9) / 16)] : [Math.round((box * 9) / 16), box];
  return img.resize(w, h, { fit: 'inside' }).webp({ quality: 80 }).toBuffer();
}

async function throughput(label, inputs, concurrency, total) {
  for (const b of inputs) await localEmbedding(b); // warm up
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const b = inputs[next++ % inputs.length];
        await localEmbedding(b);
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  console.log(`  ${label.padEnd(34)} concurrency ${String(concurrency).padStart(2)}: ${(total / s).toFixed(0).padStart(5)} images/s  (${((s * 1000) / total).toFixed(1)} ms/image wall)`);
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

function scoring(n, queries) {
  const next = rng(n);
  const rand = () => l2normalize(Float32Array.from({ length: LOCAL_EMBEDDING_DIM }, () => next() * 2 - 1));
  const vectors = Array.from({ length: n }, rand);
  const ms = [];
  for (let q = 0; q < queries + 3; q++) {
    const query = rand();
    const t0 = performance.now();
    const top = new TopK(10);
    for (let i = 0; i < n; i++) top.push(dot(query, vectors[i]), i);
    top.results();
    if (q >= 3) ms.push(performance.now() - t0); // first 3 are JIT warm-up
  }
  ms.sort((a, b) => a - b);
  console.log(`  ${String(n).padStart(6)} vectors: median ${percentile(ms, 50).toFixed(2)} ms, p99 ${percentile(ms, 99).toFixed(2)} ms per query (top-10, ${queries} queries)`);
}

const cores = availableParallelism();
console.log(`node ${process.version}, ${cores} CPUs, sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips}, libvips threads ${sharp.concurrency()}`);

const gallery = await Promise.all(PHOTOS.map((f) => galleryWebp(f, 1920)));
const thumbs = await Promise.all(PHOTOS.map((f) => galleryWebp(f, 320)));
const sizes = await Promise.all(gallery.map(async (b) => { const m = await sharp(b).metadata(); return `${m.width}x${m.height}`; }));
console.log(`\nlocalEmbedding throughput (${PHOTOS.length} photos as WebP q80: ${sizes.join(', ')})`);
for (const c of [1, cores, cores * 2]) await throughput('gallery WebP (1920x1080 box)', gallery, c, 100);
for (const c of [1, cores]) await throughput('thumbnail WebP (320 px box)', thumbs, c, 400);

console.log('\nexact cosine top-k (dot on unit Float32 vectors + TopK heap), 256-d');
scoring(5_000, 50);
scoring(50_000, 50);
