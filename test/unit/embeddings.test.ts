/** The embedding configuration as a whole: mismatches are one-line ConfigErrors, never truncation. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { embeddingSettings, LOCAL_DIM, LOCAL_MODEL } from '../../src/core/embeddings.js';
import { ConfigError } from '../../src/core/errors.js';
import { LOCAL_EMBEDDING_DIM, LOCAL_EMBEDDING_MODEL } from '../../src/media/embedding.js';

const cfg = (env: Record<string, string>) => loadConfig({ env, envFile: '/dev/null' });

describe('embeddingSettings', () => {
  it('defaults to the local descriptor, whose name and size core/embeddings.ts mirrors', () => {
    expect(embeddingSettings(cfg({}))).toMatchObject({ provider: 'local', model: LOCAL_MODEL, dim: LOCAL_DIM });
    expect([LOCAL_MODEL, LOCAL_DIM]).toEqual([LOCAL_EMBEDDING_MODEL, LOCAL_EMBEDDING_DIM]);
  });

  it('refuses another dimension or model with the local provider', () => {
    expect(() => embeddingSettings(cfg({ VECTOR_EMBEDDING_DIM: '384' }))).toThrow(ConfigError);
    expect(() => embeddingSettings(cfg({ VECTOR_EMBEDDING_DIM: '384' }))).toThrow(/^VECTOR_EMBEDDING_DIM=384 does not fit EMBEDDING_PROVIDER=local/);
    expect(() => embeddingSettings(cfg({ EMBEDDING_MODEL: 'clip' }))).toThrow(/EMBEDDING_MODEL="clip" does not fit EMBEDDING_PROVIDER=local/);
    expect(() => embeddingSettings(cfg({}), { model: 'clip' })).toThrow(ConfigError);
  });

  it('needs a model name of its own for the http provider, and takes any dimension', () => {
    const http = { EMBEDDING_PROVIDER: 'http', EMBEDDING_URL: 'http://127.0.0.1:9/v1/embeddings' };
    expect(() => embeddingSettings(cfg(http))).toThrow(/EMBEDDING_MODEL is required when EMBEDDING_PROVIDER=http/);
    expect(embeddingSettings(cfg({ ...http, EMBEDDING_MODEL: 'clip', VECTOR_EMBEDDING_DIM: '512' }))).toMatchObject({ provider: 'http', model: 'clip', dim: 512 });
  });
});
