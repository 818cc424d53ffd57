import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { cleanup, testEnv } from '../helpers/stack.js';

const env = testEnv('init');
afterAll(() => cleanup(env));

describe('init-mongo', () => {
  it('creates the registry, then a second run reports no change and exits 0', async () => {
    const first = await cli(['init-mongo'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("Created collection 'files_metadata'");
    expect(first.stdout).toMatch(/[Cc]reated collection 'archive_log'/);

    const second = await cli(['init-mongo', '--json'], env);
    expect(second.code).toBe(0);
    const report = JSON.parse(second.stdout);
    expect(report.changed).toBe(false);
    expect(report.steps.every((s: { action: string }) => !['created', 'fallback'].includes(s.action))).toBe(true);

    const human = await cli(['init-mongo'], env);
    expect(human.stdout).toContain('no change');
  });

  it('reports each missing server feature with its fallback in one line (FerretDB has no time-series, TTL or vector search)', async () => {
    const { stdout } = await cli(['init-mongo'], env);
    const lines = stdout.split('\n');
    expect(lines.some((l) => /archive_log.*(time-series|plain).*timestamp/.test(l))).toBe(true);
    expect(lines.some((l) => /ttl_expire_at.*(TTL).*purge-run/.test(l))).toBe(true);
    expect(lines.some((l) => /embedding_vector: vector search not supported.*exact cosine/.test(l))).toBe(true);
  });

  it('creates the indexes of the design', async () => {
    const { stdout } = await cli(['init-mongo', '--json'], env);
    const targets = JSON.parse(stdout).steps.map((s: { target: string }) => s.target);
    for (const idx of ['user_id_1_upload_timestamp_-1', 's3_key_1', 'ttl_expire_at_1', 'is_archived_1_archive_timestamp_1']) {
      expect(targets).toContain(`files_metadata.${idx}`);
    }
  });
});

describe('init-buckets', () => {
  it('creates both buckets, then a second run reports no change and exits 0', async () => {
    const first = await cli(['init-buckets'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`Created bucket '${env.BUCKET_HOT}', Created bucket '${env.BUCKET_ARCHIVE}'`);

    const second = await cli(['init-buckets', '--json'], env);
    expect(second.code).toBe(0);
    const report = JSON.parse(second.stdout);
    expect(report.changed).toBe(false);
    expect(report.steps.filter((s: { setting: string }) => s.setting === 'bucket').map((s: { action: string }) => s.action)).toEqual([
      'exists',
      'exists',
    ]);
  });

  it('says what covers for a setting the server refuses (versitygw has no lifecycle API)', async () => {
    const { stdout, code } = await cli(['init-buckets'], env);
    expect(code).toBe(0);
    expect(stdout).toContain('lifecycle: not supported by this server; purge-run enforces the 24 h expiry');
  });
});
