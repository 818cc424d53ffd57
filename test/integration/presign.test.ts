/**
 * Presigned PUT/GET/POST against the real local S3 (versitygw): the fast
 * signer's URLs must be accepted exactly like the SDK's, and S3 itself must
 * refuse every upload that differs from what was signed.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexToBase64, Presigner, type PresignedRequest, type PresignerOptions } from '../../src/storage/presign.js';
import { createS3Client, httpStatus } from '../../src/storage/s3.js';
import { deleteBucketDeep } from '../helpers/s3.js';
import { FIXTURES, testConfig, testEnv } from '../helpers/stack.js';

const cfg = testConfig(testEnv('presign'));
const bucket = cfg.s3.bucketHot;
const opts: PresignerOptions = {
  region: cfg.s3.region,
  endpoint: cfg.s3.endpoint,
  forcePathStyle: cfg.s3.forcePathStyle,
  accessKeyId: cfg.s3.accessKeyId!,
  secretAccessKey: cfg.s3.secretAccessKey!,
};
const photo = readFileSync(join(FIXTURES, 'coffee-phone-4032x3024.jpg'));
const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let s3: S3Client;
const presigner = new Presigner(opts);

beforeAll(async () => {
  s3 = createS3Client(cfg.s3);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
});

afterAll(async () => {
  if (s3) {
    await deleteBucketDeep(s3, bucket);
    s3.destroy();
  }
});

/** Sends a presigned request the way a phone would: its headers, a body. */
function send(req: PresignedRequest, body?: Uint8Array<ArrayBuffer>, headerOverrides: Record<string, string> = {}): Promise<Response> {
  const headers = { ...req.headers, ...headerOverrides };
  // fetch derives Content-Length from the body; a declared one must match it (it is signed).
  delete headers['Content-Length'];
  return fetch(req.url, { method: req.method, headers, body });
}

async function exists(key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    if (httpStatus(err) === 404) return false;
    throw err;
  }
}

