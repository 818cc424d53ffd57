/**
 * purge-run: the end of retention. Files past their `ttl_expire_at` (or, never
 * archived, past upload + RETENTION_DAYS): record the intent (`purging`),
 * delete their objects (a missing object counts as deleted), then the record,
 * then release their quota. Also deletes raw uploads older than 24 h (for S3
 * servers without lifecycle rules) and, with `orphans`, objects that no record
 * points to. `plan` computes what a run would do, for dry runs and for the
 * confirmation prompt.
 */
import { randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import type { Context } from '../core/context.js';
import { publish } from '../core/events.js';
import type { FileRecord } from '../core/files.js';
import { galleryKeys } from './optimize.js';
import { ArchiveLog } from '../storage/archive-log.js';
import { DAY_MS, finishCleanups, retry } from './lifecycle.js';

export const RAW_MAX_AGE_MS = DAY_MS;

export interface PurgeOptions {
  orphans?: boolean;
  /** Objects younger than this are never orphans (in-flight uploads). Default 24 h. */
  orphanGraceMs?: number;
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (done: number) => void;
}

export interface PurgePlan {
  expired_files: number;
  expired_bytes: number;
  raw_uploads: number;
  raw_bytes: number;
  orphans: Array<{ bucket: string; key: string; size: number }>;
  orphan_bytes: number;
}

export interface PurgeReport extends PurgePlan {
  run_id: string;
  interrupted: boolean;
  purged_files: number;
  deleted_raw: number;
  deleted_orphans: number;
  failed: number;
  failures: Array<{ what: string; error: string }>;
}

function expiredFilter(now: Date, retentionDays: number): Record<string, unknown> {
  return {
    $or: [
      // archived, or brought back with a fresh TTL that has now run out
      { status: { $in: ['archived', 'ready', 'failed'] }, ttl_expire_at: { $lt: now } },
      // a purge a killed run had started
      { status: 'purging' },
      // never archived (archive-run did not run): upload + retention
      {
        ttl_expire_at: { $exists: false },
        status: { $in: ['ready', 'failed', 'uploaded'] },
        upload_timestamp: { $lt: new Date(now.getTime() - retentionDays * DAY_MS) },
      },
    ],
  };
}

const fileBytes = (f: FileRecord) => (f.is_archived ? (f.gallery_bytes ?? 0) : (f.size_bytes ?? 0) + (f.gallery_bytes ?? 0)) + (f.thumb_bytes ?? 0);

/** What a purge would delete now; changes nothing. */
export async function planPurge(ctx: Context, o: PurgeOptions = {}): Promise<PurgePlan> {
  const now = ctx.clock.now();
  const plan: PurgePlan = { expired_files: 0, expired_bytes: 0, raw_uploads: 0, raw_bytes: 0, orphans: [], orphan_bytes: 0 };
  for await (const f of ctx.registry.find(expiredFilter(now, ctx.config.lifecycle.retentionDays) as never)) {
    plan.expired_files++;
    plan.expired_bytes += fileBytes(f);
  }
  for await (const obj of ctx.objects.list(ctx.config.s3.bucketHot, 'raw/')) {
    if ((obj.lastModified?.getTime() ?? 0) < now.getTime() - RAW_MAX_AGE_MS) {
      plan.raw_uploads++;
      plan.raw_bytes += obj.size;
    }
  }
  if (o.orphans) {
    for await (const orphan of findOrphans(ctx, now, o.orphanGraceMs ?? DAY_MS)) {
      plan.orphans.push(orphan);
      plan.orphan_bytes += orphan.size;
    }
  }
  return plan;
}

/** Objects in either bucket that no record points to, older than the grace period. */
export async function* findOrphans(ctx: Context, now: Date, graceMs: number): AsyncGenerator<{ bucket: string; key: string; size: number }> {
  const { bucketHot, bucketArchive } = ctx.config.s3;
  for (const bucket of [bucketHot, bucketArchive]) {
    for await (const obj of ctx.objects.list(bucket, '')) {
      if ((obj.lastModified?.getTime() ?? 0) > now.getTime() - graceMs) continue;
      if (!(await isReferenced(ctx, bucket, obj.key))) yield { bucket, key: obj.key, size: obj.size };
    }
  }
}

const ID_IN_KEY = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\.thumb)?\.[a-z]+$/;

/** Keys are made from file ids, so the record to ask is the one named in the key. */
async function isReferenced(ctx: Context, bucket: string, key: string): Promise<boolean> {
  const id = ID_IN_KEY.exec(key)?.[1];
  if (!id) return false;
  const rec = await ctx.registry.get(id);
  if (!rec) return false;
  const owed = (rec.cleanup_keys ?? []).some((c) => c.bucket === bucket && c.key === key);
  if (owed) return true; // a finished move will delete it
  if (bucket === ctx.config.s3.bucketArchive) return rec.archive_s3_key === key;
  const g = galleryKeys(rec);
  // raw/ is the upload itself (also garbage-collected by age); gallery keys while the record has them.
  return rec.s3_key === key || key === rec.gallery_key || key === rec.thumb_key || (['archiving', 'restoring'].includes(rec.status) && key === g.gallery);
}

