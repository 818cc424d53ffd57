/**
 * rehydrate: bring an archived file back to the hot bucket. GLACIER and
 * DEEP_ARCHIVE objects must first be restored by S3 (hours); the request is
 * recorded (`restoring`) and `rehydratePending` (CLI `--pending`, the daemon's
 * scheduler) finishes the job once HEAD shows the restore is done, so nobody
 * waits at a terminal. Instant classes are copied back at once. The copy back
 * is verified before the record points at it; the archive copy is deleted last.
 */
import type { Context } from '../core/context.js';
import { NotFoundError } from '../core/errors.js';
import { publish } from '../core/events.js';
import type { FileRecord } from '../core/files.js';
import { galleryKeys } from './optimize.js';
import { DAY_MS, finishCleanups, retry } from './lifecycle.js';

export type RestoreTier = 'Standard' | 'Bulk' | 'Expedited';
const THAWING_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);
/** How long S3 keeps the temporary restored copy; we copy it back long before. */
const RESTORE_DAYS = 2;

export interface RehydrateRequest {
  fileId?: string;
  archiveKey?: string;
  /** The owner the caller may act for; null for operators (any file). */
  userId: string | null;
  tier?: RestoreTier;
}

export interface RehydrateResult {
  file_id: string;
  status: 'ready' | 'restoring';
  message: string;
}

async function findArchived(ctx: Context, req: RehydrateRequest): Promise<FileRecord> {
  let rec: FileRecord | null = null;
  if (req.fileId) rec = await ctx.registry.get(req.fileId);
  else if (req.archiveKey) {
    for await (const r of ctx.registry.find({ archive_s3_key: req.archiveKey }, { limit: 1 })) rec = r;
  }
  if (!rec || (req.userId !== null && rec.user_id !== req.userId)) {
    throw new NotFoundError(`file ${req.fileId ?? req.archiveKey} not found`);
  }
  return rec;
}

/** Restored (or never frozen): the x-amz-restore header says ongoing-request="false". */
function thawed(storageClass: string | undefined, restoreHeader: string | undefined): boolean {
  if (!storageClass || !THAWING_CLASSES.has(storageClass)) return true;
  return /ongoing-request="false"/.test(restoreHeader ?? '');
}

/** Starts (or finishes, when possible) bringing one file back. */
export async function requestRehydrate(ctx: Context, req: RehydrateRequest): Promise<RehydrateResult> {
  const rec = await findArchived(ctx, req);
  if (rec.status === 'ready' && !rec.is_archived) return { file_id: rec._id, status: 'ready', message: 'already in the hot bucket' };
  if (!['archived', 'restoring'].includes(rec.status) || !rec.archive_s3_key) {
    throw new NotFoundError(`file ${rec._id} is not archived (status ${rec.status})`);
  }
  const archive = ctx.config.s3.bucketArchive;
  const head = await retry(() => ctx.objects.head(archive, rec.archive_s3_key!));
  if (!head) throw new NotFoundError(`the archive copy of ${rec._id} (${rec.archive_s3_key}) is missing`);
  // Intent first: the file is on its way back (a killed run is finished by --pending).
  let cur = rec;
  if (rec.status === 'archived') {
    const got = await ctx.registry.transition(rec._id, 'archived', { status: 'restoring', restore_requested_at: ctx.clock.now() });
    if (!got) return { file_id: rec._id, status: 'restoring', message: 'a restore is already under way' };
    cur = got;
  }
  if (!thawed(head.storageClass, head.restore)) {
    const r = await retry(() => ctx.objects.restore(archive, rec.archive_s3_key!, RESTORE_DAYS, req.tier ?? 'Standard'));
    await publish(ctx, { type: 'file.restoring', file_id: rec._id, user_id: rec.user_id, key: rec.archive_s3_key! });
    return {
      file_id: rec._id,
      status: 'restoring',
      message: `${head.storageClass} restore ${r === 'started' ? 'requested' : 'already in progress'} (tier ${req.tier ?? 'Standard'}); \`biostore rehydrate --pending\` or the daemon finishes it when S3 is done`,
    };
  }
  await copyBack(ctx, cur);
  return { file_id: rec._id, status: 'ready', message: 'copied back to the hot bucket' };
}

/** Copies the archive copy back, verifies it, points the record at it, deletes the archive copy. */
async function copyBack(ctx: Context, rec: FileRecord): Promise<void> {
  const { bucketHot, bucketArchive } = ctx.config.s3;
  const src = rec.archive_s3_key!;
  const dst = galleryKeys(rec).gallery;
  await retry(() => ctx.objects.copy({ bucket: bucketArchive, key: src }, { bucket: bucketHot, key: dst }, 'STANDARD'));
  const h = await retry(() => ctx.objects.head(bucketHot, dst));
  if (!h || (rec.gallery_bytes !== undefined && h.size !== rec.gallery_bytes)) {
    throw new Error(`copy back of ${rec._id} to ${dst} did not verify (${h ? `${h.size} bytes, expected ${rec.gallery_bytes}` : 'missing'})`);
  }
  const now = ctx.clock.now();
  const freshTtl = new Date(now.getTime() + ctx.config.lifecycle.retentionDays * DAY_MS);
  const done = await ctx.registry.transition(
    rec._id,
    'restoring',
    {
      status: 'ready',
      is_archived: false,
      gallery_key: dst,
      last_accessed_at: now,
      ttl_expire_at: rec.ttl_expire_at && rec.ttl_expire_at > freshTtl ? rec.ttl_expire_at : freshTtl,
      cleanup_keys: [{ bucket: bucketArchive, key: src }],
    },
    { unset: ['archive_s3_key', 'archive_timestamp', 'archive_storage_class', 'restore_requested_at'] },
  );
  if (!done) return;
  await retry(() => ctx.objects.delete(bucketArchive, src));
  await ctx.registry.transition(rec._id, 'ready', {}, { unset: ['cleanup_keys'] });
  await publish(ctx, { type: 'file.restored', file_id: rec._id, user_id: rec.user_id, key: dst });
}

export interface PendingReport {
  checked: number;
  restored: number;
  still_restoring: number;
  failed: number;
  failures: Array<{ file_id: string; error: string }>;
}

/** Finishes every restore that S3 has completed (and whatever a killed run left). */
export async function rehydratePending(ctx: Context, o: { signal?: AbortSignal; userId?: string } = {}): Promise<PendingReport> {
  const report: PendingReport = { checked: 0, restored: 0, still_restoring: 0, failed: 0, failures: [] };
  const lock = await ctx.runLocks.acquire('rehydrate');
  try {
    await finishCleanups(ctx);
    for await (const rec of ctx.registry.find({ status: 'restoring', ...(o.userId ? { user_id: o.userId } : {}) })) {
      if (o.signal?.aborted) break;
      report.checked++;
      try {
        const head = await retry(() => ctx.objects.head(ctx.config.s3.bucketArchive, rec.archive_s3_key!));
        if (!head) throw new Error(`archive copy ${rec.archive_s3_key} is missing`);
        if (!thawed(head.storageClass, head.restore)) {
          if (!head.restore) await retry(() => ctx.objects.restore(ctx.config.s3.bucketArchive, rec.archive_s3_key!, RESTORE_DAYS, 'Standard'));
          report.still_restoring++;
          continue;
        }
        await copyBack(ctx, rec);
        report.restored++;
      } catch (err) {
        report.failed++;
        report.failures.push({ file_id: rec._id, error: (err as Error).message });
      }
    }
    return report;
  } finally {
    await lock.release();
  }
}
