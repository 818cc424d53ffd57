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
  'purging', // purge-run has recorded its intent
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
  gallery_width?: number;
  gallery_height?: number;
  thumb_key?: string;
  thumb_bytes?: number;
  thumb_width?: number;
  thumb_height?: number;
  /** Settings fingerprint of the derivatives (media/images.ts optimizerVersion). */
  optimizer_version?: string;
  processed_at?: Date;
  /** Worker lease while `processing` (or archiving, restoring): who, and until when. */
  lease_owner?: string;
  lease_until?: Date;
  /** Optimizer attempts so far. */
  attempts?: number;
  /** SHA-256 (hex) of the gallery WebP, to verify copies. */
  gallery_sha256?: string;
  /** Objects a finished transition left to delete (the old copy after a move). */
  cleanup_keys?: Array<{ bucket: string; key: string }>;
  archive_storage_class?: string;
  restore_requested_at?: Date;
  is_archived?: boolean;
  archive_s3_key?: string;
  archive_timestamp?: Date;
  ttl_expire_at?: Date;
  /** Why the file was rejected or failed, in words fit for a user. */
  reason?: string;
  /** Bytes held against the user's quota while pending. */
  reserved_bytes: number;
  /** The size the client declared at signing (S3 enforces it when set). */
  declared_size?: number;
  /** The SHA-256 the client declared at signing (S3 enforces it when set). */
  declared_sha256?: string;
  upload_mode: 'put' | 'post';
  updated_at: Date;
  deleted_at?: Date;
  /** The image embedding, stored as a BSON float32 vector; read and write it through src/storage/vector-store.ts. */
  embedding_vector?: unknown;
  /** Model and dimension of `embedding_vector`: search only compares vectors of the configured ones. */
  embedding_model?: string;
  embedding_dim?: number;
  embedded_at?: Date;
  /** Embedding lease (reindex-embeddings, daemon): who is embedding the file, and until when. */
  embedding_lease_owner?: string;
  embedding_lease_until?: Date;
}

/** The record fields an API client may see. */
export function publicFile(f: FileRecord): Record<string, unknown> {
  return {
    file_id: f._id,
    user_id: f.user_id,
    status: f.status,
    key: f.s3_key,
    content_type: f.content_type,
    filename: f.original_filename,
    use_case: f.use_case,
    size_bytes: f.upload_timestamp ? f.size_bytes : null,
    checksum_sha256: f.checksum_sha256 ?? null,
    width: f.width ?? null,
    height: f.height ?? null,
    upload_timestamp: f.upload_timestamp?.toISOString() ?? null,
    is_archived: f.is_archived ?? false,
    reason: f.reason ?? null,
  };
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
