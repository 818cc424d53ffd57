/**
 * Embeddings and similarity search against the real stack: fixture photos
 * and edits of them go through the real upload -> optimizer -> reindex path,
 * then the search core, the route and the CLI must rank each photo's own
 * copies first. Plus: ownership, --stale after a model change, two reindex
 * runs at once, and the http provider against a deliberately flaky server.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Context } from '../../src/core/context.js';
import { EmbeddingRejectedError, HttpEmbeddingProvider } from '../../src/core/embeddings.js';
import { ConfigError, UnavailableError } from '../../src/core/errors.js';
import { findDuplicates, searchSimilar } from '../../src/core/search.js';
import { OptimizerPool } from '../../src/daemon/optimizer-pool.js';
import { claimNext, processClaimed } from '../../src/jobs/optimize.js';
import { reindexEmbeddings } from '../../src/jobs/reindex-embeddings.js';
import { fromStoredVector } from '../../src/storage/vector-store.js';
import { cli } from '../helpers/cli.js';
import { api, initStores, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { seedUploaded } from '../helpers/seed.js';
import { cleanup, FIXTURES, testConfig, testEnv } from '../helpers/stack.js';

const THRESHOLD = 0.75; // VECTOR_SIMILARITY_THRESHOLD default
const env = testEnv('search');
let ctx: Context;

const fixture = (name: string) => readFileSync(join(FIXTURES, name));

/** Runs the optimizer over everything uploaded, as a daemon worker would. */
async function optimizeAll(c: Context): Promise<void> {
  for (;;) {
    const rec = await claimNext(c, 'test-optimizer');
    if (!rec) return;
    expect((await processClaimed(c, rec, 'test-optimizer')).outcome).toBe('ready');
  }
}

/** Uploads `n` copies of a fixture for a user and makes them ready (no vectors yet). */
async function readyFiles(c: Context, user: string, n: number, file = 'chelsea.png'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await seedUploaded(c, user, fixture(file), file.endsWith('.png') ? 'image/png' : 'image/jpeg'))._id);
  await optimizeAll(c);
  return ids;
}

const PHOTOS = ['coffee.png', 'chelsea.png', 'rocket.jpg', 'coffee-phone-4032x3024.jpg', 'chelsea-exif-orient6.jpg'];

/**
 * The edits photos go through in the wild. The low-quality re-encode keeps
 * the stored pixels and the EXIF tag (as a messenger re-share does); the
 * others are made from the upright image.
 */
async function edits(original: Buffer): Promise<Record<string, Buffer>> {
  const upright = await sharp(original).autoOrient().png({ compressionLevel: 1 }).toBuffer();
  const { width: w, height: h } = await sharp(upright).metadata();
  return {
    'jpeg-q20': await sharp(original).jpeg({ quality: 20 }).withMetadata().toBuffer(),
    half: await sharp(upright).resize(Math.round(w / 2), Math.round(h / 2)).jpeg({ quality: 90 }).toBuffer(),
    'crop-left-10%': await sharp(upright).extract({ left: Math.round(w * 0.1), top: 0, width: w - Math.round(w * 0.1), height: h }).jpeg({ quality: 90 }).toBuffer(),
    'brighten-15%': await sharp(upright).modulate({ brightness: 1.15 }).jpeg({ quality: 90 }).toBuffer(),
  };
}

/** photo -> edit name ('original' too) -> file id, for user alice. */
const files = new Map<string, Map<string, string>>();
const photoOf = new Map<string, string>();
let bobCopy: string;

beforeAll(async () => {
  ctx = new Context(testConfig(env));
  await initStores(ctx);
  for (const photo of PHOTOS) {
    const bytes = fixture(photo);
    const family = new Map<string, string>();
    family.set('original', (await seedUploaded(ctx, 'alice', bytes, photo.endsWith('.png') ? 'image/png' : 'image/jpeg'))._id);
    for (const [edit, buf] of Object.entries(await edits(bytes))) family.set(edit, (await seedUploaded(ctx, 'alice', buf, 'image/jpeg'))._id);
    files.set(photo, family);
    for (const id of family.values()) photoOf.set(id, photo);
  }
  bobCopy = (await seedUploaded(ctx, 'bob', fixture('chelsea.png'), 'image/png'))._id;
  await optimizeAll(ctx);
  const r = await reindexEmbeddings(ctx, {});
  expect(r).toMatchObject({ selected: 26, embedded: 26, failed: 0, model: 'biostore-local-v1', dim: 256 });
}, 180_000);