async function getBytes(key: string): Promise<Buffer> {
  const res = await fetch(presigner.presignGet({ bucket, key, expiresInSeconds: 60 }).url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** Asserts S3 refused with a 4xx and did not create the object; returns the S3 error code. */
async function expectRefused(res: Response, key: string): Promise<string> {
  const text = await res.text();
  expect(res.status, text).toBeGreaterThanOrEqual(400);
  expect(res.status, text).toBeLessThan(500);
  expect(await exists(key)).toBe(false);
  return /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? '';
}

describe('hexToBase64', () => {
  it('converts a hex digest and refuses malformed hex', () => {
    expect(hexToBase64(sha256Hex(photo))).toBe(createHash('sha256').update(photo).digest('base64'));
    expect(() => hexToBase64('abc')).toThrow(/hex/);
    expect(() => hexToBase64('zz')).toThrow(/hex/);
  });
});

describe('presigned PUT and GET (fast path)', () => {
  it('uploads the fixture photo with signed type, length and checksum; a presigned GET returns the same bytes', async () => {
    const key = 'raw/u1/photo.jpg';
    const req = presigner.presignPut({
      bucket,
      key,
      contentType: 'image/jpeg',
      contentLength: photo.length,
      checksumSha256Hex: sha256Hex(photo),
      expiresInSeconds: 60,
    });
    expect(req.method).toBe('PUT');
    expect(req.headers).toEqual({
      'Content-Type': 'image/jpeg',
      'Content-Length': String(photo.length),
      'x-amz-checksum-sha256': hexToBase64(sha256Hex(photo)),
    });
    // Signed as headers, not hoisted into the query string.
    const q = new URL(req.url).searchParams;
    expect(q.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host;x-amz-checksum-sha256');
    expect(q.has('x-amz-checksum-sha256')).toBe(false);
    expect(q.get('X-Amz-Expires')).toBe('60');
    expect(Math.abs(req.expiresAt.getTime() - Date.now() - 60_000)).toBeLessThan(2_000);

    const res = await send(req, photo);
    expect(res.status, await res.text()).toBe(200);

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentType).toBe('image/jpeg');
    expect(head.ContentLength).toBe(photo.length);
    expect((await getBytes(key)).equals(photo)).toBe(true);
  });

  it('defaults to a 60 s expiry', () => {
    const req = presigner.presignPut({ bucket, key: 'raw/u1/d.jpg', contentType: 'image/jpeg' });
    expect(new URL(req.url).searchParams.get('X-Amz-Expires')).toBe('60');
  });

  it('presigned GET applies response-content-type and response-content-disposition', async () => {
    const key = 'gallery/u1/g.webp';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from('webp-bytes'), ContentType: 'image/webp' }));
    const req = presigner.presignGet({
      bucket,
      key,
      expiresInSeconds: 30,
      responseContentType: 'application/octet-stream',
      responseContentDisposition: 'attachment; filename="coffee photo.webp"',
    });
    expect(req).toMatchObject({ method: 'GET', headers: {} });
    const res = await fetch(req.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="coffee photo.webp"');
    expect(await res.text()).toBe('webp-bytes');
  });

  it('keys needing encoding (spaces, unicode, +, reserved characters) round-trip through the fast path', async () => {
    const keys = [
      'raw/u 1/a b.jpg',
      'raw/ü/café 🍜.jpg',
      'raw/u1/a+b=c&d.jpg',
      "raw/u1/!'()*~;:@$,#?%[].jpg",
      'raw/u1//double-slash.jpg',
    ];
    for (const key of keys) {
      const body = Buffer.from(`body of ${key}`);
      const res = await send(
        presigner.presignPut({ bucket, key, contentType: 'text/plain', contentLength: body.length, checksumSha256Hex: sha256Hex(body), expiresInSeconds: 60 }),
        body,
      );
      expect(res.status, `${key}: ${await res.text()}`).toBe(200);
      expect((await getBytes(key)).equals(body), key).toBe(true);
    }
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'raw/' }));
    const names = (listed.Contents ?? []).map((o) => o.Key);
    for (const key of keys.filter((k) => !k.includes('//'))) expect(names).toContain(key);
    // Real behaviour of versitygw's posix backend: objects are files, so "a//b" is stored and listed as
    // "a/b" (AWS S3 keeps the empty segment). The upload and the GET above still succeed.
    expect(names).toContain('raw/u1/double-slash.jpg');
  });

  it('refuses keys an HTTP client would rewrite, and bad inputs', () => {
    expect(() => presigner.presignPut({ bucket, key: 'raw/../x', contentType: 'image/jpeg' })).toThrow(/segment/);
    expect(() => presigner.presignPut({ bucket, key: '', contentType: 'image/jpeg' })).toThrow(/empty/);
    expect(() => presigner.presignPut({ bucket, key: 'k', contentType: 'image/jpeg', expiresInSeconds: 0 })).toThrow(/expiry/);
    expect(() => presigner.presignPut({ bucket, key: 'k', contentType: 'image/jpeg', expiresInSeconds: 8 * 86400 })).toThrow(/expiry/);
    expect(() => presigner.presignPut({ bucket, key: 'k', contentType: 'image/jpeg', checksumSha256Hex: 'abcd' })).toThrow(/SHA-256/);
    expect(() => presigner.presignPut({ bucket, key: 'k', contentType: 'image/jpeg\r\nx-evil: 1' })).toThrow(/control/);
    expect(() => presigner.presignPut({ bucket, key: 'k', contentType: 'image/jpeg', contentLength: -1 })).toThrow(/Content-Length/);
  });
});

