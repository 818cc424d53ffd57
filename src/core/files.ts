/**
 * The file record as the registry keeps it, and its lifecycle states. Plain
 * types only: the MongoDB mapping lives in src/storage/file-registry.ts.
 */

/** Lifecycle states, in the order a file normally passes through them. */
export const FILE_STATES = [
  'pending', // signed: URL handed out, no object yet
  'uploaded', // object exists and matches what was signed
  'processing', // claimed by an optimizer worker
  'ready', // WebP derivatives made
  'archiving', // archive-run has recorded its intent
  'archived', // in the archive bucket, hot copy gone
  'restoring', // Glacier restore requested
  'expired', // URL expired with no upload
  'rejected', // bytes were not what was signed / not an image
  'failed', // optimizer gave up
] as const;

export type FileState = (typeof FILE_STATES)[number];

export interface FileRecord {
  _id: string; // file_id
  user_id: string;
  status: FileState;
  s3_key: string; // raw upload key in the hot bucket
  content_type: string;
  original_filename: string; // a label only; never used in keys
  use_case: string;
  size_bytes: number; // declared at signing, actual after registration
  checksum_sha256?: string; // hex
  width?: number;
  height?: number;
  created_at: Date;
  upload_expires_at?: Date;
  upload_timestamp?: Date;
  last_accessed_at?: Date;
  gallery_key?: string;
  gallery_bytes?: number;
  thumb_key?: string;
  thumb_bytes?: number;
  is_archived?: boolean;
  archive_s3_key?: string;
  archive_timestamp?: Date;
  ttl_expire_at?: Date;
  reason?: string;
}

/** Registry counts and sizes, as `biostore status` shows them. */
export interface RegistryStats {
  files_by_state: Record<string, number>;
  total_files: number;
  hot_bytes: number;
  archive_bytes: number;
  due_for_archive: number;
  next_purge_at: string | null;
}
