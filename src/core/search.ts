/**
 * Similarity search over one user's files: the one core behind
 * `POST /api/v1/files/search/vector` and `biostore search`.
 *
 * Where the server has Atlas `$vectorSearch` and the index is queryable, the
 * index answers (approximate, filtered on user_id). Everywhere else (FerretDB,
 * self-managed MongoDB) it is an exact scan: the user's vectors stream from a
 * cursor that reads only `_id` and `embedding_vector`, each is scored with a
 * dot product (every stored vector is unit length) and offered to a top-k
 * heap, so memory stays flat however many files the user has. Only vectors of
 * the configured model and dimension are compared; others are invisible
 * until `reindex-embeddings --stale` replaces them.
 *
 * Scoring is plain cosine by default. `orientationTolerant` (local model only)
 * also matches copies turned or mirrored in their pixels, at 8 dot products
 * per file; such copies are rare because the optimizer auto-orients every
 * upload, so it is opt-in.
 */
import type { Context } from './context.js';
import { embeddingSettings, LOCAL_DIM, LOCAL_MODEL } from './embeddings.js';
import { InvalidInputError } from './errors.js';
import type { FileRecord, FileState } from './files.js';
import { getOwnedFile } from './uploads.js';
import { dot, groupDuplicates, l2normalize, TopK, validateQueryVector } from './vector.js';
import { fromStoredVector, isUnsupportedVectorSearch, VectorStore } from '../storage/vector-store.js';

/** A sane ceiling: a results page, not an export. */
export const MAX_TOP_K = 100;
export const DEFAULT_TOP_K = 10;

/** States whose files a search may return (archived ones too: the client may ask to rehydrate them). */
export const SEARCHABLE_STATES: FileState[] = ['ready', 'archiving', 'archived', 'restoring'];

export interface SearchRequest {
  userId: string;
  /** A query vector from outside (validated here), or... */
  vector?: unknown;
  /** ...one of the user's files: "more like this", the file itself excluded. */
  fileId?: string;
  topK?: number;
  /** Default VECTOR_SIMILARITY_THRESHOLD. */
  minSimilarity?: number;
  orientationTolerant?: boolean;
  /** Presign thumbnail URLs (default true). */
  urls?: boolean;
}

export interface SearchHit {
  file_id: string;
  score: number;
  status: FileState;
  width: number | null;
  height: number | null;
  upload_timestamp: string | null;
  is_archived: boolean;
  thumbnail_url: string | null;
  thumbnail_expires_at: string | null;
}

export interface SearchResult {
  user_id: string;
  model: string;
  dim: number;
  /** `vector_index`: Atlas $vectorSearch; `exact`: the in-process scan. */
  method: 'vector_index' | 'exact';
  top_k: number;
  min_similarity: number;
  orientation_tolerant: boolean;
  query: { file_id: string } | { vector: number };
  /** Vectors scored (exact method only). */
  scanned: number | null;
  took_ms: number;
  results: SearchHit[];
}

/**
 * What the exact scan reads besides `_id` and the vector: enough to answer
 * without a second query (on FerretDB an `_id: {$in}` lookup is a full
 * collection scan), and little next to the 1 KB vector.
 */
export const SEARCH_FIELDS = ['status', 'thumb_key', 'gallery_width', 'gallery_height', 'width', 'height', 'upload_timestamp', 'is_archived', 'deleted_at'] as const;
type HitDoc = Pick<FileRecord, (typeof SEARCH_FIELDS)[number] | '_id'>;

/** Files of one user the search can compare: the right model and dimension, not deleted, in a searchable state. */
export function searchableFilter(userId: string, model: string, dim: number): Record<string, unknown> {
  return {
    user_id: userId,
    embedding_model: model,
    embedding_dim: dim,
    status: { $in: SEARCHABLE_STATES },
    deleted_at: { $exists: false },
  };
}

function checkTopK(v: number | undefined): number {
  if (v === undefined) return DEFAULT_TOP_K;
  if (!Number.isInteger(v) || v < 1 || v > MAX_TOP_K) {
    throw new InvalidInputError(`top_k must be a whole number from 1 to ${MAX_TOP_K}, got ${String(v)}`, 'invalid_top_k', 400);
  }
  return v;
}

