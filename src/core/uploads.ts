/**
 * The upload path, shared by `biostore sign`, the daemon's routes, the S3
 * webhook and the reconciler: sign (reserve quota, record a pending file,
 * presign), register (check what arrived against what was signed), delete,
 * and download URLs. Every state change is one conditional update; quota
 * moves only after the state change that justifies it succeeded.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Context } from './context.js';
import { InvalidInputError, NotFoundError, QuotaExceededError } from './errors.js';
import { publish } from './events.js';
import type { FileRecord } from './files.js';
import { ImageRejectedError, probeImage, sniffImageType } from '../media/images.js';

/** Accepted upload types. HEIC and AVIF are refused: the image pipeline's
 * libvips build has no HEIC decoder, and phones convert to JPEG on upload. */
export const CONTENT_TYPES: Record<string, { ext: string; format: 'jpeg' | 'png' | 'webp' }> = {
  'image/jpeg': { ext: 'jpg', format: 'jpeg' },
  'image/png': { ext: 'png', format: 'png' },
  'image/webp': { ext: 'webp', format: 'webp' },
};

const USER_RE = /^[A-Za-z0-9_-]{1,64}$/;
const SHA_RE = /^[0-9a-f]{64}$/;
const USE_CASE_RE = /^[a-z0-9_]{1,32}$/;

export interface SignRequest {
  userId: string;
  filename: string;
  contentType: string;
  useCase?: string;
  sizeBytes?: number;
  checksumSha256?: string;
  /** `put` (default): a presigned PUT. `post`: a presigned POST form, for clients that cannot declare the size. */
  mode?: 'put' | 'post';
  /** Overrides UPLOAD_URL_TTL_SECONDS (tests sign with 1-2 s). */
  expiresInSeconds?: number;
}

export interface SignResult {
  file_id: string;
  key: string;
  method: 'PUT' | 'POST';
  upload_url: string;
  headers: Record<string, string>;
  fields?: Record<string, string>;
  expires_at: string;
  max_bytes: number;
}

/** A safe label from whatever the client called its file: a base name, no control characters, at most 255 chars. */
export function labelFromFilename(name: string): string {
  // eslint-disable-next-line no-control-regex
  const base = name.replace(/[\u0000-\u001f\u007f]/g, '').split(/[\\/]/).pop() ?? '';
  return base.trim().slice(0, 255) || 'upload';
}

/** Validates a user id the way keys need it (it becomes a path segment). */
export function checkUserId(userId: string): string {
  if (!USER_RE.test(userId)) {
    throw new InvalidInputError(`user id "${userId.slice(0, 80)}" is invalid: use 1-64 letters, digits, _ or -`, 'invalid_user');
  }
  return userId;
}

/** Signs one upload: validate, reserve quota, record the pending file, presign. */
export async function signUpload(ctx: Context, req: SignRequest): Promise<SignResult> {
  const cfg = ctx.config;
  const userId = checkUserId(req.userId);
  const type = CONTENT_TYPES[req.contentType.toLowerCase()];
  if (!type) {
    throw new InvalidInputError(
      `content type "${req.contentType.slice(0, 80)}" is not accepted: use image/jpeg, image/png or image/webp`,
      'unsupported_media_type',
      415,
    );
  }
  if (req.sizeBytes !== undefined && (!Number.isSafeInteger(req.sizeBytes) || req.sizeBytes < 1)) {
    throw new InvalidInputError('size_bytes must be a whole number of bytes >= 1', 'invalid_size');
  }
  if (req.sizeBytes !== undefined && req.sizeBytes > cfg.upload.maxBytes) {
    throw new InvalidInputError(
      `size_bytes ${req.sizeBytes} exceeds the limit of ${cfg.upload.maxBytes} bytes (MAX_UPLOAD_BYTES)`,
      'too_large',
      413,
    );
  }
  const sha = req.checksumSha256?.toLowerCase();
  if (sha !== undefined && !SHA_RE.test(sha)) {
    throw new InvalidInputError('checksum_sha256 must be 64 hex characters (the SHA-256 of the file)', 'invalid_checksum');
  }
  const useCase = req.useCase ?? 'gallery';
  if (!USE_CASE_RE.test(useCase)) throw new InvalidInputError('use_case must be 1-32 lowercase letters, digits or _', 'invalid_use_case');
  const mode = req.mode ?? 'put';
  const ttl = req.expiresInSeconds ?? cfg.upload.urlTtlSeconds;

  const fileId = randomUUID();
  const key = `raw/${userId}/${fileId}.${type.ext}`;
  const reserved = req.sizeBytes ?? cfg.upload.maxBytes;
  const ok = await ctx.usage.reserve(userId, reserved, { bytes: cfg.upload.quotaBytes, files: cfg.upload.quotaFiles });
  if (!ok) {
    throw new QuotaExceededError(
      `quota exceeded for user ${userId}: no room for ${reserved} more bytes or one more file (QUOTA_BYTES_PER_USER / QUOTA_FILES_PER_USER)`,
    );
  }

  const now = ctx.clock.now();
  const expiresAt = new Date(now.getTime() + ttl * 1000);
  const record: FileRecord = {
    _id: fileId,
    user_id: userId,
    status: 'pending',
    s3_key: key,
    content_type: req.contentType.toLowerCase(),
    original_filename: labelFromFilename(req.filename),
    use_case: useCase,
    size_bytes: req.sizeBytes ?? 0,
    reserved_bytes: reserved,
    declared_size: req.sizeBytes,
    declared_sha256: sha,
    upload_mode: mode,
    created_at: now,
    updated_at: now,
    upload_expires_at: expiresAt,
  };
  try {
    await ctx.registry.insert(record);
  } catch (err) {
    await ctx.usage.releaseReservation(userId, reserved);
    throw err;
  }

  const bucket = cfg.s3.bucketHot;
  if (mode === 'post') {
    const post = await ctx.presigner.presignPost({
      bucket,
      key,
      contentType: record.content_type,
      maxBytes: req.sizeBytes ?? cfg.upload.maxBytes,
      expiresInSeconds: ttl,
    });
    return {
      file_id: fileId,
      key,
      method: 'POST',
      upload_url: post.url,
      headers: {},
      fields: post.fields,
      expires_at: post.expiresAt.toISOString(),
      max_bytes: req.sizeBytes ?? cfg.upload.maxBytes,
    };
  }
  const put = ctx.presigner.presignPut({
    bucket,
    key,
    contentType: record.content_type,
    contentLength: req.sizeBytes,
    checksumSha256Hex: sha,
    expiresInSeconds: ttl,
  });
  return {
    file_id: fileId,
    key,
    method: 'PUT',
    upload_url: put.url,
    headers: put.headers,
    expires_at: put.expiresAt.toISOString(),
    max_bytes: req.sizeBytes ?? cfg.upload.maxBytes,
  };
}

