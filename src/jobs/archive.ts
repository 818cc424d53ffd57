/**
 * archive-run: move gallery images that nobody opened for ARCHIVE_THRESHOLD_DAYS
 * to the archive bucket, in a cheap storage class. Per file: record the intent
 * (state `archiving` with the destination key and a lease), copy server-side,
 * verify the copy, point the record at it, and only then delete the hot copy.
 * A run killed anywhere is finished by the next one; nothing is deleted before
 * the copy that replaces it is verified. Thumbnails stay in the hot bucket
 * until purge, so the app can still show an archived photo in its grid.
 */
import { randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import type { Context } from '../core/context.js';
import { publish } from '../core/events.js';
import type { FileRecord } from '../core/files.js';
import { ArchiveLog } from '../storage/archive-log.js';
import { DAY_MS, day, finishCleanups, monthlySaving, retry } from './lifecycle.js';

export interface ArchiveOptions {
  olderThanDays?: number;
  user?: string;
  limit?: number;
  concurrency?: number;
  storageClass?: string;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface ArchiveReport {
  run_id: string;
  dry_run: boolean;
  interrupted: boolean;
  storage_class: string;
  cutoff: string;
  candidates: number;
  archived: number;
  failed: number;
  resumed: number;
  bytes: number;
  estimated_monthly_saving_usd: number;
  failures: Array<{ file_id: string; error: string }>;
}

const LEASE_MS = 10 * 60 * 1000;

/** Files due for archive: ready, not archived, untouched since the cutoff. */
function candidateFilter(cutoff: Date, user?: string): Record<string, unknown> {
  const f: Record<string, unknown> = { status: 'ready', is_archived: { $ne: true }, last_accessed_at: { $lt: cutoff } };
  if (user) f.user_id = user;
  return f;
}

export async function archiveRun(ctx: Context, o: ArchiveOptions = {}): Promise<ArchiveReport> {
  const cfg = ctx.config;
  const now = ctx.clock.now();
  const cutoff = new Date(now.getTime() - (o.olderThanDays ?? cfg.lifecycle.archiveThresholdDays) * DAY_MS);
  const storageClass = o.storageClass ?? cfg.lifecycle.archiveStorageClass;
  const report: ArchiveReport = {
    run_id: randomUUID(),
    dry_run: Boolean(o.dryRun),
    interrupted: false,
    storage_class: storageClass,
    cutoff: cutoff.toISOString(),
    candidates: 0,
    archived: 0,
    failed: 0,
    resumed: 0,
    bytes: 0,
    estimated_monthly_saving_usd: 0,
    failures: [],
  };
  const filter = candidateFilter(cutoff, o.user);

  if (o.dryRun) {
    for await (const f of ctx.registry.find(filter as never, { limit: o.limit, sort: { last_accessed_at: 1 }, projection: { gallery_bytes: 1 } })) {
      report.candidates++;
      report.bytes += f.gallery_bytes ?? 0;
    }
    report.estimated_monthly_saving_usd = monthlySaving(report.bytes, storageClass);
    return report;
  }

  const lock = await ctx.runLocks.acquire('archive-run');
  try {
    // First finish what a killed run left: deletions it owed, files it had claimed.
    await finishCleanups(ctx);
    const total = (await ctx.registry.count(filter as never)) + (await ctx.registry.count({ status: 'archiving' }));
    let done = 0;
    const limit = pLimit(Math.max(1, o.concurrency ?? 4));
    const inFlight = new Set<Promise<void>>();
    const schedule = async (rec: FileRecord, resumed: boolean) => {
      const p = limit(async () => {
        if (o.signal?.aborted) return;
        report.candidates++;
        if (resumed) report.resumed++;
        try {
          const freed = await retry(() => archiveOne(ctx, rec, lock.owner, storageClass, now));
          if (freed !== null) {
            report.archived++;
            report.bytes += freed;
          }
        } catch (err) {
          report.failed++;
          report.failures.push({ file_id: rec._id, error: (err as Error).message });
          await releaseClaim(ctx, rec._id, lock.owner).catch(() => undefined);
        }
        o.onProgress?.(++done, total);
      }).finally(() => inFlight.delete(p));
      inFlight.add(p);
      // Stream: never hold more than a few batches of records in memory.
      if (inFlight.size >= (o.concurrency ?? 4) * 8) await Promise.race(inFlight);
    };

    // Files a killed run had claimed (the run lock says that run is gone).
    for await (const rec of ctx.registry.find({ status: 'archiving', ...(o.user ? { user_id: o.user } : {}) })) {
      if (o.signal?.aborted) break;
      await schedule(rec, true);
    }
    let taken = 0;
    for await (const rec of ctx.registry.find(filter as never, { sort: { last_accessed_at: 1 } })) {
      if (o.signal?.aborted || (o.limit !== undefined && taken >= o.limit)) break;
      taken++;
      await schedule(rec, false);
    }
    await Promise.all(inFlight);
    report.interrupted = Boolean(o.signal?.aborted);
    report.estimated_monthly_saving_usd = monthlySaving(report.bytes, storageClass);
    await new ArchiveLog(ctx.mongo).append({
      timestamp: ctx.clock.now(),
      operation: 'archive',
      run_id: report.run_id,
      files_count: report.archived,
      failed_count: report.failed,
      total_bytes_freed: report.bytes,
      s3_path_prefix: `s3://${cfg.s3.bucketArchive}/archive/${day(now)}/`,
      status: report.interrupted ? 'interrupted' : report.failed ? (report.archived ? 'partial' : 'failed') : 'completed',
      dry_run: false,
    });
    return report;
  } finally {
    await lock.release();
  }
}

/**
 * Archives one file; returns the hot bytes freed, or null when the file was
 * no longer ours to archive (another run, a delete, a fresh access).
 */
async function archiveOne(ctx: Context, rec: FileRecord, owner: string, storageClass: string, now: Date): Promise<number | null> {
  const cfg = ctx.config;
  const hot = cfg.s3.bucketHot;
  const archive = cfg.s3.bucketArchive;
  let claimed: FileRecord;
  if (rec.status !== 'archiving') {
    // 1. intent: where the copy goes, who is doing it, until when.
    const key = `archive/${day(now)}/${rec.user_id}/${rec._id}.webp`;
    const got = await ctx.registry.transition(
      rec._id,
      'ready',
      { status: 'archiving', archive_s3_key: key, archive_storage_class: storageClass, lease_owner: owner, lease_until: new Date(Date.now() + LEASE_MS) },
      { where: { is_archived: { $ne: true }, last_accessed_at: rec.last_accessed_at } as never },
    );
    if (!got) return null;
    claimed = got;
  } else {
    const got = await ctx.registry.transition(rec._id, 'archiving', { lease_owner: owner, lease_until: new Date(Date.now() + LEASE_MS) });
    if (!got) return null;
    claimed = got;
  }
  const src = claimed.gallery_key!;
  const dst = claimed.archive_s3_key!;
  const srcHead = await ctx.objects.head(hot, src);
  if (srcHead) {
    // 2. copy server-side (again, when resuming: same key, same bytes).
    await ctx.objects.copy({ bucket: hot, key: src }, { bucket: archive, key: dst }, claimed.archive_storage_class ?? storageClass);
  }
  // 3. verify the copy before anything is deleted.
  const dstHead = await ctx.objects.head(archive, dst);
  if (!dstHead) throw new Error(`archive copy ${dst} is missing after the copy${srcHead ? '' : ' and the hot copy is gone too'}`);
  const expectedSize = claimed.gallery_bytes ?? srcHead?.size;
  if (expectedSize !== undefined && dstHead.size !== expectedSize) {
    throw new Error(`archive copy ${dst} has ${dstHead.size} bytes, expected ${expectedSize}`);
  }
  if (srcHead?.etag && dstHead.etag && srcHead.etag !== dstHead.etag) {
    throw new Error(`archive copy ${dst} differs from the hot copy (ETag ${dstHead.etag} != ${srcHead.etag})`);
  }
  if (claimed.gallery_sha256 && dstHead.checksumSha256 && Buffer.from(dstHead.checksumSha256, 'base64').toString('hex') !== claimed.gallery_sha256) {
    throw new Error(`archive copy ${dst} fails its SHA-256 check`);
  }
  // 4. the record points at the archive copy; the hot copy is now owed a delete.
  const at = ctx.clock.now();
  const retentionEnd = new Date((claimed.upload_timestamp ?? claimed.created_at).getTime() + cfg.lifecycle.retentionDays * DAY_MS);
  const done = await ctx.registry.transition(
    rec._id,
    'archiving',
    {
      status: 'archived',
      is_archived: true,
      archive_timestamp: at,
      ttl_expire_at: claimed.ttl_expire_at && claimed.ttl_expire_at > retentionEnd ? claimed.ttl_expire_at : retentionEnd,
      cleanup_keys: srcHead ? [{ bucket: hot, key: src }] : undefined,
    },
    { unset: ['lease_owner', 'lease_until', 'gallery_key'], where: { lease_owner: owner } as never },
  );
  if (!done) return null;
  // 5. delete the hot copy, then forget the debt.
  if (srcHead) {
    await ctx.objects.delete(hot, src);
    await ctx.registry.transition(rec._id, 'archived', {}, { unset: ['cleanup_keys'] });
  }
  await publish(ctx, { type: 'file.archived', file_id: rec._id, user_id: rec.user_id, key: dst });
  return claimed.gallery_bytes ?? srcHead?.size ?? 0;
}

/** A file that kept failing goes back to `ready`, still pointing at its hot copy. */
async function releaseClaim(ctx: Context, id: string, owner: string): Promise<void> {
  const rec = await ctx.registry.get(id);
  if (!rec || rec.status !== 'archiving' || rec.lease_owner !== owner) return;
  const hotExists = rec.gallery_key ? (await ctx.objects.head(ctx.config.s3.bucketHot, rec.gallery_key)) !== null : false;
  if (!hotExists) return; // leave it `archiving`: the next run resumes from the archive copy
  const dst = rec.archive_s3_key;
  const back = await ctx.registry.transition(id, 'archiving', { status: 'ready' }, { unset: ['lease_owner', 'lease_until', 'archive_s3_key', 'archive_storage_class'], where: { lease_owner: owner } as never });
  if (back && dst) await ctx.objects.delete(ctx.config.s3.bucketArchive, dst).catch(() => undefined);
}