afterAll(async () => {
  await ctx?.close();
  await cleanup(env);
});

const id = (photo: string, edit = 'original') => files.get(photo)!.get(edit)!;

describe('similarity search over the real registry (local provider, plain cosine)', () => {
  it('stores a float32 BSON vector with its model, dimension and time', async () => {
    const rec = (await ctx.registry.get(id('rocket.jpg')))!;
    expect(rec).toMatchObject({ embedding_model: 'biostore-local-v1', embedding_dim: 256, embedded_at: expect.any(Date) });
    expect((rec.embedding_vector as { sub_type: number }).sub_type).toBe(9);
    const v = fromStoredVector(rec.embedding_vector)!;
    expect(v).toBeInstanceOf(Float32Array);
    expect(v.length).toBe(256);
    expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    expect(rec.embedding_lease_owner).toBeUndefined();
  });

  it("ranks every photo's own edited copies above every other photo; different photos fall below 0.75", async () => {
    let minSame = { score: Infinity, what: '' };
    let maxDiff = { score: -Infinity, what: '' };
    let found = 0;
    let expected = 0;
    let falsePositives = 0;
    for (const photo of PHOTOS) {
      // Every file of the family as the query: the others of its family must come first.
      for (const [edit, fileId] of files.get(photo)!) {
        const all = await searchSimilar(ctx, { userId: 'alice', fileId, topK: 100, minSimilarity: -1, urls: false });
        expect(all.method).toBe('exact');
        expect(all.scanned).toBe(24);
        const own = [...files.get(photo)!.values()].filter((x) => x !== fileId);
        expect(all.results.slice(0, own.length).map((h) => h.file_id).sort(), `${photo}/${edit}`).toEqual([...own].sort());
        for (const h of all.results) {
          const what = `${photo}/${edit} vs ${photoOf.get(h.file_id)}/${[...files.get(photoOf.get(h.file_id)!)!].find(([, v]) => v === h.file_id)![0]}`;
          if (own.includes(h.file_id)) {
            if (h.score < minSame.score) minSame = { score: h.score, what };
          } else if (h.score > maxDiff.score) maxDiff = { score: h.score, what };
        }
        // With the default threshold: recall and precision.
        const hits = (await searchSimilar(ctx, { userId: 'alice', fileId, topK: 100, urls: false })).results.map((h) => h.file_id);
        expected += own.length;
        found += hits.filter((h) => own.includes(h)).length;
        falsePositives += hits.filter((h) => !own.includes(h)).length;
      }
    }
    console.log(
      `search recall at the default threshold ${THRESHOLD}: ${found}/${expected} = ${((100 * found) / expected).toFixed(1)}%, ` +
        `false positives ${falsePositives}; min same-photo ${minSame.score.toFixed(3)} (${minSame.what}); ` +
        `max different-photo ${maxDiff.score.toFixed(3)} (${maxDiff.what})`,
    );
    expect(minSame.score).toBeGreaterThanOrEqual(THRESHOLD);
    expect(maxDiff.score).toBeLessThan(THRESHOLD);
    expect(found).toBe(expected);
    expect(falsePositives).toBe(0);
  });

  it('finds the family of an outside image (the query is made into a thumbnail like stored ones)', async () => {
    const { embedQueryImage, providerFor } = await import('../../src/jobs/embed.js');
    const v = await embedQueryImage(ctx, providerFor(ctx), fixture('rocket.jpg'));
    const r = await searchSimilar(ctx, { userId: 'alice', vector: Array.from(v), urls: false });
    expect(r.results.map((h) => h.file_id).sort()).toEqual([...files.get('rocket.jpg')!.values()].sort());
    expect(r.results[0]!.score).toBeGreaterThan(0.99);
  });

  it('with orientation-tolerant scoring also finds the copies turned by their EXIF tag (coffee vs the phone photo)', async () => {
    const plain = await searchSimilar(ctx, { userId: 'alice', fileId: id('coffee.png'), topK: 100, urls: false });
    const tolerant = await searchSimilar(ctx, { userId: 'alice', fileId: id('coffee.png'), topK: 100, orientationTolerant: true, urls: false });
    const coffee = [...files.get('coffee.png')!.values(), ...files.get('coffee-phone-4032x3024.jpg')!.values()].filter((x) => x !== id('coffee.png'));
    expect(plain.results.every((h) => photoOf.get(h.file_id) === 'coffee.png')).toBe(true);
    expect(tolerant.results.map((h) => h.file_id).sort()).toEqual(coffee.sort());
    const phone = tolerant.results.filter((h) => photoOf.get(h.file_id) !== 'coffee.png').map((h) => h.score);
    console.log(`orientation-tolerant: coffee vs the turned phone photo and its edits: ${phone.map((s) => s.toFixed(3)).join(', ')}`);
  });

  it('groups near-duplicates: one group per photo', async () => {
    const r = await findDuplicates(ctx, { userId: 'alice' });
    expect(r.files_compared).toBe(25);
    expect(r.groups.map((g) => g.file_ids).sort((a, b) => a[0]!.localeCompare(b[0]!))).toEqual(
      PHOTOS.map((p) => [...files.get(p)!.values()].sort()).sort((a, b) => a[0]!.localeCompare(b[0]!)),
    );
  });

  it("never shows one user another user's files", async () => {
    await expect(searchSimilar(ctx, { userId: 'bob', fileId: id('chelsea.png') })).rejects.toMatchObject({ code: 'not_found' });
    const chelsea = fromStoredVector((await ctx.registry.get(id('chelsea.png')))!.embedding_vector)!;
    const r = await searchSimilar(ctx, { userId: 'bob', vector: Array.from(chelsea), topK: 100, minSimilarity: -1 });
    expect(r.results.map((h) => h.file_id)).toEqual([bobCopy]);
    expect((await findDuplicates(ctx, { userId: 'bob' })).groups).toEqual([]);
    expect((await searchSimilar(ctx, { userId: 'nobody', vector: Array.from(chelsea) })).results).toEqual([]);
  });
});

