/**
 * Redis boundary: a lazily connected client for health checks and the
 * domain-event stream. Only this module imports `ioredis`.
 */
import { Redis } from 'ioredis';
import { redactUri } from '../core/config.js';
import { ConflictError, UnavailableError } from '../core/errors.js';
import { randomUUID } from 'node:crypto';
import { LocalQueue, type Locker } from './doc-locks.js';

export interface RedisHealth {
  rttMs: number;
  version: string;
}

export class RedisConnection {
  readonly client: Redis;
  readonly url: string;

  constructor(url: string, timeoutMs = 3000) {
    this.url = url;
    this.client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      retryStrategy: (times) => (times > 3 ? null : Math.min(times * 200, 1000)),
    });
    // Errors surface through the commands that fail; don't crash on the 'error' event.
    this.client.on('error', () => undefined);
  }

  /** Runs one Redis command, mapping failures to UnavailableError. */
  command<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.call(what, fn);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      if (this.client.status === 'wait') await this.client.connect();
      return await fn();
    } catch (err) {
      const msg = (err as Error).message ?? String(err);
      const why = /ECONNREFUSED/.test(msg) ? 'connection refused' : /timed? ?out/i.test(msg) ? 'timed out' : msg;
      throw new UnavailableError('Redis', `unreachable at ${redactUri(this.url)} (${why}) during ${what}; check REDIS_URL`, { cause: err });
    }
  }

  async health(): Promise<RedisHealth> {
    return this.call('PING', async () => {
      const t0 = performance.now();
      await this.client.ping();
      const rttMs = performance.now() - t0;
      const info = await this.client.info('server');
      const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
      return { rttMs, version };
    });
  }

  /** Appends one event to a stream, trimmed to about `maxLen` entries. Returns the entry id. */
  async append(stream: string, fields: Record<string, string>, maxLen = 100_000): Promise<string> {
    return this.call('XADD', async () => {
      const flat = Object.entries(fields).flat();
      const id = await this.client.xadd(stream, 'MAXLEN', '~', String(maxLen), '*', ...flat);
      return String(id);
    });
  }

  async close(): Promise<void> {
    try {
      if (this.client.status !== 'end' && this.client.status !== 'wait') await this.client.quit();
      else this.client.disconnect();
    } catch {
      this.client.disconnect();
    }
  }
}

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/**
 * Per-document locks in Redis (SET NX PX, released by compare-and-delete):
 * for MongoDB-compatible servers whose conditional updates are not atomic.
 * Sub-millisecond, where a lock document costs two database writes.
 */
export class RedisLocks implements Locker {
  private readonly local = new LocalQueue();

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly ttlMs = 15_000,
    // Longer than the TTL: a holder that was killed lets go by expiry while we wait.
    private readonly waitMs = 20_000,
  ) {}

  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.local.run(key, async () => {
      const k = `${this.prefix}${key}`;
      const owner = randomUUID();
      const deadline = Date.now() + this.waitMs;
      for (let attempt = 0; ; attempt++) {
        const ok = await this.redis.command('SET', () => this.redis.client.set(k, owner, 'PX', this.ttlMs, 'NX'));
        if (ok === 'OK') break;
        if (Date.now() > deadline) throw new ConflictError(`${key} is busy (locked by another writer); try again`);
        await new Promise((r) => setTimeout(r, Math.min(20, 1 + attempt) * (0.5 + Math.random())));
      }
      try {
        return await fn();
      } finally {
        await this.redis.command('EVAL', () => this.redis.client.eval(RELEASE, 1, k, owner)).catch(() => undefined);
      }
    });
  }
}
