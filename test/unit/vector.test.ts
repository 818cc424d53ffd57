import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/core/errors.js';
import { TopK, cosine, dot, groupDuplicates, l2normalize, norm, validateQueryVector } from '../../src/core/vector.js';

/** Deterministic PRNG (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomVector(next: () => number, dim: number): Float32Array {
  return Float32Array.from({ length: dim }, () => next() * 2 - 1);
}

describe('dot, cosine, l2normalize', () => {
  it('compute the textbook values', () => {
    expect(dot([1, 2, 3], [4, 5, 6])).toBe(32);
    expect(cosine([1, 0], [0, 1])).toBe(0);
    expect(cosine([1, 1], [2, 2])).toBeCloseTo(1, 12);
    expect(cosine([1, 1], [-1, -1])).toBeCloseTo(-1, 12);
    expect(cosine([0, 0], [1, 2])).toBe(0);
    const u = l2normalize([3, 4]);
    expect(u).toBeInstanceOf(Float32Array);
    expect(Array.from(u)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(Array.from(l2normalize([0, 0]))).toEqual([0, 0]);
  });

  it('agree with each other on random vectors and refuse mismatched lengths', () => {
    const next = rng(1);
    for (let i = 0; i < 20; i++) {
      const a = randomVector(next, 256);
      const b = randomVector(next, 256);
      expect(dot(l2normalize(a), l2normalize(b))).toBeCloseTo(cosine(a, b), 5);
      expect(norm(l2normalize(a))).toBeCloseTo(1, 6);
    }
    expect(() => dot([1, 2], [1, 2, 3])).toThrow(RangeError);
    expect(() => cosine(new Float32Array(3), new Float32Array(4))).toThrow(/lengths differ/);
  });
});

describe('validateQueryVector', () => {
  it('returns a Float32Array for a good array or typed array', () => {
    const v = validateQueryVector([0.5, -1, 2], 3);
    expect(v).toBeInstanceOf(Float32Array);
    expect(Array.from(v)).toEqual([0.5, -1, 2]);
    expect(Array.from(validateQueryVector(new Float64Array([1, 2]), 2))).toEqual([1, 2]);
  });

  it.each([
    ['wrong length', [1, 2], /expected 3 numbers, got 2/],
    ['too long', [1, 2, 3, 4], /expected 3 numbers, got 4/],
    ['NaN', [1, Number.NaN, 3], /element 1 is NaN/],
    ['Infinity', [1, 2, Number.POSITIVE_INFINITY], /element 2 is Infinity/],
    ['a string element', [1, '2', 3], /element 1 is a string/],
    ['null element', [1, null, 3], /element 1 is null/],
    ['beyond float32', [1, 1e39, 3], /does not fit a 32-bit float/],
    ['all zeros', [0, 0, 0], /all elements are zero/],
    ['a string', '1,2,3', /expected an array of 3 numbers, got a string/],
    ['an object', { 0: 1, 1: 2, 2: 3, length: 3 }, /got object/],
    ['undefined', undefined, /got undefined/],
  ])('refuses %s', (_name, input, message) => {
    let caught: unknown;
    try {
      validateQueryVector(input, 3);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidInputError);
    expect(caught).toMatchObject({ code: 'invalid_vector', status: 400 });
    expect((caught as Error).message).toMatch(message);
  });
});

describe('TopK', () => {
  it('equals a full sort on random data, for k below, at and above n', () => {
    const next = rng(42);
    for (const n of [0, 1, 7, 100, 1000]) {
      const data = Array.from({ length: n }, (_, i) => ({ id: i, score: next() * 2 - 1 }));
      for (const k of [0, 1, 3, 10, 100, n, n + 5]) {
        const top = new TopK<number>(k);
        for (const d of data) top.push(d.score, d.id);
        const expected = [...data].sort((a, b) => b.score - a.score).slice(0, k);
        expect(top.results(), `n=${n} k=${k}`).toEqual(expected.map((d) => ({ score: d.score, item: d.id })));
        expect(top.size).toBe(Math.min(k, n));
      }
    }
  });

  it('keeps the earlier item on ties, ignores NaN, and reports the bar to beat', () => {
    const top = new TopK<string>(2);
    expect(top.threshold).toBe(-Infinity);
    expect(top.push(0.5, 'a')).toBe(true);
    expect(top.push(Number.NaN, 'nan')).toBe(false);
    expect(top.push(0.5, 'b')).toBe(true);
    expect(top.threshold).toBe(0.5);
    expect(top.push(0.5, 'c')).toBe(false);
    expect(top.push(0.9, 'd')).toBe(true);
    expect(top.results()).toEqual([
      { score: 0.9, item: 'd' },
      { score: 0.5, item: 'a' },
    ]);
    // Tie order matches a stable sort of everything pushed.
    const stable = new TopK<number>(5);
    const scores = [1, 3, 3, 2, 3, 1, 3, 3];
    scores.forEach((s, i) => stable.push(s, i));
    expect(stable.results().map((r) => r.item)).toEqual([1, 2, 4, 6, 7]);
  });

  it('refuses a k that is not a whole number >= 0', () => {
    expect(() => new TopK(-1)).toThrow(RangeError);
    expect(() => new TopK(1.5)).toThrow(RangeError);
  });
});

describe('groupDuplicates', () => {
  const v = (...xs: number[]) => l2normalize(xs);

  it('groups near-duplicates transitively, drops singletons, and orders deterministically', () => {
    const items = [
      { id: 'p3', vector: v(0, 1, 0) },
      { id: 'p1', vector: v(1, 0, 0) },
      { id: 'p2', vector: v(1, 0.1, 0) },
      { id: 'q2', vector: v(0, 1, 0.05) },
      { id: 'alone', vector: v(0, 0, 1) },
      { id: 'p0', vector: v(1, 0.3, 0) }, // close to p2, a bit further from p1
    ];
    const expected = [
      ['p0', 'p1', 'p2'],
      ['p3', 'q2'],
    ];
    expect(groupDuplicates(items, 0.95)).toEqual(expected);
    expect(groupDuplicates([...items].reverse(), 0.95)).toEqual(expected);
    // cosines: p1~p2 0.995, p2~p0 0.982, p1~p0 0.958, p3~q2 0.999. At 0.99 p0 drops out of its group.
    expect(groupDuplicates(items, 0.99)).toEqual([
      ['p1', 'p2'],
      ['p3', 'q2'],
    ]);
    expect(groupDuplicates(items, 0.9999)).toEqual([]);
    expect(groupDuplicates([], 0.75)).toEqual([]);
  });

  it('chains through intermediate items (union-find)', () => {
    // a~b and b~c pass 0.9, a~c does not: all three end up together.
    const a = v(1, 0);
    const b = v(Math.cos(0.4), Math.sin(0.4));
    const c = v(Math.cos(0.8), Math.sin(0.8));
    expect(cosine(a, c)).toBeLessThan(0.9);
    expect(groupDuplicates([{ id: 'c', vector: c }, { id: 'a', vector: a }, { id: 'b', vector: b }], 0.9)).toEqual([['a', 'b', 'c']]);
  });

  it('takes another similarity, and refuses duplicate ids', () => {
    const items = [
      { id: 'x', vector: v(1, 0) },
      { id: 'y', vector: v(-1, 0) },
    ];
    expect(groupDuplicates(items, 0.9)).toEqual([]);
    expect(groupDuplicates(items, 0.9, (p, q) => Math.abs(cosine(p, q)))).toEqual([['x', 'y']]);
    expect(() => groupDuplicates([items[0]!, items[0]!], 0.9)).toThrow(/duplicate id/);
  });
});
