/**
 * The file registry in MongoDB (`files_metadata`): the queries the commands,
 * jobs and daemon share. Every state change is a single conditional update.
 */
import type { Collection, Filter, UpdateFilter } from 'mongodb';
import type { FileRecord, FileState, RegistryStats } from '../core/files.js';
import { guard, type MongoConnection } from './mongo.js';
import { FILES } from './mongo-schema.js';

const DAY_MS = 24 * 3600 * 1000;

export class FileRegistry {
  readonly files: Collection<FileRecord>;

  constructor(private readonly conn: MongoConnection) {
    this.files = conn.db.collection<FileRecord>(FILES);
  }

  private run<T>(fn: () => Promise<T>): Promise<T> {
    return guard(this.conn.uri, async () => {
      await this.conn.connect();
      return fn();
    });
  }

  async insert(rec: FileRecord): Promise<void> {
    await this.run(() => this.files.insertOne(rec));
  }

  async get(id: string): Promise<FileRecord | null> {
    return this.run(() => this.files.findOne({ _id: id }));
  }

  async getByKey(key: string): Promise<FileRecord | null> {
    return this.run(() => this.files.findOne({ s3_key: key }));
  }

  /**
   * The one way a file changes state: match the id and the expected state(s),
   * apply the update, return the new record (or null when the file was not in
   * that state, i.e. someone else got there first).
   */
  async transition(
    id: string,
    from: FileState | FileState[],
    set: Partial<FileRecord>,
    extra: { unset?: Array<keyof FileRecord>; where?: Filter<FileRecord> } = {},
  ): Promise<FileRecord | null> {
    const update: UpdateFilter<FileRecord> = { $set: { ...set, updated_at: set.updated_at ?? new Date() } };
    if (extra.unset?.length) update.$unset = Object.fromEntries(extra.unset.map((k) => [k, ''])) as never;
    const filter = { _id: id, status: Array.isArray(from) ? { $in: from } : from, ...(extra.where ?? {}) } as Filter<FileRecord>;
    return this.run(async () => {
      if (!(await this.conn.needsDocLocks())) return this.files.findOneAndUpdate(filter, update, { returnDocument: 'after' });
      // Under the document's lock, check then write by _id: the same outcome, and
      // FerretDB 1.x (SQLite) updates by _id alone ~5x faster than with more conditions.
      return this.conn.atomically(`file:${id}`, async () => {
        if (!(await this.files.findOne(filter, { projection: { _id: 1 } }))) return null;
        return this.files.findOneAndUpdate({ _id: id }, update, { returnDocument: 'after' });
      });
    });
  }

  /** Deletes the record if it is still in one of the given states; true when this call deleted it. */
  async remove(id: string, from: FileState[]): Promise<boolean> {
    const res = await this.run(() =>
      this.conn.atomically(`file:${id}`, async () => {
        if (!(await this.conn.needsDocLocks())) return this.files.deleteOne({ _id: id, status: { $in: from } });
        if (!(await this.files.findOne({ _id: id, status: { $in: from } }, { projection: { _id: 1 } }))) return { deletedCount: 0 };
        return this.files.deleteOne({ _id: id });
      }),
    );
    return res.deletedCount === 1;
  }

  /** Streams records matching a filter, oldest first, with a narrow batch size. */
  find(
    filter: Filter<FileRecord>,
    opts: { limit?: number; sort?: Record<string, 1 | -1>; projection?: Record<string, 0 | 1> } = {},
  ): AsyncIterable<FileRecord> {
    const cursor = this.files.find(filter, { sort: opts.sort ?? { created_at: 1 }, batchSize: 500, projection: opts.projection });
    if (opts.limit) cursor.limit(opts.limit);
    const uri = this.conn.uri;
    const conn = this.conn;
    return {
      async *[Symbol.asyncIterator]() {
        await guard(uri, () => conn.connect());
        try {
          for await (const doc of cursor) yield doc;
        } catch (err) {
          await guard(uri, () => Promise.reject(err));
        }
      },
    };
  }

  /** The earliest retention end of a user's files (or anyone's), for the archive summary. */
  async nextPurge(user?: string): Promise<Date | null> {
    const f = await this.run(() =>
      this.files.findOne(
        { ttl_expire_at: { $exists: true }, ...(user ? { user_id: user } : {}) },
        { sort: { ttl_expire_at: 1 }, projection: { ttl_expire_at: 1 } },
      ),
    );
    return f?.ttl_expire_at ?? null;
  }

  async count(filter: Filter<FileRecord>): Promise<number> {
    return this.run(() => this.files.countDocuments(filter));
  }

  /** Counts by state, bytes per bucket, files due for archive and the next purge date. */
  async stats(now: Date, archiveThresholdDays: number): Promise<RegistryStats> {
    return guard(this.conn.uri, async () => {
      await this.conn.connect();
      const byState = await this.files
        .aggregate<{ _id: string; n: number }>([{ $group: { _id: '$status', n: { $sum: 1 } } }])
        .toArray();
      const files_by_state: Record<string, number> = {};
      let total = 0;
      for (const row of byState) {
        files_by_state[String(row._id)] = row.n;
        total += row.n;
      }
      // Summed client-side from a narrow projection: FerretDB 1.x answers
      // {$sum: "$field"} with 0, so $group cannot be trusted for byte totals.
      let hot = 0;
      let archive = 0;
      const cursor = this.files.find(
        { status: { $in: ['uploaded', 'processing', 'ready', 'archiving', 'archived', 'restoring', 'failed'] } },
        { projection: { size_bytes: 1, gallery_bytes: 1, thumb_bytes: 1, is_archived: 1 } },
      );
      for await (const f of cursor) {
        if (f.is_archived) archive += f.gallery_bytes ?? f.size_bytes ?? 0;
        else hot += (f.size_bytes ?? 0) + (f.gallery_bytes ?? 0) + (f.thumb_bytes ?? 0);
      }
      const cutoff = new Date(now.getTime() - archiveThresholdDays * DAY_MS);
      const due = await this.files.countDocuments({
        status: 'ready',
        is_archived: { $ne: true },
        $or: [{ last_accessed_at: { $lt: cutoff } }, { last_accessed_at: { $exists: false }, upload_timestamp: { $lt: cutoff } }],
      });
      const next = await this.files.findOne(
        { ttl_expire_at: { $exists: true } },
        { sort: { ttl_expire_at: 1 }, projection: { ttl_expire_at: 1 } },
      );
      return {
        files_by_state,
        total_files: total,
        hot_bytes: hot,
        archive_bytes: archive,
        due_for_archive: due,
        next_purge_at: next?.ttl_expire_at ? next.ttl_expire_at.toISOString() : null,
      };
    });
  }
}
