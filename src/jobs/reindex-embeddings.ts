/**
 * `reindex-embeddings`: give every `ready` file a vector of the configured
 * model: the ones with none (files from before embeddings existed, or missed
 * while the provider was down), and with `stale` also those whose vector came
 * from another model or dimension (after changing EMBEDDING_MODEL).
 *
 * Each file is claimed with an embedding lease through the registry (see
 * jobs/embed.ts), so the job is safe to interrupt, to re-run, to run twice at
 * once and beside the daemon: a file is embedded twice only if a lease
 * expires mid-way. Files are read in groups of the provider's batch size;
 * `concurrency` groups are in flight, and memory stays flat however many
 * files are selected.
 */
import { randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import type { Context } from '../core/context.js';
import { createEmbeddingProvider, embeddingSettings, type EmbeddingProvider } from '../core/embeddings.js';
import type { FileRecord } from '../core/files.js';
import { embedFiles, embeddingLeaseFree, needsEmbedding, type EmbedOutcome } from './embed.js';

export interface ReindexOptions {
  user?: string;
  /** Embed with this model instead of EMBEDDING_MODEL (http provider). */
  model?: string;
  /** Also re-embed vectors of another model or dimension. */
  stale?: boolean;
  limit?: number;
  /** Groups (local: images; http: requests of up to batchSize images) in flight. */
  concurrency?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** For tests and benchmarks: a provider other than the configured one. */
  provider?: EmbeddingProvider;
}

export interface ReindexItem {
  file_id: string;
  user_id: string;
  outcome: EmbedOutcome | 'would-embed';
  reason?: string;
}

export interface ReindexReport {
  dry_run: boolean;
  interrupted: boolean;
  provider: string;
  model: string;
  dim: number;
  stale: boolean;
  selected: number;
  embedded: number;
  failed: number;
  /** Taken by another run meanwhile (busy) or changed under us (lost). */
  skipped: number;
  items: ReindexItem[];
  /** True when more than MAX_ITEMS files were selected and `items` lists only the first ones. */
  items_truncated: boolean;
}

const MAX_ITEMS = 10_000;

/** The selection as a registry filter. Exists so the count, the scan and tests agree. */
export function reindexFilter(model: string, dim: number, o: Pick<ReindexOptions, 'user' | 'stale'>, now: Date): Record<string, unknown> {
  const f: Record<string, unknown> = {
    status: 'ready',
    deleted_at: { $exists: false },
    $and: [needsEmbedding(model, dim, Boolean(o.stale)), embeddingLeaseFree(now)],
  };
  if (o.user) f.user_id = o.user;
  return f;
}

/** Runs the job; throws only when it cannot go on (configuration, provider or storage down), keeping what it did. */
export async function reindexEmbeddings(ctx: Context, o: ReindexOptions = {}): Promise<ReindexReport> {
  const concurrency = Math.max(1, o.concurrency ?? 4);
  const provider = o.provider ?? createEmbeddingProvider(embeddingSettings(ctx.config, { model: o.model }), { localConcurrency: concurrency });
  const filter = reindexFilter(provider.model, provider.dim, o, ctx.clock.now());
  const counted = await ctx.registry.count(filter as never);
  const total = o.limit ? Math.min(o.limit, counted) : counted;
  const report: ReindexReport = {
    dry_run: Boolean(o.dryRun),
    interrupted: false,
    provider: provider.name,
    model: provider.model,
    dim: provider.dim,
    stale: Boolean(o.stale),
    selected: 0,
    embedded: 0,
    failed: 0,
    skipped: 0,
    items: [],
    items_truncated: false,
  };
  const record = (item: ReindexItem) => {
    if (item.outcome === 'embedded') report.embedded++;
    else if (item.outcome === 'failed') report.failed++;
    else if (item.outcome === 'busy' || item.outcome === 'lost') report.skipped++;
    if (report.items.length < MAX_ITEMS) report.items.push(item);
    else report.items_truncated = true;
  };
  const owner = `reindex:${randomUUID().slice(0, 8)}`;
  const limit = pLimit(concurrency);
  const inFlight = new Set<Promise<void>>();
  let done = 0;
  let fatal: unknown;

  const runGroup = async (group: FileRecord[]): Promise<void> => {
    if (fatal !== undefined || o.signal?.aborted) return; // queued before the stop: leave for the next run
    try {
      for (const item of await embedFiles(ctx, provider, group, { owner, stale: o.stale, signal: o.signal })) record(item);
    } catch (err) {
      fatal ??= err;
      return;
    }
    done += group.length;
    o.onProgress?.(done, total);
  };

  let group: FileRecord[] = [];
  const dispatch = async () => {
    const g = group;
    group = [];
    const p = limit(() => runGroup(g)).finally(() => inFlight.delete(p));
    inFlight.add(p);
    // Keep memory flat: never queue far more than we run.
    if (inFlight.size >= concurrency * 2) await Promise.race(inFlight);
  };

  for await (const rec of ctx.registry.find(filter as never, { limit: o.limit, sort: { created_at: 1 } })) {
    if (o.signal?.aborted) {
      report.interrupted = true;
      break;
    }
    if (fatal !== undefined) break;
    report.selected++;
    if (o.dryRun) {
      record({ file_id: rec._id, user_id: rec.user_id, outcome: 'would-embed', reason: rec.embedding_model ? `has ${rec.embedding_model}/${rec.embedding_dim}` : 'no vector' });
      o.onProgress?.(++done, total);
      continue;
    }
    group.push(rec);
    if (group.length >= provider.batchSize) await dispatch();
  }
  if (group.length && fatal === undefined && !o.signal?.aborted) await dispatch();
  await Promise.all(inFlight);
  if (o.signal?.aborted) report.interrupted = true;
  if (fatal !== undefined && !(o.signal?.aborted)) throw fatal;
  return report;
}