export async function purgeRun(ctx: Context, o: PurgeOptions = {}): Promise<PurgeReport> {
  const now = ctx.clock.now();
  const report: PurgeReport = {
    run_id: randomUUID(),
    interrupted: false,
    expired_files: 0,
    expired_bytes: 0,
    raw_uploads: 0,
    raw_bytes: 0,
    orphans: [],
    orphan_bytes: 0,
    purged_files: 0,
    deleted_raw: 0,
    deleted_orphans: 0,
    failed: 0,
    failures: [],
  };
  const lock = await ctx.runLocks.acquire('purge-run');
  try {
    await finishCleanups(ctx);
    const limit = pLimit(Math.max(1, o.concurrency ?? 4));
    const inFlight = new Set<Promise<void>>();
    let done = 0;
    const run = async (what: string, fn: () => Promise<void>) => {
      const p = limit(async () => {
        if (o.signal?.aborted) return;
        try {
          await retry(fn);
        } catch (err) {
          report.failed++;
          report.failures.push({ what, error: (err as Error).message });
        }
        o.onProgress?.(++done);
      }).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= (o.concurrency ?? 4) * 8) await Promise.race(inFlight);
    };

    for await (const f of ctx.registry.find(expiredFilter(now, ctx.config.lifecycle.retentionDays) as never)) {
      if (o.signal?.aborted) break;
      report.expired_files++;
      report.expired_bytes += fileBytes(f);
      await run(`file ${f._id}`, async () => {
        if (await purgeOne(ctx, f, lock.owner)) report.purged_files++;
      });
    }
    const hot = ctx.config.s3.bucketHot;
    for await (const obj of ctx.objects.list(hot, 'raw/')) {
      if (o.signal?.aborted) break;
      if ((obj.lastModified?.getTime() ?? 0) >= now.getTime() - RAW_MAX_AGE_MS) continue;
      report.raw_uploads++;
      report.raw_bytes += obj.size;
      await run(`raw ${obj.key}`, async () => {
        await ctx.objects.delete(hot, obj.key);
        report.deleted_raw++;
      });
    }
    await Promise.all(inFlight);
    if (o.orphans && !o.signal?.aborted) {
      for await (const orphan of findOrphans(ctx, now, o.orphanGraceMs ?? DAY_MS)) {
        if (o.signal?.aborted) break;
        report.orphans.push(orphan);
        report.orphan_bytes += orphan.size;
        await run(`orphan ${orphan.bucket}/${orphan.key}`, async () => {
          await ctx.objects.delete(orphan.bucket, orphan.key);
          report.deleted_orphans++;
        });
      }
    }
    await Promise.all(inFlight);
    report.interrupted = Boolean(o.signal?.aborted);
    await new ArchiveLog(ctx.mongo).append({
      timestamp: ctx.clock.now(),
      operation: 'purge',
      run_id: report.run_id,
      files_count: report.purged_files,
      failed_count: report.failed,
      total_bytes_freed: report.expired_bytes + report.raw_bytes + report.orphan_bytes,
      s3_path_prefix: `s3://${ctx.config.s3.bucketArchive}/archive/`,
      status: report.interrupted ? 'interrupted' : report.failed ? (report.purged_files ? 'partial' : 'failed') : 'completed',
      dry_run: false,
    });
    return report;
  } finally {
    await lock.release();
  }
}

/** Purges one file: intent, objects, record, quota. True when this call removed the record. */
async function purgeOne(ctx: Context, f: FileRecord, owner: string): Promise<boolean> {
  const claimed =
    f.status === 'purging'
      ? await ctx.registry.transition(f._id, 'purging', { lease_owner: owner })
      : await ctx.registry.transition(f._id, f.status, { status: 'purging', lease_owner: owner });
  if (!claimed) return false;
  const { bucketHot, bucketArchive } = ctx.config.s3;
  const g = galleryKeys(f);
  if (f.archive_s3_key) await ctx.objects.delete(bucketArchive, f.archive_s3_key);
  for (const key of [f.s3_key, f.gallery_key ?? g.gallery, f.thumb_key ?? g.thumb]) await ctx.objects.delete(bucketHot, key);
  for (const c of f.cleanup_keys ?? []) await ctx.objects.delete(c.bucket, c.key);
  if (!(await ctx.registry.remove(f._id, ['purging']))) return false;
  await ctx.usage.release(f.user_id, f.size_bytes ?? 0);
  await publish(ctx, { type: 'file.purged', file_id: f._id, user_id: f.user_id, key: f.archive_s3_key ?? f.s3_key });
  return true;
}
