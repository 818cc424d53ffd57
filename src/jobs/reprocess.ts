/**
 * `reprocess`: re-run the image pipeline for selected files (after a settings
 * change, or for files that failed). Works from the raw original; when that
 * has expired it skips the file and says why, unless asked to work from the
 * gallery image. Each file is claimed with the same lease as the workers, so
 * it is safe to interrupt, to re-run, and to run beside the daemon.
 */
import { randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import type { Context } from '../core/context.js';
import type { FileRecord, FileState } from '../core/files.js';
import { configureSharp, optimizerVersion } from '../media/images.js';
import { optimizeSettings, processClaimed } from './optimize.js';

export interface ReprocessOptions {
  user?: string;
  since?: Date;
  until?: Date;
  status?: FileState;
  /** Only files whose optimizer_version differs from the current settings. */
  stale?: boolean;
  fileId?: string;
  limit?: number;
  concurrency?: number;
  dryRun?: boolean;
  /** Re-encode from our own gallery WebP when the original has expired (loses quality). */
  fromGallery?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface ReprocessItem {
  file_id: string;
  user_id: string;
  outcome: 'ready' | 'failed' | 'skipped' | 'would-reprocess' | 'busy';
  reason?: string;
}

export interface ReprocessReport {
  dry_run: boolean;
  interrupted: boolean;
  optimizer_version: string;
  selected: number;
  ready: number;
  failed: number;
  skipped: number;
  items: ReprocessItem[];
}

/** The selection as a registry filter. */
export function reprocessFilter(ctx: Context, o: ReprocessOptions): Record<string, unknown> {
  const f: Record<string, unknown> = {};
  f.status = o.status ?? { $in: ['ready', 'failed'] };
  if (o.user) f.user_id = o.user;
  if (o.fileId) f._id = o.fileId;
  if (o.since || o.until) {
    const range: Record<string, Date> = {};
    if (o.since) range.$gte = o.since;
    if (o.until) range.$lt = o.until;
    f.upload_timestamp = range;
  }
  if (o.stale) f.optimizer_version = { $ne: optimizerVersion(optimizeSettings(ctx.config)) };
  return f;
}

export async function reprocess(ctx: Context, o: ReprocessOptions = {}): Promise<ReprocessReport> {
  const version = optimizerVersion(optimizeSettings(ctx.config));
  const filter = reprocessFilter(ctx, o);
  const total = await ctx.registry.count(filter as never);
  const report: ReprocessReport = {
    dry_run: Boolean(o.dryRun),
    interrupted: false,
    optimizer_version: version,
    selected: 0,
    ready: 0,
    failed: 0,
    skipped: 0,
    items: [],
  };
  const owner = `reprocess:${randomUUID().slice(0, 8)}`;
  const limit = pLimit(Math.max(1, o.concurrency ?? 2));
  const inFlight = new Set<Promise<void>>();
  let done = 0;
  const hot = ctx.config.s3.bucketHot;

  const one = async (rec: FileRecord): Promise<void> => {
    const item: ReprocessItem = { file_id: rec._id, user_id: rec.user_id, outcome: 'skipped' };
    try {
      const hasRaw = (await ctx.objects.head(hot, rec.s3_key)) !== null;
      const source = hasRaw ? 'raw' : o.fromGallery && rec.gallery_key ? 'gallery' : null;
      if (!source) {
        item.reason = o.fromGallery
          ? 'neither the original nor a gallery image exists'
          : 'the original upload has expired; re-encoding our own lossy WebP would degrade it (use --from-gallery to do it anyway)';
        report.skipped++;
        return;
      }
      if (o.dryRun) {
        item.outcome = 'would-reprocess';
        item.reason = `from ${source}`;
        return;
      }
      const lease = new Date(ctx.clock.now().getTime() + ctx.config.optimizer.leaseSeconds * 1000);
      const claimed = await ctx.registry.transition(rec._id, rec.status, {
        status: 'processing',
        lease_owner: owner,
        lease_until: lease,
        attempts: 1,
      });
      if (!claimed) {
        item.outcome = 'busy';
        item.reason = 'changed state meanwhile (another worker or job has it)';
        report.skipped++;
        return;
      }
      const r = await processClaimed(ctx, claimed, owner, { source });
      if (r.outcome === 'ready') {
        item.outcome = 'ready';
        report.ready++;
      } else {
        item.outcome = 'failed';
        item.reason = r.reason;
        report.failed++;
      }
    } catch (err) {
      item.outcome = 'failed';
      item.reason = (err as Error).message;
      report.failed++;
    } finally {
      report.items.push(item);
      o.onProgress?.(++done, total);
    }
  };

  for await (const rec of ctx.registry.find(filter as never, { limit: o.limit, sort: { upload_timestamp: 1 } })) {
    if (o.signal?.aborted) {
      report.interrupted = true;
      break;
    }
    report.selected++;
    const p = limit(() => one(rec)).finally(() => inFlight.delete(p));
    inFlight.add(p);
    // Keep memory flat: never queue far more than we run.
    if (inFlight.size >= (o.concurrency ?? 2) * 4) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return report;
}

/** Process-wide sharp tuning for a batch job: one libvips thread per image in flight, no cache. */
export function tuneSharp(): void {
  configureSharp({ concurrency: 1, cache: false });
}