describe('POST /api/v1/files/search/vector', () => {
  let d: TestDaemon;
  let alice: string;
  let bob: string;
  let service: string;
  let vector: number[];

  beforeAll(async () => {
    d = await startDaemon(env, undefined, { init: false });
    alice = await d.token('alice');
    bob = await d.token('bob');
    service = await d.token('app-backend', ['service']);
    vector = Array.from(fromStoredVector((await ctx.registry.get(id('chelsea.png')))!.embedding_vector)!);
  });
  afterAll(async () => {
    await d?.close();
  });

  it('answers "more like this file" with scores and working presigned thumbnail URLs', async () => {
    const r = await api(d, 'POST', '/api/v1/files/search/vector', { token: alice, body: { file_id: id('chelsea.png'), top_k: 10 } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user_id: 'alice', model: 'biostore-local-v1', dim: 256, method: 'exact', top_k: 10, min_similarity: THRESHOLD });
    expect(r.body.results.map((h: any) => h.file_id).sort()).toEqual([...files.get('chelsea.png')!.values()].filter((x) => x !== id('chelsea.png')).sort());
    const hit = r.body.results[0];
    expect(hit).toMatchObject({ status: 'ready', score: expect.any(Number), thumbnail_url: expect.stringContaining('.thumb.webp'), thumbnail_expires_at: expect.any(String) });
    const img = await fetch(hit.thumbnail_url);
    expect(img.status).toBe(200);
    expect((await sharp(Buffer.from(await img.arrayBuffer())).metadata()).format).toBe('webp');
  });

  it('answers a query vector; a service token may name the user, a user token may not name another', async () => {
    const r = await api(d, 'POST', '/api/v1/files/search/vector', { token: alice, body: { query_embedding: vector, top_k: 3 } });
    expect(r.status).toBe(200);
    expect(r.body.results).toHaveLength(3);
    expect(r.body.results[0]).toMatchObject({ file_id: id('chelsea.png') });
    expect(r.body.results[0].score).toBeCloseTo(1, 5);
    const s = await api(d, 'POST', '/api/v1/files/search/vector', { token: service, body: { user_id: 'alice', query_embedding: vector, top_k: 1 } });
    expect(s.body.results[0].file_id).toBe(id('chelsea.png'));
    expect((await api(d, 'POST', '/api/v1/files/search/vector', { token: service, body: { query_embedding: vector } })).status).toBe(400);
    const f = await api(d, 'POST', '/api/v1/files/search/vector', { token: bob, body: { user_id: 'alice', query_embedding: vector } });
    expect(f.status).toBe(403);
    expect((await api(d, 'POST', '/api/v1/files/search/vector', { body: { query_embedding: vector } })).status).toBe(401);
  });

  it("gives user B a 404 for A's file and only B's own files for a vector", async () => {
    const r = await api(d, 'POST', '/api/v1/files/search/vector', { token: bob, body: { file_id: id('chelsea.png') } });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('not_found');
    const v = await api(d, 'POST', '/api/v1/files/search/vector', { token: bob, body: { query_embedding: vector, top_k: 100, min_similarity: -1 } });
    expect(v.body.results.map((h: any) => h.file_id)).toEqual([bobCopy]);
  });

  it('refuses bad queries with 400 and the JSON error format', async () => {
    const bad: Array<[unknown, string | RegExp, string?]> = [
      [{ query_embedding: vector.slice(0, 255) }, /expected 256 numbers, got 255/, 'invalid_vector'],
      [{ query_embedding: [...vector.slice(0, 255), 'NaN'] }, /element 255 is a string/, 'invalid_vector'],
      [{ query_embedding: [...vector.slice(0, 255), null] }, /element 255 is null/, 'invalid_vector'],
      [{ query_embedding: new Array(256).fill(0) }, /all elements are zero/, 'invalid_vector'],
      [{ query_embedding: vector, top_k: 101 }, /top_k must be a whole number from 1 to 100, got 101/, 'invalid_top_k'],
      [{ query_embedding: vector, top_k: 0 }, /top_k/, 'invalid_top_k'],
      [{ query_embedding: vector, min_similarity: 1.5 }, /min_similarity/, 'invalid_min_similarity'],
      [{ query_embedding: vector, file_id: id('chelsea.png') }, /exactly one/, 'invalid_query'],
      [{}, /exactly one/, 'invalid_query'],
      [{ query_embedding: 'abc' }, /query_embedding must be array/, 'invalid_body'],
      [{ query_embedding: vector, top_k: 2.5 }, /top_k must be integer/, 'invalid_body'],
      [{ query_embedding: vector, extra: 1 }, /additional properties/, 'invalid_body'],
    ];
    for (const [body, message, code] of bad) {
      const r = await api(d, 'POST', '/api/v1/files/search/vector', { token: alice, body });
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.body.error.message).toMatch(message);
      if (code) expect(r.body.error.code).toBe(code);
    }
    // NaN is not JSON at all.
    const nan = await api(d, 'POST', '/api/v1/files/search/vector', { token: alice, raw: `{"query_embedding":[NaN${',0.1'.repeat(255)}]}` });
    expect(nan.status).toBe(400);
    expect(nan.body.error.code).toBe('invalid_json');
  });

  it('says 409 for a file that has no vector yet', async () => {
    const rec = await seedUploaded(ctx, 'alice', fixture('coffee.webp'), 'image/webp');
    const r = await api(d, 'POST', '/api/v1/files/search/vector', { token: alice, body: { file_id: rec._id } });
    expect(r.status).toBe(409);
    expect(r.body.error).toMatchObject({ code: 'not_embedded', message: expect.stringMatching(/reindex-embeddings/) });
    await ctx.registry.remove(rec._id, ['uploaded']);
  });
});