function checkMinSimilarity(v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < -1 || v > 1) {
    throw new InvalidInputError(`min_similarity must be a number from -1 to 1, got ${String(v)}`, 'invalid_min_similarity', 400);
  }
  return v;
}

/** A scoring function for one query: plain cosine, or the best of the 8 EXIF orientations of the query. */
async function scorer(query: Float32Array, tolerant: boolean, model: string): Promise<(v: Float32Array) => number> {
  if (!tolerant) return (v) => dot(query, v);
  if (model !== LOCAL_MODEL || query.length !== LOCAL_DIM) {
    throw new InvalidInputError(`orientation-tolerant search needs the ${LOCAL_MODEL} model; this deployment uses ${model}`, 'unsupported', 400);
  }
  const { reorientLocalEmbedding } = await import('../media/embedding.js');
  const variants = ([1, 2, 3, 4, 5, 6, 7, 8] as const).map((k) => reorientLocalEmbedding(query, k));
  return (v) => {
    let best = -Infinity;
    for (const q of variants) best = Math.max(best, dot(q, v));
    return best;
  };
}

/**
 * Finds the user's files most similar to a vector or to one of their files.
 * Exists as the single implementation behind the route and the command, so
 * both validate, scope to the owner and score the same way. Throws
 * InvalidInputError (HTTP 400) for bad input and NotFoundError when the file
 * is not the user's.
 */
export async function searchSimilar(ctx: Context, req: SearchRequest): Promise<SearchResult> {
  const t0 = performance.now();
  const { model, dim } = embeddingSettings(ctx.config);
  const topK = checkTopK(req.topK);
  const minSimilarity = checkMinSimilarity(req.minSimilarity, ctx.config.vector.similarityThreshold);
  const tolerant = Boolean(req.orientationTolerant);
  const hasVector = req.vector !== undefined && req.vector !== null;
  if (hasVector === (req.fileId !== undefined)) {
    throw new InvalidInputError('give either query_embedding or file_id (exactly one of them)', 'invalid_query', 400);
  }

  let query: Float32Array;
  let exclude: string | undefined;
  if (hasVector) {
    query = l2normalize(validateQueryVector(req.vector, dim));
  } else {
    const rec = await getOwnedFile(ctx, req.fileId!, req.userId);
    const v = rec.embedding_model === model && rec.embedding_dim === dim ? fromStoredVector(rec.embedding_vector) : null;
    if (!v || v.length !== dim) {
      throw new InvalidInputError(
        `file ${rec._id} has no ${model} embedding yet (status ${rec.status}); run biostore reindex-embeddings`,
        'not_embedded',
        409,
      );
    }
    query = l2normalize(v);
    exclude = rec._id;
  }

  const store = new VectorStore(ctx.mongo);
  const score = await scorer(query, tolerant, model);
  let method: SearchResult['method'] = 'exact';
  let scanned: number | null = null;
  let ranked: Array<{ score: number; item: HitDoc }> | null = null;

  if (!tolerant && (await store.annAvailable())) {
    try {
      const want = topK + (exclude ? 1 : 0);
      const hits = await store.ann(query, req.userId, Math.min(want * 4, 1000), Math.min(10_000, Math.max(200, want * 20)));
      const wanted = hits
        .filter((h) => h.id !== exclude && h.embedding_model === model && h.embedding_dim === dim && h.cosine >= minSimilarity)
        .slice(0, topK);
      const recs = await Promise.all(wanted.map((h) => ctx.registry.get(h.id)));
      ranked = wanted.flatMap((h, i) => {
        const r = recs[i];
        return r && r.user_id === req.userId ? [{ score: h.cosine, item: r }] : [];
      });
      method = 'vector_index';
    } catch (err) {
      if (!isUnsupportedVectorSearch(err)) throw err;
      store.markAnnUnavailable();
      ctx.logger.warn({ err: (err as Error).message }, '$vectorSearch unavailable; using the exact scan');
    }
  }
  if (!ranked) {
    const top = new TopK<HitDoc>(topK);
    scanned = 0;
    for await (const { id, vector, doc } of store.scan(searchableFilter(req.userId, model, dim), SEARCH_FIELDS)) {
      if (vector.length !== dim || id === exclude) continue;
      scanned++;
      const s = score(vector);
      if (s >= minSimilarity) top.push(s, doc);
    }
    ranked = top.results();
  }

  const results = toHits(ctx, ranked, req.urls !== false);
  return {
    user_id: req.userId,
    model,
    dim,
    method,
    top_k: topK,
    min_similarity: minSimilarity,
    orientation_tolerant: tolerant,
    query: exclude ? { file_id: exclude } : { vector: dim },
    scanned,
    took_ms: Math.round((performance.now() - t0) * 10) / 10,
    results,
  };
}

