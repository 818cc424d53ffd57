/**
 * Embedding providers: image bytes in, unit-length vectors out, chosen by
 * EMBEDDING_PROVIDER. SDK-free: the `local` provider loads the sharp-bound
 * descriptor (src/media/embedding.ts) on first use; the `http` provider talks
 * to an embeddings service with plain `fetch`.
 *
 * What gets embedded is the file's **thumbnail** (THUMBNAIL_SIZE, 320 px WebP),
 * not the 1920 px gallery image: the local descriptor shrinks everything to
 * 32x32 anyway (thumbnail vs gallery: cosine >= 0.9997 on the fixtures, about
 * 8x faster to decode), and vision models take 224-448 px inputs, so the
 * thumbnail is what an http service needs too, at ~15 KB instead of ~300 KB.
 *
 * `http` contract (OpenAI-compatible `/v1/embeddings`, as served by e.g.
 * vLLM, Infinity or the team's inference service):
 *
 *     POST EMBEDDING_URL   Authorization: Bearer EMBEDDING_API_KEY (when set)
 *     {"model": EMBEDDING_MODEL, "input": ["data:image/webp;base64,...", ...], "encoding_format": "float"}
 *     -> 200 {"data": [{"index": 0, "embedding": [0.01, ...]}, ...]}
 *
 * Images travel inline as base64 data URIs rather than presigned URLs: the
 * service then needs no network path to our bucket and no URL can expire
 * between queueing and fetching; a thumbnail costs ~20 KB of JSON.
 * Requests carry up to `batchSize` images, at most `concurrency` requests are
 * in flight per process, each has its own timeout, and timeouts, connection
 * errors, 429 and 5xx are retried with exponential backoff and jitter
 * (honouring Retry-After); other 4xx are not retried.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import type { Config } from './config.js';
import { BiostoreError, ConfigError, EXIT, InvalidInputError, UnavailableError } from './errors.js';

/** The local descriptor's name and size; equal to LOCAL_EMBEDDING_MODEL / _DIM in src/media/embedding.ts (checked on first use). */
export const LOCAL_MODEL = 'biostore-local-v1';
export const LOCAL_DIM = 256;

/** Turns images into vectors. Exists so jobs and search do not care which model runs where. */
export interface EmbeddingProvider {
  readonly name: 'local' | 'http';
  /** Stored as `embedding_model` next to each vector; search compares only vectors of one model. */
  readonly model: string;
  readonly dim: number;
  /** Images per `embed` call this provider handles best; callers group work in chunks of this size. */
  readonly batchSize: number;
  /** One unit-length vector of `dim` values per image, in input order. */
  embed(images: Buffer[], signal?: AbortSignal): Promise<Float32Array[]>;
}

/** The provider, model and dimension in effect. */
export interface EmbeddingSettings {
  provider: 'local' | 'http';
  model: string;
  dim: number;
  url: string | undefined;
  apiKey: string | undefined;
}

/**
 * Validates the embedding configuration as a whole (config.ts checks each
 * variable alone). Exists so a mismatch fails at start with one line and
 * exit 3, never by truncating or padding vectors later.
 */
export function embeddingSettings(config: Config, overrides: { model?: string } = {}): EmbeddingSettings {
  const { provider, url, apiKey } = config.embedding;
  const model = overrides.model ?? config.embedding.model;
  const dim = config.vector.dim;
  if (provider === 'local') {
    if (dim !== LOCAL_DIM) {
      throw new ConfigError(
        `VECTOR_EMBEDDING_DIM=${dim} does not fit EMBEDDING_PROVIDER=local, whose vectors have ${LOCAL_DIM} dimensions; set VECTOR_EMBEDDING_DIM=${LOCAL_DIM} or use EMBEDDING_PROVIDER=http`,
      );
    }
    if (model !== LOCAL_MODEL) {
      throw new ConfigError(`EMBEDDING_MODEL=${JSON.stringify(model)} does not fit EMBEDDING_PROVIDER=local, which computes only ${LOCAL_MODEL}; unset it or use EMBEDDING_PROVIDER=http`);
    }
  } else if (model === LOCAL_MODEL) {
    throw new ConfigError(`EMBEDDING_MODEL is required when EMBEDDING_PROVIDER=http (the model name the service expects; ${LOCAL_MODEL} is the local descriptor)`);
  }
  return { provider, model, dim, url, apiKey };
}

