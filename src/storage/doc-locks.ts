/**
 * Per-document mutual exclusion for servers whose conditional updates are not
 * atomic. MongoDB applies `findOneAndUpdate({_id, status: 'a'}, ...)` atomically
 * per document, so two racing writers cannot both match. FerretDB 1.x (SQLite
 * backend) reads and then writes, so both can (measured here: 10 concurrent
 * conditional updates of one document, 61 winners over 20 trials instead of
 * 20), while its unique `_id` insert is atomic (20 of 20). So on such servers a
 * writer first inserts a lock document `{_id: key}`; the one insert that
 * succeeds may write. Locks expire, so a crashed holder cannot wedge a file.
 */
import { randomUUID } from 'node:crypto';
import { MongoServerError, type Collection } from 'mongodb';
import { ConflictError } from '../core/errors.js';
import { guard, type MongoConnection } from './mongo.js';

export const LOCKS_COLLECTION = 'doc_locks'; // created by init-mongo (mongo-schema.ts DOC_LOCKS)

interface LockDoc {
  _id: string;
  owner: string;
  expires_at: Date;
}

/** Mutual exclusion per key, across processes. */
export interface Locker {
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** Queues same-key callers of this process, so only one at a time asks the shared lock. */
export class LocalQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

export class DocLocks implements Locker {
  private readonly coll: Collection<LockDoc>;

  constructor(private readonly conn: MongoConnection) {
    this.coll = conn.db.collection<LockDoc>(LOCKS_COLLECTION);
  }

  /** Writers in this process queue here first, so they don't contend for the lock document. */
  private readonly local = new LocalQueue();

  /** Runs `fn` holding the lock on `key`; waits (with jitter) up to `waitMs` for it. */
  async withLock<T>(key: string, fn: () => Promise<T>, opts: { ttlMs?: number; waitMs?: number } = {}): Promise<T> {
    return this.local.run(key, () => this.withDocLock(key, fn, opts));
  }

  private async withDocLock<T>(key: string, fn: () => Promise<T>, opts: { ttlMs?: number; waitMs?: number }): Promise<T> {
    const ttl = opts.ttlMs ?? 15_000;
    // Wait longer than the TTL: a killed holder's lock expires while we wait.
    const deadline = Date.now() + (opts.waitMs ?? ttl + 5_000);
    const owner = randomUUID();
    for (let attempt = 0; ; attempt++) {
      if (await this.tryAcquire(key, owner, ttl)) break;
      if (Date.now() > deadline) throw new ConflictError(`${key} is busy (locked by another writer); try again`);
      await new Promise((r) => setTimeout(r, Math.min(50, 2 + attempt * 2) * (0.5 + Math.random())));
    }
    try {
      return await fn();
    } finally {
      await guard(this.conn.uri, () => this.coll.deleteOne({ _id: key, owner })).catch(() => undefined);
    }
  }

  private async tryAcquire(key: string, owner: string, ttl: number): Promise<boolean> {
    return guard(this.conn.uri, async () => {
      const now = new Date();
      try {
        await this.coll.insertOne({ _id: key, owner, expires_at: new Date(now.getTime() + ttl) });
        return true;
      } catch (err) {
        if (!(err instanceof MongoServerError) || err.code !== 11000) throw err;
      }
      // Held: break it only if its holder let it expire (crashed). Checked with a
      // read first: a delete is a write, and FerretDB serialises writes.
      const held = await this.coll.findOne({ _id: key }, { projection: { expires_at: 1 } });
      if (held && held.expires_at < now) await this.coll.deleteOne({ _id: key, expires_at: held.expires_at });
      return false;
    });
  }
}
