/**
 * Pure vector maths for exact similarity search, used where the database has
 * no `$vectorSearch` (FerretDB, self-managed MongoDB) and for grouping
 * near-duplicates. No SDKs, no I/O.
 */
import { InvalidInputError } from './errors.js';

/** Anything indexable by number with a length: Float32Array, number[], ... */
export type VectorLike = ArrayLike<number>;

function sameLength(a: VectorLike, b: VectorLike): void {
  if (a.length !== b.length) throw new RangeError(`vector lengths differ: ${a.length} vs ${b.length}`);
}

/**
 * Dot product. For unit vectors (as every embedding here is) this is the
 * cosine. It is the inner loop of exact search, so it keeps four running sums
 * (about 1.4x faster than one in V8).
 */
export function dot(a: VectorLike, b: VectorLike): number {
  sameLength(a, b);
  const n = a.length;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += (a[i] as number) * (b[i] as number);
    s1 += (a[i + 1] as number) * (b[i + 1] as number);
    s2 += (a[i + 2] as number) * (b[i + 2] as number);
    s3 += (a[i + 3] as number) * (b[i + 3] as number);
  }
  for (; i < n; i++) s0 += (a[i] as number) * (b[i] as number);
  return s0 + s1 + (s2 + s3);
}

/** Euclidean length. */
export function norm(v: VectorLike): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] as number) * (v[i] as number);
  return Math.sqrt(s);
}

/**
 * Cosine similarity in [-1, 1]; 0 when either vector is all zeros (it points
 * nowhere, so it is similar to nothing). Use `dot` on vectors known to be unit.
 */
export function cosine(a: VectorLike, b: VectorLike): number {
  sameLength(a, b);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  if (aa === 0 || bb === 0) return 0;
  return Math.max(-1, Math.min(1, ab / Math.sqrt(aa * bb)));
}

/** A unit-length copy, so that later comparisons are a plain `dot`. An all-zero vector stays all zeros. */
export function l2normalize(v: VectorLike): Float32Array {
  const out = Float32Array.from(v);
  const n = norm(out);
  if (n === 0) return out;
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / n;
  return out;
}

/**
 * Checks a query vector from outside (HTTP body, CLI flag) before it reaches
 * a search: an array or typed array of exactly `dim` finite numbers that fit
 * a float32 and are not all zero. Returns it as a Float32Array; throws
 * `InvalidInputError` (code `invalid_vector`, HTTP 400) saying what is wrong.
 */
export function validateQueryVector(v: unknown, dim: number): Float32Array {
  const fail = (why: string): never => {
    throw new InvalidInputError(`invalid query vector: ${why}`, 'invalid_vector', 400);
  };
  const isTyped = ArrayBuffer.isView(v) && !(v instanceof DataView);
  if (!Array.isArray(v) && !isTyped) fail(`expected an array of ${dim} numbers, got ${describe(v)}`);
  const arr = v as ArrayLike<unknown>;
  if (arr.length !== dim) fail(`expected ${dim} numbers, got ${arr.length}`);
  const out = new Float32Array(dim);
  let nonZero = false;
  for (let i = 0; i < dim; i++) {
    const x = arr[i];
    if (typeof x !== 'number') fail(`element ${i} is ${describe(x)}, not a number`);
    const n = x as number;
    if (!Number.isFinite(n)) fail(`element ${i} is ${String(n)}`);
    const f = Math.fround(n);
    if (!Number.isFinite(f)) fail(`element ${i} (${n}) does not fit a 32-bit float`);
    out[i] = f;
    if (f !== 0) nonZero = true;
  }
  if (!nonZero) fail('all elements are zero, so it has no direction');
  return out;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `a string (${JSON.stringify(x.length > 20 ? `${x.slice(0, 20)}...` : x)})`;
  return typeof x;
}

/**
 * Keeps the k highest-scoring items of a stream in a binary min-heap:
 * O(n log k) time and O(k) memory, so a scan over a whole collection never
 * holds more than k candidates. Ties keep the item pushed first; NaN scores
 * are ignored.
 */
export class TopK<T> {
  readonly k: number;
  private readonly scores: number[] = [];
  private readonly seqs: number[] = [];
  private readonly items: T[] = [];
  private seq = 0;

