/** The `archive_log` collection: one entry per archive or purge run. */
import type { Collection } from 'mongodb';
import { guard, type MongoConnection } from './mongo.js';
import { ARCHIVE_LOG } from './mongo-schema.js';

export interface ArchiveLogEntry {
  timestamp: Date;
  operation: 'archive' | 'purge';
  run_id: string;
  files_count: number;
  failed_count: number;
  total_bytes_freed: number;
  s3_path_prefix: string;
  status: 'completed' | 'partial' | 'failed' | 'interrupted';
  dry_run: boolean;
}

export class ArchiveLog {
  private readonly coll: Collection<ArchiveLogEntry>;
  constructor(private readonly conn: MongoConnection) {
    this.coll = conn.db.collection<ArchiveLogEntry>(ARCHIVE_LOG);
  }

  async append(e: ArchiveLogEntry): Promise<void> {
    await guard(this.conn.uri, () => this.coll.insertOne({ ...e }));
  }

  async recent(operation: ArchiveLogEntry['operation'], limit = 10): Promise<ArchiveLogEntry[]> {
    return guard(this.conn.uri, () => this.coll.find({ operation }, { sort: { timestamp: -1 }, limit, projection: { _id: 0 } }).toArray());
  }
}
