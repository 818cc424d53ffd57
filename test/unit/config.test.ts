import { describe, expect, it } from 'vitest';
import { loadConfig, publicConfig } from '../../src/core/config.js';
import { ConfigError, EXIT } from '../../src/core/errors.js';

const load = (env: Record<string, string>, overrides = {}) => loadConfig({ env, overrides, envFile: '/dev/null' });

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const c = load({});
    expect(c.port).toBe(8004);
    expect(c.s3.bucketHot).toBe('bio-ai-hot');
    expect(c.s3.bucketArchive).toBe('bio-ai-archive');
    expect(c.vector.similarityThreshold).toBe(0.75);
    expect(c.lifecycle.archiveThresholdDays).toBe(30);
    expect(c.lifecycle.retentionDays).toBe(90);
    expect(c.upload.maxBytes).toBe(25 * 1024 * 1024);
    expect(c.cdnDomain).toBeUndefined();
  });

  it('refuses a malformed number with one line naming the variable, the value and what is allowed', () => {
    try {
      load({ ARCHIVE_THRESHOLD_DAYS: 'abc' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).exitCode).toBe(EXIT.CONFIG);
      const msg = (err as Error).message;
      expect(msg).toContain('ARCHIVE_THRESHOLD_DAYS');
      expect(msg).toContain('"abc"');
      expect(msg).toContain('whole number');
      expect(msg.split('\n')).toHaveLength(1);
    }
  });

  it('never prints a secret, even when it is invalid', () => {
    expect(() => load({ JWT_SECRET: 'short-s3cr3t' })).toThrow(/JWT_SECRET=\(hidden\)/);
    expect(() => load({ JWT_SECRET: 'short-s3cr3t' })).not.toThrow(/s3cr3t/);
    const c = load({ MONGODB_URI: 'mongodb://admin:hunter2@db.example.com/' });
    expect(JSON.stringify(publicConfig(c))).not.toContain('hunter2');
  });

  it('checks values against each other', () => {
    expect(() => load({ RETENTION_DAYS: '10', ARCHIVE_THRESHOLD_DAYS: '30' })).toThrow(/RETENTION_DAYS=10 must be greater/);
    expect(() => load({ STORAGE_TYPE: 'minio' })).toThrow(/S3_ENDPOINT_URL is required/);
    expect(() => load({ STORAGE_TYPE: 'gcs' })).toThrow(/STORAGE_TYPE="gcs" is invalid: expected aws \| minio \| s3-compatible/);
    expect(() => load({ AWS_ACCESS_KEY_ID: 'x' })).toThrow(/must be set together/);
    expect(() => load({ BUCKET_HOT: 'Bad_Bucket' })).toThrow(/BUCKET_HOT/);
  });

  it('lets flags override the environment, and the environment override the defaults', () => {
    const c = load({ MONGO_DB_NAME: 'from_env', PORT: '9000' }, { MONGO_DB_NAME: 'from_flag' });
    expect(c.mongo.dbName).toBe('from_flag');
    expect(c.port).toBe(9000);
  });

  it('uses path-style addressing for S3-compatible servers', () => {
    const c = load({ STORAGE_TYPE: 's3-compatible', S3_ENDPOINT_URL: 'http://127.0.0.1:7070' });
    expect(c.s3.forcePathStyle).toBe(true);
    expect(load({}).s3.forcePathStyle).toBe(false);
  });
});
