/**
 * The reconciler: uploads must not depend on events alone. Pending files
 * whose object exists are registered (their event was lost); pending files
 * past expiry with no object become `expired` and release their quota;
 * objects under raw/ with no record are reported (purge-run --orphans deletes
 * them). Idempotent; run by the daemon on an interval and by `biostore reconcile`.
 */
import type { Context } from '../core/context.js';
import { expireUpload, registerUpload } from '../core/uploads.js';

/** A URL used just before it expires may finish uploading a little later. */
export const UPLOAD_GRACE_MS = 2 * 60 * 1000;

export interface ReconcileOptions {
  dryRun?: boolean;
  /** Also list raw/ objects that no record points to (one S3 listing). */
  orphans?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number) => void;
}

export interface ReconcileReport {
  dry_run: boolean;
  checked: number;
  registered: number;
  rejected: number;
  expired: number;
  still_pending: number;
  orphans: Array<{ key: string; size: number; last_modified: string | null }>;
  errors: Array<{ file_id: string; error: string }>;
}

export async function reconcile(ctx: Context, opts: ReconcileOptions = {}): Promise<ReconcileReport> {
  const now = ctx.clock.now();
  const report: ReconcileReport = {
    dry_run: Boolean(opts.dryRun),
    checked: 0,
    registered: 0,
    rejected: 0,
    expired: 0,
    still_pending: 0,
    orphans: [],
    errors: [],
  };
  const bucket = ctx.config.s3.bucketHot;
  for await (const rec of ctx.registry.find({ status: 'pending' })) {
    if (opts.signal?.aborted) break;
    report.checked++;
    try {
      const head = await ctx.objects.head(bucket, rec.s3_key);
      const expired = (rec.upload_expires_at?.getTime() ?? 0) + UPLOAD_GRACE_MS < now.getTime();
      if (head) {
        if (opts.dryRun) {
          report.registered++;
          continue;
        }
        const r = await registerUpload(ctx, rec.s3_key);
        if (r.outcome === 'registered') report.registered++;
        else if (r.outcome === 'rejected') report.rejected++;
      } else if (expired) {
        if (opts.dryRun || (await expireUpload(ctx, rec))) report.expired++;
      } else {
        report.still_pending++;
      }
    } catch (err) {
      report.errors.push({ file_id: rec._id, error: (err as Error).message });
    }
    opts.onProgress?.(report.checked);
  }
  if (opts.orphans) {
    const cutoff = now.getTime() - UPLOAD_GRACE_MS;
    for await (const obj of ctx.objects.list(bucket, 'raw/')) {
      if ((obj.lastModified?.getTime() ?? 0) > cutoff) continue;
      if (!(await ctx.registry.getByKey(obj.key))) {
        report.orphans.push({ key: obj.key, size: obj.size, last_modified: obj.lastModified?.toISOString() ?? null });
      }
    }
  }
  return report;
}
