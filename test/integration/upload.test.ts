import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUpload } from '../../src/core/uploads.js';
import { fixedClock } from '../../src/core/context.js';
import { reconcile } from '../../src/jobs/reconcile.js';
import { api, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { cleanup, FIXTURES, testEnv } from '../helpers/stack.js';

const photo = readFileSync(join(FIXTURES, 'coffee-phone-4032x3024.jpg'));
const photoSha = createHash('sha256').update(photo).digest('hex');
const env = testEnv('upload', { QUOTA_FILES_PER_USER: '1000' });
let d: TestDaemon;
let alice: string;
let bob: string;

beforeAll(async () => {
  d = await startDaemon(env);
  alice = await d.token('alice');
  bob = await d.token('bob');
});
afterAll(async () => {
  await d?.close();
  await cleanup(env);
});

async function put(sign: { upload_url: string; headers: Record<string, string> }, body: Buffer, headers: Record<string, string> = {}) {
  // fetch sets Content-Length from the body itself; S3 compares it with the signed one.
  const signed = Object.fromEntries(Object.entries(sign.headers).filter(([k]) => k.toLowerCase() !== 'content-length'));
  const res = await fetch(sign.upload_url, { method: 'PUT', headers: { ...signed, ...headers }, body: new Uint8Array(body) });
  await res.arrayBuffer();
  return res.status;
}

describe('sign, upload, register', () => {
  it('signs a PUT that uploads the phone photo straight to S3, then registers it with the right size and SHA-256', async () => {
    const s = await api(d, 'POST', '/api/v1/upload/sign', {
      token: alice,
      body: { filename: 'steak.jpg', content_type: 'image/jpeg', use_case: 'vision_scan', size_bytes: photo.length, checksum_sha256: photoSha },
    });
    expect(s.status).toBe(201);
    expect(s.body).toMatchObject({ method: 'PUT', key: `raw/alice/${s.body.file_id}.jpg`, max_bytes: photo.length });
    const headers = Object.fromEntries(Object.entries(s.body.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    expect(headers).toMatchObject({ 'content-type': 'image/jpeg', 'content-length': String(photo.length) });
    expect(headers['x-amz-checksum-sha256']).toBe(Buffer.from(photoSha, 'hex').toString('base64'));
    expect(Date.parse(s.body.expires_at)).toBeGreaterThan(Date.now());

    expect(await put(s.body, photo)).toBe(200);
    const r = await registerUpload(d.ctx, s.body.key);
    expect(r.outcome).toBe('registered');
    expect(r.file).toMatchObject({ status: 'uploaded', size_bytes: photo.length, checksum_sha256: photoSha, width: 3024, height: 4032 }); // as displayed (EXIF Orientation=6)

    // a duplicate or late event changes nothing
    expect((await registerUpload(d.ctx, s.body.key)).outcome).toBe('already');
    const usage = await d.ctx.usage.get('alice');
    expect(usage).toMatchObject({ bytes: photo.length, files: 1, reserved_bytes: 0, reserved_files: 0 });

    const got = await api(d, 'GET', `/api/v1/files/${s.body.file_id}`, { token: alice });
    expect(got.body).toMatchObject({ status: 'uploaded', size_bytes: photo.length, checksum_sha256: photoSha });
  });

  it('keeps the client file name a label: keys are made from ids', async () => {
    const s = await api(d, 'POST', '/api/v1/upload/sign', {
      token: alice,
      body: { filename: `../../${'x'.repeat(900)}.jpg`, content_type: 'image/jpeg' },
    });
    expect(s.status).toBe(201);
    expect(s.body.key).toMatch(/^raw\/alice\/[0-9a-f-]{36}\.jpg$/);
    const rec = await d.ctx.registry.get(s.body.file_id);
    expect(rec!.original_filename.length).toBeLessThanOrEqual(255);
    expect(rec!.original_filename).not.toContain('/');
  });

  it('refuses non-image types, oversize declarations and bad checksums with a 4xx and no record', async () => {
    const before = await d.ctx.registry.count({ user_id: 'carol' });
    const carol = await d.token('carol');
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ filename: 'a.pdf', content_type: 'application/pdf' }, 415, 'unsupported_media_type'],
      [{ filename: 'a.heic', content_type: 'image/heic' }, 415, 'unsupported_media_type'],
      [{ filename: 'a.jpg', content_type: 'image/jpeg', size_bytes: 26 * 1024 * 1024 }, 413, 'too_large'],
      [{ filename: 'a.jpg', content_type: 'image/jpeg', checksum_sha256: 'abc' }, 400, 'invalid_body'],
      [{ filename: 'a.jpg' }, 400, 'invalid_body'],
      [{ filename: 'a.jpg', content_type: 'image/jpeg', extra: 1 }, 400, 'invalid_body'],
    ];
    for (const [body, status, code] of cases) {
      const r = await api(d, 'POST', '/api/v1/upload/sign', { token: carol, body });
      expect([r.status, r.body.error.code], JSON.stringify(body)).toEqual([status, code]);
      expect(r.body.error.message).toEqual(expect.any(String));
    }
    expect(await d.ctx.registry.count({ user_id: 'carol' })).toBe(before);
    const usage = await d.ctx.usage.get('carol');
    expect([usage?.bytes ?? 0, usage?.files ?? 0]).toEqual([0, 0]);
  });

  it('rejects an HTML file sent as image/jpeg: object deleted, quota released, reason recorded', async () => {
    const html = Buffer.from('<!doctype html><html><body>not a photo</body></html>');
    const dave = await d.token('dave');
    const s = await api(d, 'POST', '/api/v1/upload/sign', { token: dave, body: { filename: 'x.jpg', content_type: 'image/jpeg', size_bytes: html.length } });
    expect(await put(s.body, html)).toBe(200);
    const r = await registerUpload(d.ctx, s.body.key);
    expect(r.outcome).toBe('rejected');
    expect(r.file!.reason).toMatch(/not an image/);
    expect(await d.ctx.objects.head(env.BUCKET_HOT!, s.body.key)).toBeNull();
    expect(await d.ctx.usage.get('dave')).toMatchObject({ bytes: 0, files: 0, reserved_bytes: 0, reserved_files: 0 });
  });

  it('rejects a PNG sent as image/jpeg (the real format is sniffed from magic numbers)', async () => {
    const png = readFileSync(join(FIXTURES, 'chelsea.png'));
    const s = await api(d, 'POST', '/api/v1/upload/sign', { token: alice, body: { filename: 'x.jpg', content_type: 'image/jpeg' } });
    expect(await put(s.body, png)).toBe(200);
    const r = await registerUpload(d.ctx, s.body.key);
    expect(r.outcome).toBe('rejected');
    expect(r.file!.reason).toMatch(/png/);
  });
});