/** The winners as the API shows them, in rank order, with thumbnail URLs. */
function toHits(ctx: Context, ranked: Array<{ score: number; item: HitDoc }>, urls: boolean): SearchHit[] {
  return ranked
    .filter(({ item: r }) => !r.deleted_at && SEARCHABLE_STATES.includes(r.status))
    .map(({ score, item: r }) => {
      const link = urls ? thumbnailLink(ctx, r) : null;
      return {
        file_id: r._id,
        score: Math.round(score * 1e6) / 1e6,
        status: r.status,
        width: r.gallery_width ?? r.width ?? null,
        height: r.gallery_height ?? r.height ?? null,
        upload_timestamp: r.upload_timestamp?.toISOString() ?? null,
        is_archived: r.is_archived ?? false,
        thumbnail_url: link?.url ?? null,
        thumbnail_expires_at: link?.expires_at ?? null,
      };
    });
}

/**
 * A thumbnail link for a result, or null when there is no hot thumbnail
 * (archived) or no way to sign (no static credentials, no CDN). Unlike the
 * download-url route it does not count as an access: being shown among
 * search results must not keep a file from being archived.
 */
function thumbnailLink(ctx: Context, r: Pick<FileRecord, 'thumb_key' | 'is_archived'>): { url: string; expires_at: string | null } | null {
  if (!r.thumb_key || r.is_archived) return null;
  if (ctx.config.cdnDomain) {
    const host = ctx.config.cdnDomain.replace(/^https?:\/\//, '').replace(/\/$/, '');
    return { url: `https://${host}/${r.thumb_key}`, expires_at: null };
  }
  if (!ctx.config.s3.accessKeyId || !ctx.config.s3.secretAccessKey) return null;
  const signed = ctx.presigner.presignGet({ bucket: ctx.config.s3.bucketHot, key: r.thumb_key, expiresInSeconds: ctx.config.upload.downloadTtlSeconds });
  return { url: signed.url, expires_at: signed.expiresAt.toISOString() };
}

export interface DuplicatesResult {
  user_id: string;
  model: string;
  min_similarity: number;
  orientation_tolerant: boolean;
  files_compared: number;
  groups: Array<{ size: number; file_ids: string[] }>;
}

/**
 * Groups of near-duplicates among one user's files (the same shot saved
 * twice, re-encoded, cropped...). Compares all pairs: O(n²) time and O(n)
 * memory for the user's vectors (1 KB each), fine for a library up to the
 * default quota of 10,000 files; not meant for a whole collection.
 */
export async function findDuplicates(
  ctx: Context,
  req: { userId: string; minSimilarity?: number; orientationTolerant?: boolean },
): Promise<DuplicatesResult> {
  const { model, dim } = embeddingSettings(ctx.config);
  const minSimilarity = checkMinSimilarity(req.minSimilarity, ctx.config.vector.similarityThreshold);
  const tolerant = Boolean(req.orientationTolerant);
  let similarity: ((a: Float32Array, b: Float32Array) => number) | undefined;
  if (tolerant) {
    if (model !== LOCAL_MODEL) throw new InvalidInputError(`orientation-tolerant search needs the ${LOCAL_MODEL} model; this deployment uses ${model}`, 'unsupported', 400);
    similarity = (await import('../media/embedding.js')).orientationTolerantSimilarity;
  }
  const items: Array<{ id: string; vector: Float32Array }> = [];
  for await (const x of new VectorStore(ctx.mongo).scan(searchableFilter(req.userId, model, dim))) if (x.vector.length === dim) items.push(x);
  const groups = groupDuplicates(items, minSimilarity, similarity ?? dot);
  return {
    user_id: req.userId,
    model,
    min_similarity: minSimilarity,
    orientation_tolerant: tolerant,
    files_compared: items.length,
    groups: groups.map((g) => ({ size: g.length, file_ids: g })),
  };
}
