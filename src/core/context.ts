/**
 * The composition root's product: one context per process holding the
 * configuration, the clients and the clock. Clients are created on first use,
 * so a command only connects to what it needs.
 */
import { pino, type Logger } from 'pino';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import type { Metrics } from './metrics.js';
import { FileRegistry } from '../storage/file-registry.js';
import { MongoConnection } from '../storage/mongo.js';
import { ObjectStore } from '../storage/objects.js';
import { Presigner } from '../storage/presign.js';
import { RedisConnection, RedisLocks } from '../storage/redis.js';
import { RunLocks } from '../storage/run-lock.js';
import { createS3Client } from '../storage/s3.js';
import { UsageStore } from '../storage/usage.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A fixed clock, for `--now` on jobs and for tests. */
export function fixedClock(at: Date): Clock {
  return { now: () => new Date(at.getTime()) };
}

export interface ContextOptions {
  clock?: Clock;
  logger?: Logger;
  /** Timeout for reaching MongoDB / S3 / Redis (ms). */
  connectTimeoutMs?: number;
}

export class Context {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  private readonly timeoutMs: number;
  private _mongo?: MongoConnection;
  private _registry?: FileRegistry;
  private _s3?: S3Client;
  private _redis?: RedisConnection | null;
  private _objects?: ObjectStore;
  private _usage?: UsageStore;
  private _runLocks?: RunLocks;
  private _presigner?: Presigner;
  /** Set by the daemon; jobs run from the CLI have none. */
  metrics: Metrics | undefined;
  /** Set by the daemon: called after an upload is registered, to wake the optimizer workers. */
  onRegistered: (() => void) | undefined;

  constructor(config: Config, opts: ContextOptions = {}) {
    this.config = config;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? pino({ level: config.logLevel }, pino.destination(2));
    this.timeoutMs = opts.connectTimeoutMs ?? 5000;
  }

  get mongo(): MongoConnection {
    if (!this._mongo) {
      this._mongo = new MongoConnection({ uri: this.config.mongo.uri, dbName: this.config.mongo.dbName, timeoutMs: this.timeoutMs });
      // Where per-document locks are needed (FerretDB), Redis holds them when configured.
      if (this.config.redisUrl) this._mongo.useLocker(() => new RedisLocks(this.redis!, `biostore:lock:${this.config.mongo.dbName}:`));
    }
    return this._mongo;
  }

  get registry(): FileRegistry {
    this._registry ??= new FileRegistry(this.mongo);
    return this._registry;
  }

  get s3(): S3Client {
    const c = this.config.s3;
    this._s3 ??= createS3Client({
      region: c.region,
      endpoint: c.endpoint,
      forcePathStyle: c.forcePathStyle,
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      connectTimeoutMs: Math.min(this.timeoutMs, 3000),
    });
    return this._s3;
  }

  get objects(): ObjectStore {
    this._objects ??= new ObjectStore(this.s3, this.config.s3.endpoint);
    return this._objects;
  }

  get runLocks(): RunLocks {
    this._runLocks ??= new RunLocks(this.mongo);
    return this._runLocks;
  }

  get usage(): UsageStore {
    this._usage ??= new UsageStore(this.mongo);
    return this._usage;
  }

  /** The fast presigner; needs static credentials (the SDK's default chain cannot be signed with offline). */
  get presigner(): Presigner {
    if (!this._presigner) {
      const c = this.config.s3;
      if (!c.accessKeyId || !c.secretAccessKey) {
        throw new ConfigError('presigning needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
      }
      this._presigner = new Presigner(
        {
          region: c.region,
          endpoint: c.endpoint,
          forcePathStyle: c.forcePathStyle,
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
        },
        () => this.clock.now(),
      );
    }
    return this._presigner;
  }

  /** The Redis connection, or null when REDIS_URL is not set. */
  get redis(): RedisConnection | null {
    if (this._redis === undefined) {
      this._redis = this.config.redisUrl ? new RedisConnection(this.config.redisUrl, Math.min(this.timeoutMs, 3000)) : null;
    }
    return this._redis;
  }

  async close(): Promise<void> {
    await Promise.all([this._mongo?.close(), this._redis?.close()]);
    this._s3?.destroy();
  }
}
