/**
 * Test helpers for the real local stack: read .stack/env (written by
 * `npm run stack:up`) and build configs with a database and buckets of the
 * test file's own, so test files stay independent.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'dotenv';
import { loadConfig, type Config } from '../../src/core/config.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = resolve(ROOT, '..', 'shared', 'fixtures', 'images');

let cached: Record<string, string> | undefined;

/** The stack's environment; fails with a clear message when the stack is not up. */
export function stackEnv(): Record<string, string> {
  if (cached) return cached;
  try {
    cached = parse(readFileSync(join(ROOT, '.stack', 'env')));
  } catch {
    throw new Error('.stack/env is missing: run `npm run stack:up` (npm test does it for you)');
  }
  return cached;
}

/** A short unique suffix: lowercase letters and digits, valid in bucket and database names. */
export function uniq(): string {
  return randomBytes(4).toString('hex');
}

/** Environment for one test file: its own database and buckets on the shared stack. */
export function testEnv(name: string, extra: Record<string, string> = {}): Record<string, string> {
  const id = `${name.toLowerCase().replace(/[^a-z0-9]/g, '')}-${uniq()}`;
  return {
    ...stackEnv(),
    MONGO_DB_NAME: `t_${id.replace(/-/g, '_')}`.slice(0, 60),
    BUCKET_HOT: `t-${id}-hot`.slice(0, 63),
    BUCKET_ARCHIVE: `t-${id}-arc`.slice(0, 63),
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

export function testConfig(env: Record<string, string>): Config {
  return loadConfig({ env, envFile: '/dev/null' });
}

/** Drops the test file's database and empties and deletes its buckets. */
export async function cleanup(env: Record<string, string>): Promise<void> {
  const { Context } = await import('../../src/core/context.js');
  const { deleteBucketDeep } = await import('./s3.js');
  const ctx = new Context(testConfig(env));
  try {
    await ctx.mongo.connect();
    await ctx.mongo.db.dropDatabase();
    for (const b of [env.BUCKET_HOT, env.BUCKET_ARCHIVE]) if (b) await deleteBucketDeep(ctx.s3, b);
  } finally {
    await ctx.close();
  }
}
