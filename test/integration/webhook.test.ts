import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Context } from '../../src/core/context.js';
import { api, initStores, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { cleanup, FIXTURES, stackEnv, testConfig, testEnv } from '../helpers/stack.js';

const photo = readFileSync(join(FIXTURES, 'coffee-phone-4032x3024.jpg'));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A second versitygw over the same folder as the stack's, whose event webhook
// points at the test daemon; it can only start once the daemon listens,
// because versitygw refuses to start when its start-up test event fails.
let gw: ChildProcess | undefined;
let d: TestDaemon;
const base = testEnv('webhook');
let env: Record<string, string>;

beforeAll(async () => {
  const init = new Context(testConfig(base));
  await initStores(init);
  await init.close();

  const port = await freePort();
  env = { ...base, S3_ENDPOINT_URL: `http://127.0.0.1:${port}` };
  d = await startDaemon(env, undefined, { init: false });
  const s = stackEnv();
  const hook = `${d.url}/api/v1/webhooks/s3?token=${encodeURIComponent(s.WEBHOOK_SECRET!)}`;
  gw = spawn(
    s.STACK_VERSITYGW_BIN!,
    ['--access', s.AWS_ACCESS_KEY_ID!, '--secret', s.AWS_SECRET_ACCESS_KEY!, '--port', `127.0.0.1:${port}`, '--quiet',
      '--event-webhook-url', hook, 'posix', '--sidecar', s.STACK_S3_SIDECAR_DIR!, s.STACK_S3_DATA_DIR!],
    { stdio: 'ignore' },
  );
  await waitFor(async () => fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false), 10_000);
});

afterAll(async () => {
  gw?.kill('SIGTERM');
  await d?.close();
  await cleanup(base);
});

describe('S3 event webhook', () => {
  it('registers an upload from the S3 server’s own event, end to end', async () => {
    const token = await d.token('alice');
    const s = await api(d, 'POST', '/api/v1/upload/sign', {
      token,
      body: { filename: 'steak.jpg', content_type: 'image/jpeg', size_bytes: photo.length },
    });
    expect(s.status).toBe(201);
    const headers = Object.fromEntries(Object.entries(s.body.headers as Record<string, string>).filter(([k]) => k.toLowerCase() !== 'content-length'));
    const res = await fetch(s.body.upload_url, { method: 'PUT', headers, body: new Uint8Array(photo) });
    expect(res.status).toBe(200);
    const rec = await waitFor(async () => {
      const r = await d.ctx.registry.get(s.body.file_id);
      return r?.status === 'uploaded' ? r : null;
    }, 5000);
    expect(rec.checksum_sha256).toBe(createHash('sha256').update(photo).digest('hex'));
    expect(rec.size_bytes).toBe(photo.length);
  });

  it('refuses events without the shared secret, and shrugs off duplicate and unknown events', async () => {
    const event = { Records: [{ eventName: 's3:ObjectCreated:Put', s3: { bucket: { name: env.BUCKET_HOT }, object: { key: 'raw/alice/nope.jpg' } } }] };
    expect((await api(d, 'POST', '/api/v1/webhooks/s3', { body: event })).status).toBe(401);
    expect((await api(d, 'POST', '/api/v1/webhooks/s3?token=wrong-secret-wrong-secret', { body: event })).status).toBe(401);
    const ok = await api(d, 'POST', `/api/v1/webhooks/s3?token=${encodeURIComponent(stackEnv().WEBHOOK_SECRET!)}`, { body: event });
    expect(ok.status).toBe(200);
    expect(ok.body.results).toEqual({ unknown: 1 });
    const again = await api(d, 'POST', '/api/v1/webhooks/s3', { body: event, headers: { 'x-biostore-webhook-secret': stackEnv().WEBHOOK_SECRET! } });
    expect(again.status).toBe(200);
  });
});
