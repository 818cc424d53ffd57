/**
 * The file registry in MongoDB (`files_metadata`): the queries the commands,
 * jobs and daemon share. Every state change is a single conditional update.
 */
import type { Collection } from 'mongodb';
import type { FileRecord, RegistryStats } from '../core/files.js';
import { guard, type MongoConnection } from './mongo.js';
import { FILES } from './mongo-schema.js';

const DAY_MS = 24 * 3600 * 1000;

export class FileRegistry {
  readonly files: Collection<FileRecord>;

  constructor(private readonly conn: MongoConnection) {
    this.files = conn.db.collection<FileRecord>(FILES);
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