export type RegisterOutcome = 'registered' | 'rejected' | 'missing' | 'already' | 'unknown';

/**
 * Checks an uploaded object against what was signed and records it. Safe to
 * call for duplicate, late or out-of-order events: only a `pending` file is
 * changed, and only once.
 */
export async function registerUpload(ctx: Context, key: string): Promise<{ outcome: RegisterOutcome; file?: FileRecord }> {
  const rec = await ctx.registry.getByKey(key);
  if (!rec) return { outcome: 'unknown' };
  if (rec.status !== 'pending') return { outcome: 'already', file: rec };
  const bucket = ctx.config.s3.bucketHot;
  const head = await ctx.objects.head(bucket, key);
  if (!head) return { outcome: 'missing', file: rec };

  const reject = (reason: string) => rejectUpload(ctx, rec, reason);
  if (head.size > ctx.config.upload.maxBytes) return reject(`${head.size} bytes is over the limit of ${ctx.config.upload.maxBytes}`);
  if (rec.declared_size !== undefined && head.size !== rec.declared_size) {
    return reject(`size ${head.size} differs from the signed ${rec.declared_size} bytes`);
  }
  if (head.contentType && head.contentType.toLowerCase() !== rec.content_type) {
    return reject(`stored as ${head.contentType}, signed as ${rec.content_type}`);
  }
  const body = await ctx.objects.read(bucket, key, ctx.config.upload.maxBytes);
  if (!body) return { outcome: 'missing', file: rec };
  const sniffed = sniffImageType(body.subarray(0, 64));
  const expected = CONTENT_TYPES[rec.content_type]?.format;
  if (!sniffed) return reject(`not an image: the bytes are not JPEG, PNG or WebP although signed as ${rec.content_type}`);
  if (sniffed !== expected) return reject(`the bytes are ${sniffed} although signed as ${rec.content_type}`);
  const sha = createHash('sha256').update(body).digest('hex');
  if (rec.declared_sha256 && sha !== rec.declared_sha256) return reject('SHA-256 differs from the signed checksum');
  let dims: { orientedWidth: number; orientedHeight: number };
  try {
    dims = await probeImage(body, { maxPixels: ctx.config.optimizer.maxPixels });
  } catch (err) {
    if (err instanceof ImageRejectedError) return reject(err.reason);
    throw err;
  }
  const now = ctx.clock.now();
  const updated = await ctx.registry.transition(
    rec._id,
    'pending',
    {
      status: 'uploaded',
      size_bytes: body.length,
      checksum_sha256: sha,
      width: dims.orientedWidth,
      height: dims.orientedHeight,
      upload_timestamp: now,
      last_accessed_at: now,
      updated_at: now,
    },
    { unset: ['upload_expires_at'] },
  );
  if (!updated) return { outcome: 'already', file: (await ctx.registry.get(rec._id)) ?? rec };
  await ctx.usage.commit(rec.user_id, rec.reserved_bytes, body.length);
  await publish(ctx, {
    type: 'file.uploaded',
    file_id: rec._id,
    user_id: rec.user_id,
    key,
    size_bytes: body.length,
    checksum_sha256: sha,
    content_type: rec.content_type,
  });
  ctx.metrics?.uploadsRegistered.inc();
  ctx.onRegistered?.();
  return { outcome: 'registered', file: updated };
}

