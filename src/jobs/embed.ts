/**
 * Embedding files: claim (a lease through the registry, so two runs or a run
 * and the daemon never embed one file at once), read the thumbnail, embed,
 * store the vector with its model and dimension. Shared by
 * `reindex-embeddings` and the daemon, which embeds each file as soon as the
 * optimizer has made it ready.
 */
import type { Context } from '../core/context.js';
import {
  createEmbeddingProvider,
  EmbeddingRejectedError,
  embeddingSettings,
  type EmbeddingProvider,
} from '../core/embeddings.js';
import { ConfigError, InvalidInputError, NotFoundError, UnavailableError } from '../core/errors.js';
import type { FileRecord } from '../core/files.js';
import { ImageRejectedError, optimizeImage } from '../media/images.js';
import { toStoredVector } from '../storage/vector-store.js';
import { optimizeSettings } from './optimize.js';

export type EmbedOutcome = 'embedded' | 'failed' | 'busy' | 'lost';

export interface EmbedItem {
  file_id: string;
  user_id: string;
  outcome: EmbedOutcome;
  reason?: string;
}

const LEASE_FIELDS: Array<keyof FileRecord> = ['embedding_lease_owner', 'embedding_lease_until'];
const MAX_THUMB_BYTES = 32 * 1024 * 1024;

/**
 * The registry condition "this file needs a vector": none yet, or (stale) one
 * from another model or dimension (`$ne` also matches a missing field).
 * Exists so the selection and the claim test the same thing.
 */
export function needsEmbedding(model: string, dim: number, stale: boolean): Record<string, unknown> {
  return stale
    ? { $or: [{ embedding_model: { $ne: model } }, { embedding_dim: { $ne: dim } }] }
    : { embedding_vector: { $exists: false } };
}

/** "Nobody holds the embedding lease": never taken, or expired (its holder crashed). */
export function embeddingLeaseFree(now: Date): Record<string, unknown> {
  return { $or: [{ embedding_lease_until: { $exists: false } }, { embedding_lease_until: { $lt: now } }] };
}