describe('domain events', () => {
  it('appends file.uploaded and file.rejected to the Redis stream with the file id and key', async () => {
    const { EVENT_STREAM } = await import('../../src/core/events.js');
    const redis = d.ctx.redis!;
    const s = await api(d, 'POST', '/api/v1/upload/sign', { token: alice, body: { filename: 'e.jpg', content_type: 'image/jpeg' } });
    expect(await put(s.body, photo)).toBe(200);
    await registerUpload(d.ctx, s.body.key);
    const entries = await redis.client.xrevrange(EVENT_STREAM, '+', '-', 'COUNT', 200);
    const events = entries.map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])));
    expect(events).toContainEqual(expect.objectContaining({ type: 'file.uploaded', file_id: s.body.file_id, key: s.body.key, user_id: 'alice' }));
    expect(events.some((e) => e.type === 'file.rejected')).toBe(true);
  });
});

describe('quota', () => {
  it('lets exactly one of many concurrent signs through a quota with room for one file', async () => {
    const qenv = testEnv('quota', { QUOTA_FILES_PER_USER: '1' });
    const q = await startDaemon(qenv);
    try {
      for (const user of ['erin', 'frank', 'gina']) {
        const t = await q.token(user);
        const results = await Promise.all(
          Array.from({ length: 12 }, () => api(q, 'POST', '/api/v1/upload/sign', { token: t, body: { filename: 'a.jpg', content_type: 'image/jpeg', size_bytes: 1000 } })),
        );
        const statuses = results.map((r) => r.status).sort();
        expect(statuses.filter((s) => s === 201)).toHaveLength(1);
        expect(statuses.filter((s) => s === 403)).toHaveLength(11);
        expect(results.find((r) => r.status === 403)!.body.error.code).toBe('quota_exceeded');
        expect(await q.ctx.registry.count({ user_id: user })).toBe(1);
        expect(await q.ctx.usage.get(user)).toMatchObject({ files: 1, bytes: 1000, reserved_files: 1 });
      }
    } finally {
      await q.close();
      await cleanup(qenv);
    }
  });

  it("lets a new user's first concurrent signs all through when there is room", async () => {
    const t = await d.token(`new${Date.now()}`);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => api(d, 'POST', '/api/v1/upload/sign', { token: t, body: { filename: 'a.jpg', content_type: 'image/jpeg', size_bytes: 10 } })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(201));
  });

  it('releases the reservation when the URL expires unused (reconciler), and on delete', async () => {
    const s = await api(d, 'POST', '/api/v1/upload/sign', { token: bob, body: { filename: 'a.jpg', content_type: 'image/jpeg', size_bytes: 5000 } });
    expect(await d.ctx.usage.get('bob')).toMatchObject({ bytes: 5000, files: 1 });
    // ten minutes later, no object: the reconciler expires it
    const later = Object.create(d.ctx, { clock: { value: fixedClock(new Date(Date.now() + 10 * 60_000)) } });
    const rep = await reconcile(later);
    expect(rep.expired).toBeGreaterThanOrEqual(1);
    expect((await d.ctx.registry.get(s.body.file_id))!.status).toBe('expired');
    expect(await d.ctx.usage.get('bob')).toMatchObject({ bytes: 0, files: 0, reserved_bytes: 0 });
  });
});