async function rejectUpload(ctx: Context, rec: FileRecord, reason: string): Promise<{ outcome: RegisterOutcome; file?: FileRecord }> {
  const updated = await ctx.registry.transition(rec._id, 'pending', { status: 'rejected', reason }, { unset: ['upload_expires_at'] });
  if (!updated) return { outcome: 'already', file: (await ctx.registry.get(rec._id)) ?? rec };
  await ctx.objects.delete(ctx.config.s3.bucketHot, rec.s3_key);
  await ctx.usage.releaseReservation(rec.user_id, rec.reserved_bytes);
  await publish(ctx, { type: 'file.rejected', file_id: rec._id, user_id: rec.user_id, key: rec.s3_key, reason });
  ctx.metrics?.uploadsRejected.inc();
  ctx.logger.warn({ file_id: rec._id, reason }, 'upload rejected');
  return { outcome: 'rejected', file: updated };
}

/** Marks a pending upload whose URL expired with no object as expired and releases its quota. */
export async function expireUpload(ctx: Context, rec: FileRecord): Promise<boolean> {
  const updated = await ctx.registry.transition(rec._id, 'pending', { status: 'expired', reason: 'upload URL expired unused' }, {
    unset: ['upload_expires_at'],
  });
  if (!updated) return false;
  await ctx.usage.releaseReservation(rec.user_id, rec.reserved_bytes);
  await publish(ctx, { type: 'file.expired', file_id: rec._id, user_id: rec.user_id, key: rec.s3_key });
  return true;
}

/** A file of this user, or NotFound (also for another user's file: no existence leak). */
export async function getOwnedFile(ctx: Context, fileId: string, userId: string | null): Promise<FileRecord> {
  const rec = /^[0-9a-f-]{36}$/.test(fileId) ? await ctx.registry.get(fileId) : null;
  if (!rec || (userId !== null && rec.user_id !== userId) || rec.deleted_at) throw new NotFoundError(`file ${fileId.slice(0, 64)} not found`);
  return rec;
}

/**
 * Deletes a file's objects and record and releases its quota. Repeating it is
 * harmless: the record is marked first, objects go next (missing counts as
 * deleted), the record last.
 */
export async function deleteFile(ctx: Context, rec: FileRecord): Promise<void> {
  const now = ctx.clock.now();
  const marked = rec.deleted_at ? rec : await ctx.registry.transition(rec._id, rec.status, { deleted_at: now });
  if (!marked) return;
  const hot = ctx.config.s3.bucketHot;
  const keys = [rec.s3_key, rec.gallery_key, rec.thumb_key].filter((k): k is string => Boolean(k));
  for (const k of keys) await ctx.objects.delete(hot, k);
  if (rec.archive_s3_key) await ctx.objects.delete(ctx.config.s3.bucketArchive, rec.archive_s3_key);
  if (await ctx.registry.remove(rec._id, [rec.status])) {
    if (rec.status === 'pending') await ctx.usage.releaseReservation(rec.user_id, rec.reserved_bytes);
    else if (!['expired', 'rejected'].includes(rec.status)) await ctx.usage.release(rec.user_id, rec.size_bytes);
    await publish(ctx, { type: 'file.deleted', file_id: rec._id, user_id: rec.user_id, key: rec.s3_key });
  }
}

export interface DownloadLink {
  url: string;
  expires_at: string | null;
  variant: 'gallery' | 'thumbnail' | 'original';
}

/**
 * A short-lived link to the optimized image (or the thumbnail), or a CDN link
 * when CDN_DOMAIN is set. The original only when asked and still present.
 */
export async function downloadUrl(ctx: Context, rec: FileRecord, variant: DownloadLink['variant'] = 'gallery'): Promise<DownloadLink> {
  if (rec.is_archived) throw new NotFoundError(`file ${rec._id} is archived; request a rehydrate first`);
  const key = variant === 'thumbnail' ? rec.thumb_key : variant === 'original' ? rec.s3_key : rec.gallery_key;
  if (!key || (variant === 'original' && !['uploaded', 'processing', 'ready'].includes(rec.status))) {
    throw new NotFoundError(`file ${rec._id} has no ${variant} image yet (status ${rec.status})`);
  }
  await ctx.registry.transition(rec._id, rec.status, { last_accessed_at: ctx.clock.now() });
  if (ctx.config.cdnDomain) {
    const host = ctx.config.cdnDomain.replace(/^https?:\/\//, '').replace(/\/$/, '');
    return { url: `https://${host}/${key}`, expires_at: null, variant };
  }
  const signed = ctx.presigner.presignGet({
    bucket: ctx.config.s3.bucketHot,
    key,
    expiresInSeconds: ctx.config.upload.downloadTtlSeconds,
  });
  return { url: signed.url, expires_at: signed.expiresAt.toISOString(), variant };
}