/** Errors that say the run cannot go on (configuration, a dependency down, interrupted), as opposed to one bad file. */
export function isFatalEmbeddingError(err: unknown): boolean {
  return (
    err instanceof ConfigError ||
    err instanceof UnavailableError ||
    err instanceof NotFoundError ||
    (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError'))
  );
}

const providers = new WeakMap<Context, EmbeddingProvider>();

/** The configured provider of a context, built once (the http provider's concurrency limit is per process). */
export function providerFor(ctx: Context): EmbeddingProvider {
  let p = providers.get(ctx);
  if (!p) {
    p = createEmbeddingProvider(embeddingSettings(ctx.config));
    providers.set(ctx, p);
  }
  return p;
}

/**
 * Embeds a group of ready files (at most `provider.batchSize` is best) and
 * records the outcome of each. A file someone else holds is `busy`; a file
 * that changed under us is `lost`; a bad image is `failed` alone. Throws only
 * for fatal errors (see `isFatalEmbeddingError`), after releasing its leases.
 */
export async function embedFiles(
  ctx: Context,
  provider: EmbeddingProvider,
  recs: FileRecord[],
  o: { owner: string; stale?: boolean; signal?: AbortSignal },
): Promise<EmbedItem[]> {
  const now = ctx.clock.now();
  const leaseUntil = new Date(now.getTime() + ctx.config.optimizer.leaseSeconds * 1000);
  const needs = needsEmbedding(provider.model, provider.dim, Boolean(o.stale));
  const items = new Map<string, EmbedItem>(recs.map((r) => [r._id, { file_id: r._id, user_id: r.user_id, outcome: 'busy' }]));
  const set = (id: string, outcome: EmbedOutcome, reason?: string) => Object.assign(items.get(id)!, { outcome, reason });
  const mine = { embedding_lease_owner: o.owner };
  const release = (ids: string[]) =>
    Promise.all(ids.map((id) => ctx.registry.transition(id, 'ready', {}, { unset: LEASE_FIELDS, where: mine }).catch(() => null)));

  // 1. Claim: only if it still needs a vector and nobody holds it.
  const claimed = (
    await Promise.all(
      recs.map((r) =>
        ctx.registry.transition(
          r._id,
          'ready',
          { embedding_lease_owner: o.owner, embedding_lease_until: leaseUntil },
          { where: { $and: [needs, embeddingLeaseFree(now)] } as never },
        ),
      ),
    )
  ).filter((r): r is FileRecord => r !== null);
  for (const r of recs) if (!claimed.some((c) => c._id === r._id)) set(r._id, 'busy', 'embedded or claimed meanwhile by another run');
  if (!claimed.length) return [...items.values()];

  try {
    // 2. Read the thumbnails (the gallery image when a thumbnail is missing).
    const hot = ctx.config.s3.bucketHot;
    const inputs: Array<{ rec: FileRecord; bytes: Buffer }> = [];
    await Promise.all(
      claimed.map(async (rec) => {
        const key = rec.thumb_key ?? rec.gallery_key;
        const bytes = key ? await ctx.objects.read(hot, key, MAX_THUMB_BYTES) : null;
        if (bytes) inputs.push({ rec, bytes });
        else set(rec._id, 'failed', 'no thumbnail or gallery image in the hot bucket (run biostore reprocess for it)');
      }),
    );

    // 3. Embed: the whole group at once; when that fails for one bad image, each alone.
    const vectors = new Map<string, Float32Array>();
    try {
      const out = await provider.embed(inputs.map((i) => i.bytes), o.signal);
      inputs.forEach((input, k) => vectors.set(input.rec._id, out[k]!));
    } catch (err) {
      if (isFatalEmbeddingError(err)) throw err;
      if (inputs.length === 1) set(inputs[0]!.rec._id, 'failed', reasonOf(err));
      else {
        for (const input of inputs) {
          try {
            vectors.set(input.rec._id, (await provider.embed([input.bytes], o.signal))[0]!);
          } catch (e) {
            if (isFatalEmbeddingError(e)) throw e;
            set(input.rec._id, 'failed', reasonOf(e));
          }
        }
      }
    }

    // 4. Store, only while we still hold the lease.
    const at = ctx.clock.now();
    await Promise.all(
      [...vectors].map(async ([id, v]) => {
        const done = await ctx.registry.transition(
          id,
          'ready',
          { embedding_vector: toStoredVector(v), embedding_model: provider.model, embedding_dim: v.length, embedded_at: at },
          { unset: LEASE_FIELDS, where: mine },
        );
        if (done) set(id, 'embedded');
        else set(id, 'lost', 'the file changed state or its lease expired while embedding');
      }),
    );
  } catch (err) {
    await release(claimed.map((c) => c._id));
    throw err;
  }
  const failed = [...items.values()].filter((i) => i.outcome === 'failed').map((i) => i.file_id);
  if (failed.length) await release(failed);
  return [...items.values()];
}

function reasonOf(err: unknown): string {
  if (err instanceof EmbeddingRejectedError || err instanceof InvalidInputError) return err.message;
  return `internal error: ${(err as Error)?.message?.split('\n')[0] ?? String(err)}`;
}

const paused = new WeakMap<Context, number>();
const PAUSE_MS = 60_000;

/**
 * The daemon's hook after the optimizer made a file ready: embed it now, so
 * it is searchable within seconds. Never throws and never holds up the
 * optimizer for long: after a fatal error (provider down, bad configuration)
 * it pauses for a minute and leaves files to `biostore reindex-embeddings`.
 */
export async function embedAfterOptimize(ctx: Context, rec: FileRecord, owner: string): Promise<void> {
  if (Date.now() < (paused.get(ctx) ?? 0)) return;
  try {
    const [item] = await embedFiles(ctx, providerFor(ctx), [rec], { owner: `${owner}:embed` });
    if (item?.outcome === 'failed') ctx.logger.warn({ file_id: rec._id, reason: item.reason }, 'embedding failed');
  } catch (err) {
    paused.set(ctx, Date.now() + PAUSE_MS);
    ctx.logger.warn(
      { file_id: rec._id, err: (err as Error)?.message },
      'embedding skipped; new files are not embedded for 60 s (biostore reindex-embeddings catches up)',
    );
  }
}

/**
 * The vector of an image from outside the registry (`biostore search
 * --image`): made into a thumbnail exactly as the optimizer makes stored
 * ones, then embedded, so query and stored vectors are comparable.
 */
export async function embedQueryImage(ctx: Context, provider: EmbeddingProvider, image: Buffer): Promise<Float32Array> {
  let thumb: Buffer;
  try {
    thumb = (await optimizeImage(image, optimizeSettings(ctx.config))).thumb.data;
  } catch (err) {
    if (err instanceof ImageRejectedError) throw new InvalidInputError(`the query image was refused: ${err.reason}`, 'unreadable_image', 422);
    throw err;
  }
  return (await provider.embed([thumb]))[0]!;
}