describe('parity with the SDK getSignedUrl', () => {
  const fixed = new Date('2025-03-04T05:06:07.890Z');

  it('produces the identical URL for identical inputs and clock (PUT with checksum, GET with overrides)', async () => {
    const fast = new Presigner(opts, () => fixed);
    for (const key of ['raw/u1/p.jpg', 'raw/u 2/ä+b (1).jpg']) {
      const put = fast.presignPut({ bucket, key, contentType: 'image/jpeg', contentLength: 1234, checksumSha256Hex: sha256Hex(photo), expiresInSeconds: 60 });
      const sdkPut = await getSignedUrl(
        s3,
        new PutObjectCommand({ Bucket: bucket, Key: key, ContentType: 'image/jpeg', ContentLength: 1234, ChecksumSHA256: hexToBase64(sha256Hex(photo)) }),
        { expiresIn: 60, signingDate: fixed, signableHeaders: new Set(['content-type', 'content-length']), unhoistableHeaders: new Set(['x-amz-checksum-sha256']) },
      );
      expect(put.url).toBe(sdkPut);
      expect(put.expiresAt.toISOString()).toBe('2025-03-04T05:07:07.000Z');

      const get = fast.presignGet({ bucket, key, expiresInSeconds: 300, responseContentDisposition: 'inline; filename="a b.jpg"' });
      const sdkGet = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key, ResponseContentDisposition: 'inline; filename="a b.jpg"' }), {
        expiresIn: 300,
        signingDate: fixed,
      });
      expect(get.url).toBe(sdkGet);
    }
  });

  it('S3 accepts both the fast-path and the SDK URL for the same request', async () => {
    const body = Buffer.from('parity body');
    const sha = sha256Hex(body);
    const fastReq = presigner.presignPut({ bucket, key: 'raw/parity/fast.txt', contentType: 'text/plain', contentLength: body.length, checksumSha256Hex: sha, expiresInSeconds: 60 });
    const sdkUrl = await getSignedUrl(
      s3,
      new PutObjectCommand({ Bucket: bucket, Key: 'raw/parity/sdk.txt', ContentType: 'text/plain', ContentLength: body.length, ChecksumSHA256: hexToBase64(sha) }),
      { expiresIn: 60, signableHeaders: new Set(['content-type', 'content-length']), unhoistableHeaders: new Set(['x-amz-checksum-sha256']) },
    );
    const r1 = await send(fastReq, body);
    expect(r1.status, await r1.text()).toBe(200);
    const r2 = await fetch(sdkUrl, { method: 'PUT', headers: { 'Content-Type': 'text/plain', 'x-amz-checksum-sha256': hexToBase64(sha) }, body });
    expect(r2.status, await r2.text()).toBe(200);
    expect((await getBytes('raw/parity/fast.txt')).equals(body)).toBe(true);
    const sdkGet = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'raw/parity/sdk.txt' }), { expiresIn: 60 });
    expect(Buffer.from(await (await fetch(sdkGet)).arrayBuffer()).equals(body)).toBe(true);
  });
});

describe('S3 refuses uploads that differ from what was signed', () => {
  const body = Buffer.from('the signed body, 32 bytes long!!');
  const signed = (key: string, expiresInSeconds = 60): PresignedRequest =>
    presigner.presignPut({ bucket, key, contentType: 'image/jpeg', contentLength: body.length, checksumSha256Hex: sha256Hex(body), expiresInSeconds });

  it('control: the signed body is accepted', async () => {
    const res = await send(signed('raw/refuse/control.jpg'), body);
    expect(res.status, await res.text()).toBe(200);
  });

  it('another Content-Type', async () => {
    const key = 'raw/refuse/type.jpg';
    const code = await expectRefused(await send(signed(key), body, { 'Content-Type': 'image/png' }), key);
    expect(code).toBe('SignatureDoesNotMatch');
  });

  it('another length than the signed Content-Length', async () => {
    const key = 'raw/refuse/length.jpg';
    const longer = Buffer.concat([body, Buffer.from('+extra')]);
    const code = await expectRefused(await send(signed(key), longer), key);
    expect(code).toBe('SignatureDoesNotMatch');
  });

  it('a body whose SHA-256 differs from the signed checksum (same length)', async () => {
    const key = 'raw/refuse/checksum.jpg';
    const forged = Buffer.from(body);
    forged[0] = forged[0]! ^ 0xff;
    const code = await expectRefused(await send(signed(key), forged), key);
    expect(code).toBe('BadDigest');
  });

  it('a different checksum header than the signed one', async () => {
    const key = 'raw/refuse/checksum-header.jpg';
    const other = Buffer.from('x'.repeat(body.length));
    const code = await expectRefused(await send(signed(key), other, { 'x-amz-checksum-sha256': hexToBase64(sha256Hex(other)) }), key);
    expect(code).toBe('SignatureDoesNotMatch');
  });

  it('a tampered key in the URL', async () => {
    const req = signed('raw/refuse/mine.jpg');
    const tampered = { ...req, url: req.url.replace('/raw/refuse/mine.jpg?', '/raw/refuse/theirs.jpg?') };
    expect(tampered.url).not.toBe(req.url);
    const code = await expectRefused(await send(tampered, body), 'raw/refuse/theirs.jpg');
    expect(code).toBe('SignatureDoesNotMatch');
    expect(await exists('raw/refuse/mine.jpg')).toBe(false);
  });

  it('a URL past its expiry (1 s, used after ~2 s)', async () => {
    const key = 'raw/refuse/expired.jpg';
    const req = signed(key, 1);
    await new Promise((r) => setTimeout(r, 2_100));
    expect(req.expiresAt.getTime()).toBeLessThan(Date.now());
    const code = await expectRefused(await send(req, body), key);
    expect(code).toBe('AccessDenied');
  });

  it('a URL signed with an injected clock in the past is already expired (no waiting)', async () => {
    const key = 'raw/refuse/old-clock.jpg';
    const past = new Presigner(opts, () => new Date(Date.now() - 10 * 60_000));
    const req = past.presignPut({ bucket, key, contentType: 'image/jpeg', expiresInSeconds: 60 });
    await expectRefused(await send(req, body), key);
  });
});