describe('registry transitions', () => {
  it('let exactly one of many concurrent writers move a file out of a state', async () => {
    for (let round = 0; round < 5; round++) {
      const s = await api(d, 'POST', '/api/v1/upload/sign', { token: alice, body: { filename: 'r.jpg', content_type: 'image/jpeg' } });
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => d.ctx.registry.transition(s.body.file_id, 'pending', { status: 'expired', reason: `writer ${i}` })),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    }
  });
});

describe('reconciler', () => {
  it('registers an upload whose event never came', async () => {
    const s = await api(d, 'POST', '/api/v1/upload/sign', { token: alice, body: { filename: 'lost.jpg', content_type: 'image/jpeg', size_bytes: photo.length } });
    expect(await put(s.body, photo)).toBe(200);
    const rep = await reconcile(d.ctx);
    expect(rep.registered).toBeGreaterThanOrEqual(1);
    expect((await d.ctx.registry.get(s.body.file_id))!).toMatchObject({ status: 'uploaded', checksum_sha256: photoSha });
  });
});

describe('S3 refuses what was not signed', () => {
  it('refuses another Content-Type, another length and a wrong checksum; nothing is registered', async () => {
    const sign = async () =>
      (await api(d, 'POST', '/api/v1/upload/sign', {
        token: alice,
        body: { filename: 'a.jpg', content_type: 'image/jpeg', size_bytes: photo.length, checksum_sha256: photoSha },
      })).body;
    const a = await sign();
    expect(await put(a, photo, { 'content-type': 'image/png' })).toBeGreaterThanOrEqual(400);
    const b = await sign();
    expect(await put(b, photo.subarray(0, photo.length - 1))).toBeGreaterThanOrEqual(400);
    const c = await sign();
    const tampered = Buffer.from(photo);
    tampered.writeUInt8(tampered.readUInt8(tampered.length - 10) ^ 0xff, tampered.length - 10);
    expect(await put(c, tampered)).toBeGreaterThanOrEqual(400);
    for (const x of [a, b, c]) {
      expect(await d.ctx.objects.head(env.BUCKET_HOT!, x.key)).toBeNull();
      expect((await registerUpload(d.ctx, x.key)).outcome).toBe('missing');
    }
  });

  it('refuses an expired URL', async () => {
    const { signUpload } = await import('../../src/core/uploads.js');
    const s = await signUpload(d.ctx, { userId: 'alice', filename: 'a.jpg', contentType: 'image/jpeg', sizeBytes: photo.length, expiresInSeconds: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    expect(await put({ upload_url: s.upload_url, headers: s.headers }, photo)).toBe(403);
  });

  it('POST-policy mode refuses a body over the limit', async () => {
    const s = await api(d, 'POST', '/api/v1/upload/sign', { token: alice, body: { filename: 'a.jpg', content_type: 'image/jpeg', size_bytes: 1000, mode: 'post' } });
    expect(s.status).toBe(201);
    expect(s.body.method).toBe('POST');
    const form = new FormData();
    for (const [k, v] of Object.entries(s.body.fields as Record<string, string>)) form.append(k, v);
    form.append('file', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'a.jpg');
    const res = await fetch(s.body.upload_url, { method: 'POST', body: form });
    await res.arrayBuffer();
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(await d.ctx.objects.head(env.BUCKET_HOT!, s.body.key)).toBeNull();
  });
});

describe('auth and ownership', () => {
  let fileId: string;
  beforeAll(async () => {
    const s = await api(d, 'POST', '/api/v1/upload/sign', { token: alice, body: { filename: 'mine.jpg', content_type: 'image/jpeg' } });
    fileId = s.body.file_id;
  });

  it('answers 401 without a token, with a bad token and with an expired token', async () => {
    const body = { filename: 'a.jpg', content_type: 'image/jpeg' };
    expect((await api(d, 'POST', '/api/v1/upload/sign', { body })).status).toBe(401);
    expect((await api(d, 'POST', '/api/v1/upload/sign', { body, token: 'not.a.jwt' })).status).toBe(401);
    const forged = alice.slice(0, -4) + (alice.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await api(d, 'POST', '/api/v1/upload/sign', { body, token: forged })).status).toBe(401);
    const { mintToken } = await import('../../src/core/auth.js');
    const old = await mintToken(d.ctx.config.auth, { userId: 'alice', scopes: [], ttlSeconds: 60, now: new Date(Date.now() - 3600_000) });
    const r = await api(d, 'POST', '/api/v1/upload/sign', { body, token: old.token });
    expect(r.status).toBe(401);
    expect(r.body.error).toEqual({ code: 'unauthorized', message: 'token expired' });
  });

  it("answers 404 for another user's file, for reads, download URLs and deletes", async () => {
    expect((await api(d, 'GET', `/api/v1/files/${fileId}`, { token: bob })).status).toBe(404);
    expect((await api(d, 'GET', `/api/v1/files/${fileId}/download-url`, { token: bob })).status).toBe(404);
    expect((await api(d, 'DELETE', `/api/v1/files/${fileId}`, { token: bob })).status).toBe(204);
    expect((await api(d, 'GET', `/api/v1/files/${fileId}`, { token: alice })).status).toBe(200);
  });

  it('lets only a service token act for another user_id', async () => {
    const body = { filename: 'a.jpg', content_type: 'image/jpeg', user_id: 'alice' };
    expect((await api(d, 'POST', '/api/v1/upload/sign', { token: bob, body })).status).toBe(403);
    const svc = await d.token('backend', ['service']);
    const r = await api(d, 'POST', '/api/v1/upload/sign', { token: svc, body });
    expect(r.status).toBe(201);
    expect(r.body.key).toMatch(/^raw\/alice\//);
  });

  it('deletes a file: objects and record go, quota is released, and repeating it is harmless', async () => {
    const s = await api(d, 'POST', '/api/v1/upload/sign', { token: bob, body: { filename: 'd.jpg', content_type: 'image/jpeg', size_bytes: photo.length } });
    expect(await put(s.body, photo)).toBe(200);
    expect((await registerUpload(d.ctx, s.body.key)).outcome).toBe('registered');
    const before = (await d.ctx.usage.get('bob'))!;
    expect((await api(d, 'DELETE', `/api/v1/files/${s.body.file_id}`, { token: bob })).status).toBe(204);
    expect((await api(d, 'DELETE', `/api/v1/files/${s.body.file_id}`, { token: bob })).status).toBe(204);
    expect(await d.ctx.registry.get(s.body.file_id)).toBeNull();
    expect(await d.ctx.objects.head(env.BUCKET_HOT!, s.body.key)).toBeNull();
    const after = (await d.ctx.usage.get('bob'))!;
    expect(after.bytes).toBe(before.bytes - photo.length);
    expect(after.files).toBe(before.files - 1);
  });
});

describe('bad requests', () => {
  it('answers malformed JSON, huge bodies, wrong media types and unknown routes with 4xx JSON errors, and keeps serving', async () => {
    const bad = await api(d, 'POST', '/api/v1/upload/sign', { token: alice, raw: '{"filename": ' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_json');
    const huge = await api(d, 'POST', '/api/v1/upload/sign', { token: alice, raw: JSON.stringify({ filename: 'x'.repeat(200_000), content_type: 'image/jpeg' }) });
    expect(huge.status).toBe(413);
    const text = await api(d, 'POST', '/api/v1/upload/sign', { token: alice, raw: '<a/>', headers: { 'content-type': 'application/xml' } });
    expect(text.status).toBe(415);
    const none = await api(d, 'GET', '/api/v1/nope', { token: alice });
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('not_found');
    for (const r of [bad, huge, text, none]) expect(JSON.stringify(r.body)).not.toMatch(/\bat .*\.(js|ts):\d+/);
    expect((await api(d, 'GET', '/healthz')).status).toBe(200);
  });

  it('serves readiness and Prometheus metrics', async () => {
    const ready = await api(d, 'GET', '/readyz');
    expect(ready).toEqual({ status: 200, body: { ready: true, mongodb: true, s3: true } });
    const m = await api(d, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/biostore_signs_total \d+/);
    expect(m.body).toMatch(/biostore_http_request_duration_seconds_bucket/);
    expect(m.body).toMatch(/biostore_uploads_rejected_total [1-9]/);
  });
});
