/**
 * MongoDB boundary: connection, server probing, and the translation of
 * driver errors into the project's typed errors. Only storage modules import
 * the `mongodb` package.
 */
import { MongoClient, MongoServerError, type Db } from 'mongodb';
import { redactUri } from '../core/config.js';
import { BiostoreError, UnavailableError } from '../core/errors.js';
import { DocLocks, type Locker } from './doc-locks.js';

export interface MongoServerInfo {
  /** `ferretdb`, `atlas` (a *.mongodb.net host) or `mongodb`. */
  kind: 'ferretdb' | 'atlas' | 'mongodb';
  /** The MongoDB version the server reports (FerretDB reports the one it emulates). */
  version: string;
  ferretdbVersion?: string;
}

export interface MongoOptions {
  uri: string;
  dbName: string;
  /** How long to look for a server before giving up (default 5000 ms). */
  timeoutMs?: number;
}

/** A lazily connected client with its database; `close()` is safe to call twice. */
export class MongoConnection {
  readonly client: MongoClient;
  readonly db: Db;
  readonly uri: string;
  private connected: Promise<void> | null = null;
  private info: Promise<MongoServerInfo> | null = null;
  private locks: Locker | undefined;

  constructor(opts: MongoOptions) {
    const timeout = opts.timeoutMs ?? 5000;
    this.uri = opts.uri;
    this.client = new MongoClient(opts.uri, {
      appName: 'biostore',
      serverSelectionTimeoutMS: timeout,
      connectTimeoutMS: timeout,
      socketTimeoutMS: 60_000,
      maxPoolSize: 50,
      // Optional fields left undefined are omitted, not stored as null.
      ignoreUndefined: true,
    });
    this.db = this.client.db(opts.dbName);
  }

  /** Connects once; turns a failure into UnavailableError naming MongoDB and the (redacted) URI. */
  async connect(): Promise<void> {
    this.connected ??= this.client.connect().then(
      () => undefined,
      (err: unknown) => {
        this.connected = null;
        throw mongoError(err, this.uri);
      },
    );
    return this.connected;
  }

  /** Round-trip time of a ping, in milliseconds. */
  async ping(): Promise<number> {
    await this.connect();
    const t0 = performance.now();
    await guard(this.uri, () => this.db.command({ ping: 1 }));
    return performance.now() - t0;
  }

  /** The server's kind and version, asked once per connection. */
  serverInfo(): Promise<MongoServerInfo> {
    this.info ??= this.probe().catch((err: unknown) => {
      this.info = null;
      throw err;
    });
    return this.info;
  }

  /**
   * Whether conditional updates need a lock document to be atomic (FerretDB 1.x
   * reads then writes; MongoDB matches and writes atomically per document).
   */
  async needsDocLocks(): Promise<boolean> {
    return (await this.serverInfo()).kind === 'ferretdb';
  }

  private async probe(): Promise<MongoServerInfo> {
    await this.connect();
    const bi = await guard(this.uri, () => this.db.admin().command({ buildInfo: 1 }));
    const version = String(bi.version ?? 'unknown');
    if ('ferretdbVersion' in bi || 'ferretdbFeatures' in bi) {
      return { kind: 'ferretdb', version, ferretdbVersion: String(bi.ferretdbVersion ?? 'unknown') };
    }
    const hosts = this.uri.replace(/^mongodb(\+srv)?:\/\/([^@/]*@)?/, '').split(/[/?]/)[0] ?? '';
    return { kind: /\.mongodb\.net(:\d+)?(,|$)/.test(hosts) ? 'atlas' : 'mongodb', version };
  }

  /**
   * Runs a read-modify-write on one document atomically on every server:
   * directly where the server guarantees it, under a lock document elsewhere.
   */
  async atomically<T>(key: string, fn: () => Promise<T>): Promise<T> {
    if (!(await this.needsDocLocks())) return fn();
    this.locks ??= this.lockerFactory?.() ?? new DocLocks(this);
    return this.locks.withLock(key, fn);
  }

  /** Where locks live when they are needed (Redis, when configured, is much cheaper than lock documents). */
  useLocker(factory: () => Locker): void {
    this.lockerFactory = factory;
  }

  private lockerFactory: (() => Locker) | undefined;

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }
}

/** Runs a driver call and maps its failures to project errors. */
export async function guard<T>(uri: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mongoError(err, uri);
  }
}

/** True when the server refused because it lacks a feature (not because our request was wrong). */
export function isUnsupported(err: unknown): boolean {
  if (!(err instanceof MongoServerError)) return false;
  // 238 NotImplemented (FerretDB), 59 CommandNotFound, 115 CommandNotSupported,
  // 72 InvalidOptions (time-series on old servers), 31082 / 6047401 search index commands outside Atlas.
  const codes = new Set([238, 59, 115, 72, 31082, 6047401, 40324]);
  return (
    codes.has(Number(err.code)) ||
    /not (implemented|supported)|no such command|only supported|Unrecognized/i.test(err.message)
  );
}

/** Short server reason for a capability report. */
export function reasonOf(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0]!.slice(0, 160);
  return String(err);
}

export function mongoError(err: unknown, uri: string): Error {
  if (err instanceof BiostoreError) return err;
  const e = err as { name?: string; message?: string; code?: unknown };
  const name = e?.name ?? '';
  const msg = (e?.message ?? String(err)).split('\n')[0] ?? '';
  if (/ServerSelection|MongoNetwork|MongoTopologyClosed|PoolClosed|Timeout/i.test(name)) {
    const why = /ECONNREFUSED/.test(msg) ? 'connection refused' : /timed out|Timeout/i.test(msg) ? 'timed out' : msg;
    return new UnavailableError('MongoDB', `unreachable at ${redactUri(uri)} (${why}); check MONGODB_URI and that the server is up`, {
      cause: err,
    });
  }
  if (name === 'MongoParseError' || name === 'MongoAPIError') {
    return new UnavailableError('MongoDB', `bad connection string ${redactUri(uri)}: ${msg}`, { cause: err });
  }
  if (err instanceof MongoServerError && (err.code === 18 || err.code === 13)) {
    return new UnavailableError('MongoDB', `access refused (${msg}); check the credentials in MONGODB_URI`, { cause: err });
  }
  return err instanceof Error ? err : new Error(msg);
}