describe('POST policy mode', () => {
  const form = (fields: Record<string, string>, file: Uint8Array<ArrayBuffer>, type: string, overrides: Record<string, string> = {}): FormData => {
    const fd = new FormData();
    for (const [k, v] of Object.entries({ ...fields, ...overrides })) fd.append(k, v);
    fd.append('file', new Blob([file], { type }), 'upload.jpg');
    return fd;
  };

  it('a form upload under the limit succeeds with the signed key and Content-Type', async () => {
    const key = 'raw/post/ok.jpg';
    const p = await presigner.presignPost({ bucket, key, contentType: 'image/jpeg', maxBytes: photo.length, expiresInSeconds: 60 });
    expect(Object.keys(p.fields)).toEqual(['key', 'Content-Type', 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'Policy', 'X-Amz-Signature']);
    const policy = JSON.parse(Buffer.from(p.fields.Policy!, 'base64').toString('utf8')) as { conditions: unknown[] };
    expect(policy.conditions).toContainEqual(['content-length-range', 1, photo.length]);
    expect(policy.conditions).toContainEqual(['eq', '$key', key]);
    expect(policy.conditions).toContainEqual(['eq', '$Content-Type', 'image/jpeg']);

    const res = await fetch(p.url, { method: 'POST', body: form(p.fields, photo, 'image/jpeg') });
    expect(res.status, await res.text()).toBeLessThan(300);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentType).toBe('image/jpeg');
    expect((await getBytes(key)).equals(photo)).toBe(true);
  });

  it('a body over maxBytes is refused', async () => {
    const key = 'raw/post/big.jpg';
    const p = await presigner.presignPost({ bucket, key, contentType: 'image/jpeg', maxBytes: 1000, expiresInSeconds: 60 });
    const code = await expectRefused(await fetch(p.url, { method: 'POST', body: form(p.fields, photo.subarray(0, 1001), 'image/jpeg') }), key);
    expect(code).toBe('EntityTooLarge');
  });

  it('an empty body is refused (range starts at 1)', async () => {
    const key = 'raw/post/empty.jpg';
    const p = await presigner.presignPost({ bucket, key, contentType: 'image/jpeg', maxBytes: 1000, expiresInSeconds: 60 });
    const code = await expectRefused(await fetch(p.url, { method: 'POST', body: form(p.fields, new Uint8Array(0), 'image/jpeg') }), key);
    expect(code).toBe('EntityTooSmall');
  });

  it('a different Content-Type is refused', async () => {
    const key = 'raw/post/type.jpg';
    const p = await presigner.presignPost({ bucket, key, contentType: 'image/jpeg', maxBytes: 10_000, expiresInSeconds: 60 });
    const res = await fetch(p.url, { method: 'POST', body: form(p.fields, photo.subarray(0, 100), 'image/png', { 'Content-Type': 'image/png' }) });
    expect(await expectRefused(res, key)).toBe('AccessDenied');
  });

  it('a different key is refused', async () => {
    const p = await presigner.presignPost({ bucket, key: 'raw/post/mine.jpg', contentType: 'image/jpeg', maxBytes: 10_000, expiresInSeconds: 60 });
    const res = await fetch(p.url, { method: 'POST', body: form(p.fields, photo.subarray(0, 100), 'image/jpeg', { key: 'raw/post/theirs.jpg' }) });
    expect(await expectRefused(res, 'raw/post/theirs.jpg')).toBe('AccessDenied');
    expect(await exists('raw/post/mine.jpg')).toBe(false);
  });

  it('an expired policy is refused', async () => {
    const key = 'raw/post/expired.jpg';
    const past = new Presigner(opts, () => new Date(Date.now() - 10 * 60_000));
    const p = await past.presignPost({ bucket, key, contentType: 'image/jpeg', maxBytes: 10_000, expiresInSeconds: 60 });
    expect(p.expiresAt.getTime()).toBeLessThan(Date.now());
    const res = await fetch(p.url, { method: 'POST', body: form(p.fields, photo.subarray(0, 100), 'image/jpeg') });
    expect(await expectRefused(res, key)).toBe('AccessDenied');
  });
});