describe('biostore search', () => {
  it('prints the family of a file, and JSON with --json', async () => {
    const r = await cli(['search', '--user', 'alice', '--file-id', id('rocket.jpg')], env);
    expect(r.code, r.stderr).toBe(0);
    for (const x of files.get('rocket.jpg')!.values()) if (x !== id('rocket.jpg')) expect(r.stdout).toContain(x);
    expect(r.stdout).toMatch(/4 match\(es\) with similarity >= 0.75 \(biostore-local-v1, exact scan of 24 vectors/);
    const j = await cli(['search', '--user', 'alice', '--file-id', id('rocket.jpg'), '--top-k', '2', '--json'], env);
    expect(j.code).toBe(0);
    const body = JSON.parse(j.stdout);
    expect(body.results).toHaveLength(2);
    expect(body.results[0].thumbnail_url).toMatch(/^http/);
  });

  it('searches by an image file, for one user only', async () => {
    const a = JSON.parse((await cli(['search', '--user', 'alice', '--image', join(FIXTURES, 'chelsea.png'), '--json'], env)).stdout);
    expect(a.results.map((h: any) => h.file_id).sort()).toEqual([...files.get('chelsea.png')!.values()].sort());
    const b = JSON.parse((await cli(['search', '--user', 'bob', '--image', join(FIXTURES, 'chelsea.png'), '--json'], env)).stdout);
    expect(b.results.map((h: any) => h.file_id)).toEqual([bobCopy]);
    const none = await cli(['search', '--user', 'bob', '--file-id', id('chelsea.png')], env);
    expect(none.code).toBe(5);
    expect(none.stderr).toMatch(/^biostore: file .* not found\n$/);
  });

  it('lists near-duplicate groups', async () => {
    const r = await cli(['search', '--duplicates', '--user', 'alice', '--json'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).groups).toHaveLength(PHOTOS.length);
    const t = await cli(['search', '--duplicates', '--user', 'alice'], env);
    expect(t.stdout).toMatch(/5 group\(s\) of near-duplicates among 25 files/);
  });

  it('refuses bad flags with exit 2 and a one-line reason', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['search', '--file-id', 'x'], /--user is required/],
      [['search', '--user', 'alice'], /exactly one of --file-id, --image or --duplicates/],
      [['search', '--user', 'alice', '--file-id', 'x', '--image', 'y'], /exactly one/],
      [['search', '--user', 'alice', '--file-id', id('rocket.jpg'), '--top-k', '500'], /top_k must be a whole number from 1 to 100/],
      [['search', '--user', 'alice', '--file-id', id('rocket.jpg'), '--min-similarity', 'high'], /--min-similarity high must be a number/],
      [['search', '--user', 'alice', '--image', '/nonexistent.jpg'], /cannot read --image \/nonexistent.jpg: no such file/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });

  it('has --help with examples', async () => {
    for (const c of ['search', 'reindex-embeddings']) {
      const r = await cli([c, '--help'], env);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Examples:\n {2}\$ biostore /);
    }
  });
});