/** Builds the configured provider. Exists as the one place that maps settings to an implementation. */
export function createEmbeddingProvider(s: EmbeddingSettings, tuning: Partial<HttpTuning> & { localConcurrency?: number } = {}): EmbeddingProvider {
  if (s.provider === 'local') return new LocalEmbeddingProvider(tuning.localConcurrency);
  if (!s.url) throw new ConfigError('EMBEDDING_URL is required when EMBEDDING_PROVIDER=http');
  return new HttpEmbeddingProvider({ url: s.url, model: s.model, dim: s.dim, apiKey: s.apiKey, ...tuning });
}

/** The service refused a request for reasons of its own input (HTTP 4xx other than 401/403/408/429): retrying would not help. */
export class EmbeddingRejectedError extends BiostoreError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message, 'embedding_rejected', EXIT.FAILURE);
    this.status = status;
  }
}

/** The local near-duplicate descriptor (src/media/embedding.ts), computed in this process. */
export class LocalEmbeddingProvider implements EmbeddingProvider {
  readonly name = 'local' as const;
  readonly model = LOCAL_MODEL;
  readonly dim = LOCAL_DIM;
  /** One image per call: a bad image then fails alone. Concurrency comes from the caller and `limit`. */
  readonly batchSize = 1;
  private readonly limit: LimitFunction;

  constructor(concurrency = 4) {
    this.limit = pLimit(Math.max(1, concurrency));
  }

  async embed(images: Buffer[], signal?: AbortSignal): Promise<Float32Array[]> {
    const media = await import('../media/embedding.js');
    if (media.LOCAL_EMBEDDING_MODEL !== LOCAL_MODEL || media.LOCAL_EMBEDDING_DIM !== LOCAL_DIM) {
      throw new Error(`core/embeddings.ts LOCAL_MODEL/LOCAL_DIM are out of date with media/embedding.ts`);
    }
    return Promise.all(
      images.map((img) =>
        this.limit(() => {
          signal?.throwIfAborted();
          return media.localEmbedding(img);
        }),
      ),
    );
  }
}

/** Batching, timeouts, retries and concurrency of the http provider. Defaults suit a GPU service behind a load balancer. */
export interface HttpTuning {
  /** Images per request (default 16). */
  batchSize: number;
  /** Requests in flight per process (default 4). */
  concurrency: number;
  /** Per-request timeout, including reading the answer (default 30 s). */
  timeoutMs: number;
  /** Retries after the first attempt (default 4). */
  retries: number;
  /** First backoff; doubles per retry, with jitter (default 500 ms). */
  backoffMs: number;
  /** Cap on one backoff, Retry-After included (default 20 s). */
  maxBackoffMs: number;
}

const HTTP_DEFAULTS: HttpTuning = { batchSize: 16, concurrency: 4, timeoutMs: 30_000, retries: 4, backoffMs: 500, maxBackoffMs: 20_000 };

/** An OpenAI-compatible embeddings endpoint (see the module comment for the wire format). */
export class HttpEmbeddingProvider implements EmbeddingProvider {
  readonly name = 'http' as const;
  readonly model: string;
  readonly dim: number;
  readonly batchSize: number;
  private readonly url: string;
  private readonly apiKey: string | undefined;
  private readonly tuning: HttpTuning;
  private readonly limit: LimitFunction;

  constructor(o: { url: string; model: string; dim: number; apiKey?: string } & Partial<HttpTuning>) {
    this.url = o.url;
    this.model = o.model;
    this.dim = o.dim;
    this.apiKey = o.apiKey;
    this.tuning = { ...HTTP_DEFAULTS, ...dropUndefined(o) };
    this.batchSize = Math.max(1, this.tuning.batchSize);
    this.limit = pLimit(Math.max(1, this.tuning.concurrency));
  }

  async embed(images: Buffer[], signal?: AbortSignal): Promise<Float32Array[]> {
    const batches: Buffer[][] = [];
    for (let i = 0; i < images.length; i += this.batchSize) batches.push(images.slice(i, i + this.batchSize));
    const out = await Promise.all(batches.map((b) => this.limit(() => this.request(b, signal))));
    return out.flat();
  }

