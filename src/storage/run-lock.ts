/**
 * One run at a time per job (two CronJob pods, or a CronJob and the daemon's
 * scheduler): a lock document in `job_locks`, taken by a unique insert (atomic
 * on every server), renewed while the run lives, and breakable once expired so
 * a killed run does not block the next one for longer than its TTL.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Collection } from 'mongodb';
import { ConflictError } from '../core/errors.js';
import { guard, type MongoConnection } from './mongo.js';
import { LOCKS } from './mongo-schema.js';

interface JobLockDoc {
  _id: string;
  owner: string;
  host: string;
  pid: number;
  acquired_at: Date;
  expires_at: Date;
}

export interface RunLock {
  owner: string;
  release(): Promise<void>;
}

export class RunLocks {
  private readonly coll: Collection<JobLockDoc>;

  constructor(private readonly conn: MongoConnection) {
    this.coll = conn.db.collection<JobLockDoc>(LOCKS);
  }

  /** Takes the lock for `job` or throws ConflictError naming who holds it. */
  async acquire(job: string, ttlMs = 120_000): Promise<RunLock> {
    const owner = randomUUID();
    const now = new Date();
    const doc: JobLockDoc = { _id: job, owner, host: hostname(), pid: process.pid, acquired_at: now, expires_at: new Date(now.getTime() + ttlMs) };
    const tryInsert = () =>
      guard(this.conn.uri, async () => {
        try {
          await this.coll.insertOne(doc);
          return true;
        } catch (err) {
          if ((err as { code?: number }).code === 11000) return false;
          throw err;
        }
      });
    if (!(await tryInsert())) {
      const held = await guard(this.conn.uri, () => this.coll.findOne({ _id: job }));
      // Expired, or held by a process on this host that no longer exists (killed): take it over.
      if (held && (held.expires_at.getTime() < now.getTime() || (held.host === hostname() && !alive(held.pid)))) {
        await guard(this.conn.uri, () => this.coll.deleteOne({ _id: job, owner: held.owner }));
        if (!(await tryInsert())) throw this.busy(job, null);
      } else {
        throw this.busy(job, held);
      }
    }
    const timer = setInterval(() => {
      void guard(this.conn.uri, () =>
        this.coll.updateOne({ _id: job, owner }, { $set: { expires_at: new Date(Date.now() + ttlMs) } }),
      ).catch(() => undefined);
    }, Math.max(1000, ttlMs / 3));
    timer.unref();
    return {
      owner,
      release: async () => {
        clearInterval(timer);
        await guard(this.conn.uri, () => this.coll.deleteOne({ _id: job, owner })).catch(() => undefined);
      },
    };
  }

  private busy(job: string, held: JobLockDoc | null): ConflictError {
    const who = held ? ` (held by ${held.host} pid ${held.pid} since ${held.acquired_at.toISOString()}, until ${held.expires_at.toISOString()})` : '';
    return new ConflictError(`another ${job} is running${who}; skipped`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