describe('reindex-embeddings', () => {
  it('--dry-run lists and changes nothing; an interrupted run resumes; a third run finds nothing', async () => {
    const ids = await readyFiles(ctx, 'carol', 5);
    const dry = await reindexEmbeddings(ctx, { user: 'carol', dryRun: true });
    expect(dry.items.map((i) => i.outcome)).toEqual(Array(5).fill('would-embed'));
    expect(await ctx.registry.count({ user_id: 'carol', embedding_model: { $exists: true } })).toBe(0);

    const ac = new AbortController();
    const first = await reindexEmbeddings(ctx, { user: 'carol', concurrency: 1, signal: ac.signal, onProgress: () => ac.abort() });
    expect(first.interrupted).toBe(true);
    expect(first.embedded).toBeGreaterThanOrEqual(1);
    expect(first.embedded).toBeLessThan(5);
    const rest = await reindexEmbeddings(ctx, { user: 'carol' });
    expect(rest.embedded).toBe(5 - first.embedded);
    expect([...first.items, ...rest.items].filter((i) => i.outcome === 'embedded').map((i) => i.file_id).sort()).toEqual([...ids].sort());
    expect((await reindexEmbeddings(ctx, { user: 'carol' })).selected).toBe(0);
    expect(await ctx.registry.count({ user_id: 'carol', embedding_lease_owner: { $exists: true } })).toBe(0);
  });

  it('two runs at once embed each file exactly once', async () => {
    const ids = await readyFiles(ctx, 'dora', 10);
    const other = new Context(testConfig(env)); // a second process, in effect
    try {
      const [a, b] = await Promise.all([reindexEmbeddings(ctx, { user: 'dora', concurrency: 3 }), reindexEmbeddings(other, { user: 'dora', concurrency: 3 })]);
      const ea = a.items.filter((i) => i.outcome === 'embedded').map((i) => i.file_id);
      const eb = b.items.filter((i) => i.outcome === 'embedded').map((i) => i.file_id);
      console.log(`two concurrent reindex runs: ${ea.length} + ${eb.length} embedded, ${a.skipped} + ${b.skipped} skipped as taken`);
      expect([...ea, ...eb].sort()).toEqual([...ids].sort());
      expect(ea.filter((x) => eb.includes(x))).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('--stale after a model change touches exactly the stale files', async () => {
    const ids = await readyFiles(ctx, 'eve', 4);
    expect((await reindexEmbeddings(ctx, { user: 'eve' })).embedded).toBe(4);
    const server = await embedServer(() => 'ok');
    const httpEnv = { ...env, EMBEDDING_PROVIDER: 'http', EMBEDDING_URL: server.url, EMBEDDING_MODEL: 'food-clip-test', EMBEDDING_API_KEY: 'test-key-123' };
    const h = new Context(testConfig(httpEnv));
    try {
      // Without --stale nothing is missing a vector.
      expect((await reindexEmbeddings(h, { user: 'eve' })).selected).toBe(0);
      const one = await reindexEmbeddings(h, { user: 'eve', stale: true, limit: 1 });
      expect(one).toMatchObject({ provider: 'http', model: 'food-clip-test', selected: 1, embedded: 1 });
      const rest = await reindexEmbeddings(h, { user: 'eve', stale: true });
      expect(rest.embedded).toBe(3);
      const touched = [...one.items, ...rest.items].map((i) => i.file_id);
      expect(touched.sort()).toEqual([...ids].sort());
      expect(server.images).toBe(4);
      expect(server.auth.every((a) => a === 'Bearer test-key-123')).toBe(true);
      expect((await reindexEmbeddings(h, { user: 'eve', stale: true })).selected).toBe(0);
      // Nobody else's vectors were touched.
      expect(await ctx.registry.count({ embedding_model: 'food-clip-test' })).toBe(4);
      // Each side searches only vectors of its own model.
      const mine = await searchSimilar(h, { userId: 'eve', fileId: ids[0]!, minSimilarity: -1, urls: false });
      expect(mine.results).toHaveLength(3);
      await expect(searchSimilar(ctx, { userId: 'eve', fileId: ids[0]! })).rejects.toMatchObject({ code: 'not_embedded' });

      // A service answering with another dimension: one clear error, and no lease left behind.
      const wrong = new Context(testConfig({ ...httpEnv, EMBEDDING_MODEL: 'food-clip-512', VECTOR_EMBEDDING_DIM: '512' }));
      try {
        await expect(reindexEmbeddings(wrong, { user: 'eve', stale: true })).rejects.toThrow(
          /returned 256-d vectors for model food-clip-512, but VECTOR_EMBEDDING_DIM=512/,
        );
        expect(await ctx.registry.count({ user_id: 'eve', embedding_lease_owner: { $exists: true } })).toBe(0);
      } finally {
        await wrong.close();
      }
    } finally {
      await h.close();
      await server.close();
    }
  });

  it('refuses VECTOR_EMBEDDING_DIM != 256 with the local provider (exit 3, nothing contacted)', async () => {
    const r = await cli(['reindex-embeddings'], { ...env, VECTOR_EMBEDDING_DIM: '512', MONGODB_URI: 'mongodb://127.0.0.1:1' });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      'biostore: VECTOR_EMBEDDING_DIM=512 does not fit EMBEDDING_PROVIDER=local, whose vectors have 256 dimensions; set VECTOR_EMBEDDING_DIM=256 or use EMBEDDING_PROVIDER=http\n',
    );
    const s = await cli(['reindex-embeddings'], { ...env, EMBEDDING_PROVIDER: 'http', EMBEDDING_URL: 'http://127.0.0.1:1/' });
    expect(s.code).toBe(3);
    expect(s.stderr).toMatch(/EMBEDDING_MODEL is required when EMBEDDING_PROVIDER=http/);
  });

  it('prints a report, and JSON with --json', async () => {
    await readyFiles(ctx, 'fred', 2);
    const r = await cli(['reindex-embeddings', '--user', 'fred', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ selected: 2, embedded: 2, failed: 0, dry_run: false, interrupted: false });
    const t = await cli(['reindex-embeddings', '--user', 'fred'], env);
    expect(t.stdout).toMatch(/selected +│? *0/);
  });

  it('the daemon embeds a file as soon as the optimizer has made it ready', async () => {
    const rec = await seedUploaded(ctx, 'gina', fixture('rocket.jpg'), 'image/jpeg');
    const pool = new OptimizerPool(ctx, { concurrency: 1, pollMs: 50 });
    pool.start();
    try {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !(await ctx.registry.get(rec._id))?.embedding_model) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await pool.stop();
    }
    expect(await ctx.registry.get(rec._id)).toMatchObject({ status: 'ready', embedding_model: 'biostore-local-v1', embedding_dim: 256 });
  });
});

// ---- the http provider against a local server of our own ----

type Behaviour = 'ok' | 'hang' | { status: number; headers?: Record<string, string>; body?: string } | { dim: number };

interface EmbedServer {
  url: string;
  requests: number;
  images: number;
  batches: number[];
  maxInFlight: number;
  auth: Array<string | undefined>;
  close(): Promise<void>;
}

/** Deterministic fake embedding of one input string. */
function fakeVector(input: string, dim: number): number[] {
  const h = createHash('sha256').update(input).digest();
  return Array.from({ length: dim }, (_, i) => (h[i % 32]! - 127.5) / 128 + i / dim);
}

/** An OpenAI-style embeddings server whose n-th request (0-based) behaves as `behave(n)` says. */
async function embedServer(behave: (n: number) => Behaviour, delayMs = 0): Promise<EmbedServer> {
  let inFlight = 0;
  const state = { requests: 0, images: 0, batches: [] as number[], maxInFlight: 0, auth: [] as Array<string | undefined> };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const n = state.requests++;
    state.auth.push(req.headers.authorization);
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', async () => {
      const b = behave(n);
      if (b === 'hang') return; // never answers; the client must time out
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      inFlight--;
      if (typeof b === 'object' && 'status' in b) {
        res.writeHead(b.status, { 'content-type': 'application/json', ...(b.headers ?? {}) });
        return res.end(b.body ?? JSON.stringify({ error: { message: `status ${b.status} on purpose` } }));
      }
      const body = JSON.parse(raw) as { model: string; input: string[] };
      if (!body.input.every((s) => s.startsWith('data:image/'))) {
        res.writeHead(400);
        return res.end('{"error":{"message":"input must be image data URIs"}}');
      }
      state.batches.push(body.input.length);
      state.images += body.input.length;
      const dim = typeof b === 'object' && 'dim' in b ? b.dim : 256;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', model: body.model, data: body.input.map((s, index) => ({ object: 'embedding', index, embedding: fakeVector(s, dim) })).reverse() }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/v1/embeddings`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  }) as unknown as EmbedServer & typeof state;
}

describe('http embedding provider against a flaky local server', () => {
  const img = (i: number) => Buffer.concat([Buffer.from('RIFF0000WEBPVP8 '), Buffer.from(String(i))]);
  const provider = (url: string, o: Partial<ConstructorParameters<typeof HttpEmbeddingProvider>[0]> = {}) =>
    new HttpEmbeddingProvider({ url, model: 'm', dim: 256, apiKey: 'k', timeoutMs: 300, retries: 3, backoffMs: 10, maxBackoffMs: 50, ...o });

  it('retries 503s and a 429 (honouring Retry-After), then succeeds with unit vectors in input order', async () => {
    const s = await embedServer((n) => (n < 2 ? { status: 503 } : n === 2 ? { status: 429, headers: { 'retry-after': '0' } } : 'ok'));
    try {
      const out = await provider(s.url).embed([img(1), img(2)]);
      expect(s.requests).toBe(4);
      expect(out).toHaveLength(2);
      expect(Math.hypot(...out[0]!)).toBeCloseTo(1, 5);
      const expected = fakeVector(`data:image/webp;base64,${img(1).toString('base64')}`, 256);
      const n = Math.hypot(...expected);
      expect(out[0]![5]).toBeCloseTo(expected[5]! / n, 5); // the server answers in reverse; `index` puts it right
    } finally {
      await s.close();
    }
  });

  it('times out a request that hangs and retries it', async () => {
    const s = await embedServer((n) => (n === 0 ? 'hang' : 'ok'));
    try {
      const t0 = Date.now();
      const out = await provider(s.url).embed([img(1)]);
      expect(out).toHaveLength(1);
      expect(s.requests).toBe(2);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    } finally {
      await s.close();
    }
  });

  it('gives up after the retries with one clear UnavailableError, in bounded time', async () => {
    const s = await embedServer(() => 'hang');
    try {
      const t0 = Date.now();
      const err = await provider(s.url, { retries: 2 }).embed([img(1)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toMatch(/^embedding service: http:\/\/127\.0\.0\.1:\d+\/v1\/embeddings failed 3 times, last: no answer within 300 ms/);
      expect(s.requests).toBe(3);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await s.close();
    }
  });

  it('does not retry a 400, and says a 401 is about EMBEDDING_API_KEY', async () => {
    const s = await embedServer((n) => (n === 0 ? { status: 400 } : { status: 401 }));
    try {
      const e400 = await provider(s.url).embed([img(1)]).catch((e: unknown) => e);
      expect(e400).toBeInstanceOf(EmbeddingRejectedError);
      expect((e400 as Error).message).toMatch(/rejected the request \(HTTP 400: status 400 on purpose\)/);
      expect(s.requests).toBe(1);
      const e401 = await provider(s.url).embed([img(1)]).catch((e: unknown) => e);
      expect(e401).toBeInstanceOf(UnavailableError);
      expect((e401 as Error).message).toMatch(/refused our credentials \(HTTP 401.*check EMBEDDING_API_KEY/);
      expect(s.requests).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('batches images and keeps to its concurrency limit', async () => {
    const s = await embedServer(() => 'ok', 30);
    try {
      const out = await provider(s.url, { batchSize: 16, concurrency: 2 }).embed(Array.from({ length: 40 }, (_, i) => img(i)));
      expect(out).toHaveLength(40);
      expect([...s.batches].sort((a, b) => b - a)).toEqual([16, 16, 8]);
      expect(s.maxInFlight).toBe(2);
      expect(s.auth.every((a) => a === 'Bearer k')).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('refuses vectors of the wrong dimension with a ConfigError naming VECTOR_EMBEDDING_DIM', async () => {
    const s = await embedServer(() => ({ dim: 512 }));
    try {
      const err = await provider(s.url).embed([img(1)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toBe('the embedding service returned 512-d vectors for model m, but VECTOR_EMBEDDING_DIM=256; set VECTOR_EMBEDDING_DIM=512 (and re-run init-mongo)');
      expect(s.requests).toBe(1);
    } finally {
      await s.close();
    }
  });
});