  /** One batch, with retries. */
  private async request(images: Buffer[], signal?: AbortSignal): Promise<Float32Array[]> {
    const body = JSON.stringify({
      model: this.model,
      input: images.map((b) => `data:${sniffMime(b)};base64,${b.toString('base64')}`),
      encoding_format: 'float',
    });
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    const where = redactUrl(this.url);
    let lastWhy: string;
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      let retryAfterMs: number | undefined;
      try {
        const timeout = AbortSignal.timeout(this.tuning.timeoutMs);
        const res = await fetch(this.url, { method: 'POST', headers, body, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
        const text = await res.text();
        if (res.ok) return this.parse(text, images.length);
        const detail = errorDetail(text);
        if (res.status === 401 || res.status === 403) {
          throw new UnavailableError('embedding service', `${where} refused our credentials (HTTP ${res.status}${detail}); check EMBEDDING_API_KEY`);
        }
        if (res.status !== 408 && res.status !== 429 && res.status < 500) {
          throw new EmbeddingRejectedError(res.status, `embedding service ${where} rejected the request (HTTP ${res.status}${detail})`);
        }
        lastWhy = `HTTP ${res.status}${detail}`;
        retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      } catch (err) {
        if (err instanceof BiostoreError) throw err;
        if (signal?.aborted) throw signal.reason;
        const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
        lastWhy =
          e.name === 'TimeoutError' || e.name === 'AbortError'
            ? `no answer within ${this.tuning.timeoutMs} ms`
            : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(err));
      }
      if (attempt >= this.tuning.retries) {
        throw new UnavailableError('embedding service', `${where} failed ${attempt + 1} times, last: ${lastWhy}; check EMBEDDING_URL and the service`);
      }
      const backoff = Math.min(this.tuning.maxBackoffMs, this.tuning.backoffMs * 2 ** attempt) * (0.5 + Math.random() / 2);
      await sleep(Math.min(this.tuning.maxBackoffMs, Math.max(backoff, retryAfterMs ?? 0)), signal);
    }
  }

  /** Checks the answer's shape and dimension; normalises each vector so cosine is a dot product. */
  private parse(text: string, expected: number): Float32Array[] {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UnavailableError('embedding service', `${redactUrl(this.url)} answered with something that is not JSON`);
    }
    const data = (json as { data?: unknown })?.data;
    if (!Array.isArray(data) || data.length !== expected) {
      throw new UnavailableError('embedding service', `${redactUrl(this.url)} returned ${Array.isArray(data) ? data.length : 'no'} embeddings for ${expected} images`);
    }
    const ordered = data.every((d) => typeof (d as { index?: unknown }).index === 'number')
      ? [...data].sort((a, b) => (a as { index: number }).index - (b as { index: number }).index)
      : data;
    return ordered.map((d, i) => {
      const v = (d as { embedding?: unknown }).embedding;
      if (!Array.isArray(v)) throw new UnavailableError('embedding service', `${redactUrl(this.url)} returned no embedding array for image ${i}`);
      if (v.length !== this.dim) {
        throw new ConfigError(
          `the embedding service returned ${v.length}-d vectors for model ${this.model}, but VECTOR_EMBEDDING_DIM=${this.dim}; set VECTOR_EMBEDDING_DIM=${v.length} (and re-run init-mongo)`,
        );
      }
      const out = new Float32Array(v.length);
      let ss = 0;
      for (let j = 0; j < v.length; j++) {
        const x = v[j];
        if (typeof x !== 'number' || !Number.isFinite(x)) {
          throw new UnavailableError('embedding service', `${redactUrl(this.url)} returned a non-finite value in embedding ${i}`);
        }
        out[j] = x;
        ss += x * x;
      }
      if (!(ss > 0)) throw new InvalidInputError(`the embedding service returned an all-zero vector for image ${i}`, 'invalid_vector', 422);
      const n = Math.sqrt(ss);
      for (let j = 0; j < out.length; j++) out[j] = (out[j] as number) / n;
      return out;
    });
  }
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function sniffMime(b: Buffer): string {
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  if (b[0] === 0x89 && b[1] === 0x50) return 'image/png';
  return 'image/jpeg';
}

function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return '(EMBEDDING_URL)';
  }
}

function errorDetail(text: string): string {
  let msg = text;
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    msg = String((typeof j.error === 'object' ? j.error?.message : j.error) ?? j.message ?? text);
  } catch {
    // not JSON
  }
  msg = msg.replace(/\s+/g, ' ').trim();
  return msg ? `: ${msg.length > 160 ? `${msg.slice(0, 157)}...` : msg}` : '';
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
function parseRetryAfter(v: string | null): number | undefined {
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
