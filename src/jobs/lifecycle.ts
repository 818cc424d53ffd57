/**
 * Shared pieces of the lifecycle jobs (archive, purge, rehydrate): retries
 * with backoff for transient failures, the cleanup of objects a finished
 * transition left behind, and the prices behind the savings estimate.
 */
import type { Context } from '../core/context.js';
import { UnavailableError } from '../core/errors.js';

export const DAY_MS = 24 * 3600 * 1000;

/** Retries `fn` on transient failures (a dependency unreachable for a moment), with exponential backoff. */
export async function retry<T>(fn: () => Promise<T>, attempts = 4, baseMs = 200): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof UnavailableError) || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, baseMs * 2 ** (i - 1) * (0.75 + Math.random() / 2)));
    }
  }
}

/**
 * Deletes the objects that finished moves recorded in `cleanup_keys` (the old
 * copy, deleted only after the record points at the new one), then forgets
 * them. Finishes what a killed run left.
 */
export async function finishCleanups(ctx: Context, limit = 10_000): Promise<number> {
  let n = 0;
  for await (const rec of ctx.registry.find({ cleanup_keys: { $exists: true } }, { limit })) {
    const keys = rec.cleanup_keys ?? [];
    for (const k of keys) await retry(() => ctx.objects.delete(k.bucket, k.key));
    await ctx.registry.transition(rec._id, rec.status, {}, { unset: ['cleanup_keys'] });
    n += keys.length;
  }
  return n;
}

/** US East list prices per GB-month, for the savings estimate only. */
export const STORAGE_PRICE_PER_GB_MONTH: Record<string, number> = {
  STANDARD: 0.023,
  STANDARD_IA: 0.0125,
  GLACIER_IR: 0.004,
  GLACIER: 0.0036,
  DEEP_ARCHIVE: 0.00099,
};

export function monthlySaving(bytes: number, storageClass: string): number {
  const gb = bytes / 1024 ** 3;
  const saving = gb * ((STORAGE_PRICE_PER_GB_MONTH.STANDARD ?? 0) - (STORAGE_PRICE_PER_GB_MONTH[storageClass] ?? 0));
  return Math.round(saving * 100) / 100;
}

/** yyyy-mm-dd of a date, in UTC. */
export function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}
