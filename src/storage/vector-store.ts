/**
 * Embedding vectors in MongoDB: the BSON mapping (a Binary vector, subtype 9,
 * float32: 4 bytes a dimension plus 2, about a quarter of a BSON array of
 * doubles), the streaming scan behind exact search, and Atlas `$vectorSearch`
 * where the server has it. The only module that knows how a vector is stored.
 */
import { Binary, type Collection, type Filter } from 'mongodb';
import type { FileRecord } from '../core/files.js';
import { guard, isUnsupported, mongoError, type MongoConnection } from './mongo.js';
import { FILES, VECTOR_INDEX } from './mongo-schema.js';

/** A vector as it goes into a record (`embedding_vector`). Exists so no module outside storage builds BSON. */
export function toStoredVector(v: Float32Array): unknown {
  return Binary.fromFloat32Array(v);
}

/**
 * A stored vector back as a Float32Array, or null when the field holds
 * nothing usable. Accepts a plain number array too (what a tool writing
 * Atlas-style vectors would store).
 */
export function fromStoredVector(x: unknown): Float32Array | null {
  if (x instanceof Binary) {
    if (x.sub_type !== Binary.SUBTYPE_VECTOR || x.buffer[0] !== Binary.VECTOR_TYPE.Float32) return null;
    return x.toFloat32Array();
  }
  if (Array.isArray(x) && x.every((n) => typeof n === 'number')) return Float32Array.from(x as number[]);
  return null;
}

/** One candidate from `$vectorSearch`, with the index's score turned back into a cosine. */
export interface AnnHit {
  id: string;
  cosine: number;
  embedding_model?: string;
  embedding_dim?: number;
}

interface ProbeState {
  ok: boolean;
  at: number;
}

/** Re-probe a missing index this often: one created later (Atlas builds take minutes) gets used without a restart. */
const REPROBE_MS = 5 * 60_000;
const probes = new WeakMap<MongoConnection, ProbeState>();

export class VectorStore {
  private readonly files: Collection<FileRecord>;

  constructor(private readonly conn: MongoConnection) {
    this.files = conn.db.collection<FileRecord>(FILES);
  }

  /**
   * Streams `{id, vector, doc}` of the records matching `filter`, reading only
   * `_id`, `embedding_vector` and the `fields` asked for, in batches: memory
   * stays flat however many files a user has. Records whose field is not a
   * float32 vector are skipped.
   */
  async *scan<K extends keyof FileRecord>(
    filter: Record<string, unknown>,
    fields: readonly K[] = [],
    batchSize = 1000,
  ): AsyncGenerator<{ id: string; vector: Float32Array; doc: Pick<FileRecord, K | '_id'> }> {
    await guard(this.conn.uri, () => this.conn.connect());
    const projection: Record<string, 1> = { _id: 1, embedding_vector: 1 };
    for (const f of fields) projection[f] = 1;
    const cursor = this.files.find(filter as Filter<FileRecord>, { projection, batchSize });
    try {
      for await (const doc of cursor) {
        const vector = fromStoredVector(doc.embedding_vector);
        if (vector) yield { id: doc._id, vector, doc };
      }
    } catch (err) {
      await guard(this.conn.uri, () => Promise.reject(err));
    } finally {
      await cursor.close().catch(() => undefined);
    }
  }

  /**
   * Whether `$vectorSearch` can answer for this collection: an Atlas (or
   * mongot-backed) server with the index `embedding_vector_index` queryable.
   * Probed once per connection (FerretDB answers at once from buildInfo),
   * re-probed every few minutes while missing.
   */
  async annAvailable(): Promise<boolean> {
    const cached = probes.get(this.conn);
    if (cached && (cached.ok || Date.now() - cached.at < REPROBE_MS)) return cached.ok;
    let ok = false;
    const info = await this.conn.serverInfo();
    if (info.kind !== 'ferretdb') {
      try {
        const list = (await this.files.listSearchIndexes(VECTOR_INDEX).toArray()) as Array<{ name?: string; queryable?: boolean }>;
        ok = list.some((i) => i.name === VECTOR_INDEX && i.queryable === true);
      } catch (err) {
        if (!isUnsupported(err)) throw mongoError(err, this.conn.uri);
      }
    }
    probes.set(this.conn, { ok, at: Date.now() });
    return ok;
  }

  /** Forgets a positive probe, after `$vectorSearch` failed as unsupported. */
  markAnnUnavailable(): void {
    probes.set(this.conn, { ok: false, at: Date.now() });
  }

  /**
   * Approximate nearest neighbours of one user through Atlas `$vectorSearch`
   * (the index filters on user_id). Atlas scores cosine as (1 + cos) / 2;
   * this returns the cosine. Throws the driver's error when unsupported
   * (callers test it with `isUnsupportedVectorSearch` and fall back).
   */
  async ann(query: Float32Array, userId: string, limit: number, numCandidates: number): Promise<AnnHit[]> {
    await guard(this.conn.uri, () => this.conn.connect());
    const rows = await this.files
      .aggregate<{ _id: string; score: number; embedding_model?: string; embedding_dim?: number }>([
        {
          $vectorSearch: {
            index: VECTOR_INDEX,
            path: 'embedding_vector',
            queryVector: Array.from(query),
            numCandidates,
            limit,
            filter: { user_id: userId },
          },
        },
        { $project: { _id: 1, embedding_model: 1, embedding_dim: 1, score: { $meta: 'vectorSearchScore' } } },
      ])
      .toArray();
    return rows.map((r) => ({ id: r._id, cosine: 2 * r.score - 1, embedding_model: r.embedding_model, embedding_dim: r.embedding_dim }));
  }
}

/** True when `$vectorSearch` failed because the server lacks it (not because of our request). */
export function isUnsupportedVectorSearch(err: unknown): boolean {
  return isUnsupported(err) || /vectorSearch|search index/i.test(err instanceof Error ? err.message : '');
}
