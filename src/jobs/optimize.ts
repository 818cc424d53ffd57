/**
 * The optimizer job: turn an `uploaded` file into its gallery WebP and
 * thumbnail. Work is claimed from MongoDB with a lease (a conditional update
 * from `uploaded`, or from `processing` whose lease ran out, to `processing`
 * with owner and deadline), so replicas never process one file at once and a
 * crashed worker's file is taken up again when its lease expires.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../core/config.js';
import type { Context } from '../core/context.js';
import { publish } from '../core/events.js';
import type { FileRecord } from '../core/files.js';
import { ImageRejectedError, optimizeImage, optimizerVersion, type OptimizeSettings } from '../media/images.js';

/** The pipeline settings the configuration asks for. */
export function optimizeSettings(cfg: Config): OptimizeSettings {
  return {
    maxWidth: 1920,
    maxHeight: 1080,
    quality: cfg.optimizer.quality,
    thumbSize: cfg.optimizer.thumbnailSize,
    effort: cfg.optimizer.effort,
    maxPixels: cfg.optimizer.maxPixels,
    timeoutSeconds: cfg.optimizer.timeoutSeconds,
  };
}

export function galleryKeys(rec: Pick<FileRecord, 'user_id' | '_id'>): { gallery: string; thumb: string } {
  const base = `gallery/${rec.user_id}/${rec._id}`;
  return { gallery: `${base}.webp`, thumb: `${base}.thumb.webp` };
}

/**
 * Claims one file for `owner`: the oldest `uploaded` one, or a `processing`
 * one whose lease expired. Returns null when there is nothing to do.
 */
export async function claimNext(ctx: Context, owner: string): Promise<FileRecord | null> {
  const now = ctx.clock.now();
  const leaseUntil = new Date(now.getTime() + ctx.config.optimizer.leaseSeconds * 1000);
  const candidates = ctx.registry.find(
    { $or: [{ status: 'uploaded' }, { status: 'processing', lease_until: { $lt: now } }] },
    { limit: 8, sort: { upload_timestamp: 1 } },
  );
  for await (const c of candidates) {
    const claimed = await ctx.registry.transition(
      c._id,
      c.status,
      { status: 'processing', lease_owner: owner, lease_until: leaseUntil, attempts: (c.attempts ?? 0) + 1 },
      // Only if nobody claimed it since we looked (same lease, same attempt count).
      { where: c.status === 'processing' ? { lease_until: c.lease_until, attempts: c.attempts } : {} },
    );
    if (claimed) return claimed;
  }
  return null;
}

export type ProcessOutcome = 'ready' | 'failed' | 'retry' | 'lost';

/**
 * Runs the pipeline for a claimed file and records the result. A bad image
 * ends `failed` with a readable reason at once; an internal error is retried
 * until OPTIMIZER_MAX_ATTEMPTS, then `failed`. Never throws for one file's problem.
 */
export async function processClaimed(
  ctx: Context,
  rec: FileRecord,
  owner: string,
  opts: { source?: 'raw' | 'gallery' } = {},
): Promise<{ outcome: ProcessOutcome; reason?: string; file?: FileRecord }> {
  const settings = optimizeSettings(ctx.config);
  const hot = ctx.config.s3.bucketHot;
  const keys = galleryKeys(rec);
  const mine = { lease_owner: owner };
  try {
    const sourceKey = opts.source === 'gallery' ? rec.gallery_key : rec.s3_key;
    const input = sourceKey ? await ctx.objects.read(hot, sourceKey, Math.max(ctx.config.upload.maxBytes, 64 * 1024 * 1024)) : null;
    if (!input) throw new ImageRejectedError('corrupt', `the ${opts.source === 'gallery' ? 'gallery image' : 'original upload'} is missing from the hot bucket`);
    const out = await optimizeImage(input, settings);
    await ctx.objects.put(hot, keys.gallery, out.gallery.data, 'image/webp', 'private, max-age=31536000, immutable');
    await ctx.objects.put(hot, keys.thumb, out.thumb.data, 'image/webp', 'private, max-age=31536000, immutable');
    const now = ctx.clock.now();
    const done = await ctx.registry.transition(
      rec._id,
      'processing',
      {
        status: 'ready',
        gallery_key: keys.gallery,
        gallery_bytes: out.gallery.bytes,
        gallery_width: out.gallery.width,
        gallery_height: out.gallery.height,
        thumb_key: keys.thumb,
        thumb_bytes: out.thumb.bytes,
        thumb_width: out.thumb.width,
        thumb_height: out.thumb.height,
        optimizer_version: optimizerVersion(settings),
        gallery_sha256: createHash('sha256').update(out.gallery.data).digest('hex'),
        processed_at: now,
        updated_at: now,
      },
      { unset: ['lease_owner', 'lease_until', 'reason'], where: mine },
    );
    if (!done) return { outcome: 'lost', reason: 'lease lost to another worker' };
    await publish(ctx, { type: 'file.ready', file_id: rec._id, user_id: rec.user_id, key: keys.gallery, thumb_key: keys.thumb });
    return { outcome: 'ready', file: done };
  } catch (err) {
    const rejected = err instanceof ImageRejectedError;
    const reason = rejected ? err.reason : `internal error: ${(err as Error).message.split('\n')[0]}`;
    const giveUp = rejected || (rec.attempts ?? 1) >= ctx.config.optimizer.maxAttempts;
    const next = await ctx.registry.transition(
      rec._id,
      'processing',
      giveUp ? { status: 'failed', reason } : { status: 'uploaded', reason },
      { unset: ['lease_owner', 'lease_until'], where: mine },
    );
    if (!next) return { outcome: 'lost', reason };
    if (giveUp) {
      ctx.logger.warn({ file_id: rec._id, reason }, 'image failed');
      await publish(ctx, { type: 'file.failed', file_id: rec._id, user_id: rec.user_id, key: rec.s3_key, reason });
      return { outcome: 'failed', reason, file: next };
    }
    ctx.logger.warn({ file_id: rec._id, reason, attempts: rec.attempts }, 'image will be retried');
    return { outcome: 'retry', reason, file: next };
  }
}