  constructor(k: number) {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a whole number >= 0, got ${k}`);
    this.k = k;
  }

  /** How many items are held (at most k). */
  get size(): number {
    return this.scores.length;
  }

  /**
   * The score an item must beat to get in: -Infinity until k items are held.
   * Lets a caller skip expensive work for candidates that cannot make it.
   */
  get threshold(): number {
    return this.scores.length < this.k ? -Infinity : (this.scores[0] as number);
  }

  /** Offers one item; returns whether it is (for now) among the top k. */
  push(score: number, item: T): boolean {
    if (this.k === 0 || Number.isNaN(score)) return false;
    const seq = this.seq++;
    if (this.scores.length < this.k) {
      this.scores.push(score);
      this.seqs.push(seq);
      this.items.push(item);
      this.siftUp(this.scores.length - 1);
      return true;
    }
    // The root is the weakest held item; a newcomer must be strictly better (ties keep the earlier one).
    if (!(score > (this.scores[0] as number))) return false;
    this.scores[0] = score;
    this.seqs[0] = seq;
    this.items[0] = item;
    this.siftDown(0);
    return true;
  }

  /** The held items, best first (ties: pushed first comes first). Does not empty the heap. */
  results(): Array<{ score: number; item: T }> {
    const order = this.scores.map((_, i) => i);
    order.sort((i, j) => (this.scores[j] as number) - (this.scores[i] as number) || (this.seqs[i] as number) - (this.seqs[j] as number));
    return order.map((i) => ({ score: this.scores[i] as number, item: this.items[i] as T }));
  }

  /** True when slot i is weaker than slot j: lower score, or equal score and pushed later. */
  private weaker(i: number, j: number): boolean {
    const si = this.scores[i] as number;
    const sj = this.scores[j] as number;
    return si < sj || (si === sj && (this.seqs[i] as number) > (this.seqs[j] as number));
  }

  private swap(i: number, j: number): void {
    [this.scores[i], this.scores[j]] = [this.scores[j] as number, this.scores[i] as number];
    [this.seqs[i], this.seqs[j]] = [this.seqs[j] as number, this.seqs[i] as number];
    [this.items[i], this.items[j]] = [this.items[j] as T, this.items[i] as T];
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.weaker(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const n = this.scores.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.weaker(l, m)) m = l;
      if (r < n && this.weaker(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}

/**
 * Groups of near-duplicates: items joined whenever their similarity is
 * >= minSimilarity, transitively (union-find), so A~B and B~C put A, B and C
 * in one group even if A and C are further apart. Only groups of two or more
 * are returned; ids inside a group are sorted, and groups are sorted by their
 * first id, so the answer does not depend on input order. All pairs are
 * compared: O(n² · dim), meant for one user's library, not a whole collection.
 * `similarity` defaults to `cosine`; pass e.g. an orientation-tolerant one.
 */
export function groupDuplicates(
  items: ReadonlyArray<{ id: string; vector: Float32Array }>,
  minSimilarity: number,
  similarity: (a: Float32Array, b: Float32Array) => number = cosine,
): string[][] {
  if (!Number.isFinite(minSimilarity)) throw new RangeError(`minSimilarity must be a finite number, got ${minSimilarity}`);
  const seen = new Set<string>();
  for (const { id } of items) {
    if (seen.has(id)) throw new RangeError(`duplicate id ${JSON.stringify(id)}`);
    seen.add(id);
  }
  const n = items.length;
  const parent = Array.from({ length: n }, (_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      const p = parent[i] as number;
      parent[i] = parent[p] as number; // path halving
      i = p;
    }
    return i;
  };
  for (let i = 0; i < n; i++) {
    const a = (items[i] as { vector: Float32Array }).vector;
    for (let j = i + 1; j < n; j++) {
      if (similarity(a, (items[j] as { vector: Float32Array }).vector) >= minSimilarity) {
        const ri = find(i);
        const rj = find(j);
        if (ri !== rj) parent[Math.max(ri, rj)] = Math.min(ri, rj);
      }
    }
  }
  const groups = new Map<number, string[]>();
  for (let i = 0; i < n; i++) {
    const root = find(i);
    const g = groups.get(root);
    const id = (items[i] as { id: string }).id;
    if (g) g.push(id);
    else groups.set(root, [id]);
  }
  const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...groups.values()]
    .filter((g) => g.length >= 2)
    .map((g) => g.sort(byCodeUnit))
    .sort((a, b) => byCodeUnit(a[0] as string, b[0] as string));
}
