/**
 * Per-user quota in `user_usage`: one document per user whose `bytes` and
 * `files` count both committed and reserved uploads. A reservation is a
 * single conditional update (match only while there is room, then $inc), so
 * two concurrent signs cannot both pass a quota with room for one.
 */
import type { Collection } from 'mongodb';
import { guard, type MongoConnection } from './mongo.js';
import { USAGE } from './mongo-schema.js';

export interface UsageDoc {
  _id: string;
  bytes: number;
  files: number;
  reserved_bytes: number;
  reserved_files: number;
}

export interface QuotaLimits {
  /** 0 = unlimited */
  bytes: number;
  /** 0 = unlimited */
  files: number;
}

export class UsageStore {
  private readonly coll: Collection<UsageDoc>;

  constructor(private readonly conn: MongoConnection) {
    this.coll = conn.db.collection<UsageDoc>(USAGE);
  }

  /** Reserves room for one file of `bytes`; false when the quota has no room. */
  async reserve(user: string, bytes: number, limits: QuotaLimits): Promise<boolean> {
    return guard(this.conn.uri, async () => {
      await this.conn.connect();
      const filter: Record<string, unknown> = { _id: user };
      if (limits.bytes > 0) filter.bytes = { $lte: limits.bytes - bytes };
      if (limits.files > 0) filter.files = { $lte: limits.files - 1 };
      const inc = { $inc: { bytes: bytes, files: 1, reserved_bytes: bytes, reserved_files: 1 } };
      const tryInc = () =>
        this.conn.atomically(`usage:${user}`, async () => {
          if (!(await this.conn.needsDocLocks())) return this.coll.updateOne(filter, inc);
          // Locked: check, then write by _id (faster on FerretDB than a conditional update).
          if (!(await this.coll.findOne(filter as never, { projection: { _id: 1 } }))) return { modifiedCount: 0 };
          return this.coll.updateOne({ _id: user }, inc);
        });
      // The common case is one conditional write; a user's first sign creates the document.
      if ((await tryInc()).modifiedCount === 1) return true;
      // No room, or no document yet (a user's first sign, maybe two at once): make sure
      // the document exists, then try once more; only a full quota fails twice.
      try {
        await this.coll.insertOne({ _id: user, bytes: 0, files: 0, reserved_bytes: 0, reserved_files: 0 });
      } catch (err) {
        // Two first signs at once: the other one created it.
        if ((err as { code?: number }).code !== 11000) throw err;
      }
      return (await tryInc()).modifiedCount === 1;
    });
  }

  /** Turns a reservation into committed usage, correcting the size to the real one. */
  async commit(user: string, reservedBytes: number, actualBytes: number): Promise<void> {
    await this.inc(user, () =>
      this.coll.updateOne(
        { _id: user },
        { $inc: { bytes: actualBytes - reservedBytes, reserved_bytes: -reservedBytes, reserved_files: -1 } },
      ),
    );
  }

  /** Gives back a reservation that was never used (URL expired, upload rejected). */
  async releaseReservation(user: string, reservedBytes: number): Promise<void> {
    await this.inc(user, () =>
      this.coll.updateOne(
        { _id: user },
        { $inc: { bytes: -reservedBytes, files: -1, reserved_bytes: -reservedBytes, reserved_files: -1 } },
      ),
    );
  }

  /** Gives back committed usage (file deleted or purged). */
  async release(user: string, bytes: number): Promise<void> {
    await this.inc(user, () => this.coll.updateOne({ _id: user }, { $inc: { bytes: -bytes, files: -1 } }));
  }

  private inc(user: string, fn: () => Promise<unknown>): Promise<unknown> {
    return guard(this.conn.uri, () => this.conn.atomically(`usage:${user}`, fn));
  }

  async get(user: string): Promise<UsageDoc | null> {
    return guard(this.conn.uri, () => this.coll.findOne({ _id: user }));
  }
}
