import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliProcess } from '../helpers/cli.js';
import { cleanup, testEnv } from '../helpers/stack.js';

const env = testEnv('status');
beforeAll(async () => {
  expect((await cli(['init-mongo'], env)).code).toBe(0);
  expect((await cli(['init-buckets'], env)).code).toBe(0);
});
afterAll(() => cleanup(env));

describe('status', () => {
  it('--json is valid JSON with the health of each dependency and the registry summary', async () => {
    const r = await cli(['status', '--json'], env);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.ok).toBe(true);
    expect(s.dependencies.mongodb).toMatchObject({ ok: true, server: expect.stringMatching(/^FerretDB v1\.24/), version: expect.any(String) });
    expect(s.dependencies.mongodb.rtt_ms).toBeGreaterThan(0);
    expect(s.dependencies.s3).toMatchObject({ ok: true, error: null, buckets: { [env.BUCKET_HOT!]: true, [env.BUCKET_ARCHIVE!]: true } });
    expect(s.dependencies.redis).toMatchObject({ ok: true, server: 'Redis' });
    expect(s.registry).toEqual({
      files_by_state: {},
      total_files: 0,
      hot_bytes: 0,
      archive_bytes: 0,
      due_for_archive: 0,
      next_purge_at: null,
    });
    expect(r.stdout).not.toContain(env.AWS_SECRET_ACCESS_KEY);
  });

  it('shows a table with MongoDB and S3 healthy', async () => {
    const r = await cli(['status'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/MongoDB\s*│\s*healthy/);
    expect(r.stdout).toMatch(/S3\s*│\s*healthy/);
  });

  it('names an unreachable MongoDB in one line and exits 4 within 10 s', async () => {
    const r = await cliProcess(['status'], { ...env, MONGODB_URI: 'mongodb://127.0.0.1:1' });
    expect(r.code).toBe(4);
    expect(r.ms).toBeLessThan(10_000);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^biostore: MongoDB: unreachable at mongodb:\/\/127\.0\.0\.1:1 .*check MONGODB_URI/);
  });

  it('names an unreachable S3 endpoint in one line and exits 4 within 10 s', async () => {
    const r = await cliProcess(['status', '--json'], { ...env, S3_ENDPOINT_URL: 'http://127.0.0.1:9' });
    expect(r.code).toBe(4);
    expect(r.ms).toBeLessThan(10_000);
    const s = JSON.parse(r.stdout);
    expect(s.ok).toBe(false);
    expect(s.dependencies.mongodb.ok).toBe(true);
    expect(s.dependencies.s3.error).toMatch(/^S3: unreachable at http:\/\/127\.0\.0\.1:9/);
  });

  it('refuses a malformed ARCHIVE_THRESHOLD_DAYS before connecting to anything', async () => {
    // MongoDB points nowhere: had it tried to connect first, it would report MongoDB and exit 4.
    const r = await cliProcess(['status'], { ...env, ARCHIVE_THRESHOLD_DAYS: 'abc', MONGODB_URI: 'mongodb://127.0.0.1:1' });
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe('biostore: ARCHIVE_THRESHOLD_DAYS="abc" is invalid: expected a whole number of days >= 1');
  });

  it('exits 2 with a one-line message for an unknown flag', async () => {
    const r = await cli(['status', '--bogus'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
  });
});
