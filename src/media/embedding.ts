/**
 * The `local` embedding provider: a deterministic near-duplicate descriptor
 * computed with sharp, no model and no network.
 *
 * What it is good for: finding the *same photo* again after it went through
 * the things apps and people do to photos — re-encoding at low quality (JPEG
 * q20, WebP), resizing (half size and smaller), a crop of about 10% (centre or
 * one side), brightening by ~15%, EXIF orientation (the image is
 * auto-oriented first, so a sideways-stored phone photo and an upright copy
 * agree), and so a user who logs the same dish twice from the same shot. On
 * the fixture photos own edits score 0.80-1.00 against the original and
 * unrelated photos around 0 (the project default threshold is 0.75); large
 * featureless areas (sky, a plain table) make unrelated images score higher,
 * up to ~0.5 in our trials.
 *
 * What it is NOT: a semantic embedding. It does not know what pasta is; two
 * different photos of the same dish (another angle, another moment, another
 * plate) are not near-duplicates here and score low. A photo turned by 90
 * degrees or mirrored *in its pixels* is a different layout to a plain
 * cosine; `orientationTolerantSimilarity` compares across the 8 EXIF
 * orientations when a caller wants that (e.g. a copy whose EXIF tag was
 * dropped or added without rotating the pixels).
 *
 * How: auto-orient, flatten alpha onto white, shrink to a 32x32 sRGB thumbnail
 * with the aspect ratio ignored (fill), then four blocks, each L2-normalised,
 * weighted, concatenated, and the whole L2-normalised so cosine = dot product:
 *
 * | dims      | block                                                        | weight² |
 * |-----------|--------------------------------------------------------------|---------|
 * | 0..79     | structure: orthonormal 2-D DCT of the luma, the 80 coefficients with 1 <= u²+v² <= 89 (DC left out, so brightness offsets vanish and the normalisation removes contrast/brightness gain) | 0.45 |
 * | 80..207   | colour layout: CIELAB a*, b* means on an 8x8 grid, each channel mean-centred (a-plane then b-plane, row-major) | 0.30 |
 * | 208..239  | coarse colour layout: a*, b* on a 4x4 grid, mean-centred (robust to crops) | 0.15 |
 * | 240..255  | coarse lightness layout: L* on a 4x4 grid, mean-centred       | 0.10 |
 *
 * A block whose content is near-flat (luma std < 2/255, chroma/lightness RMS
 * deviation < 4 Lab units) is normalised by that floor instead of its own
 * norm, so noise in a featureless block is not blown up to full weight. A
 * perfectly flat image has no layout at all and gets one fixed vector.
 *
 * Because every block lives on a square grid, turning or mirroring the image
 * is an exact signed permutation of the vector (`reorientLocalEmbedding`).
 *
 * Cost: the decode dominates. sharp shrinks on load where the codec allows
 * (JPEG by DCT scaling; WebP and PNG decode in full), the maths afterwards is
 * ~0.1 ms. Nothing runs at import time; tables are built on first use.
 */
import sharp from 'sharp';
import { InvalidInputError } from '../core/errors.js';

/** Stored next to each vector so a future descriptor never gets compared with this one. */
export const LOCAL_EMBEDDING_MODEL = 'biostore-local-v1';
/** Matches the project default VECTOR_EMBEDDING_DIM. */
export const LOCAL_EMBEDDING_DIM = 256;

/** EXIF Orientation values: how stored pixels must be transformed for display. */
export type ExifOrientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

const N = 32; // side of the thumbnail the descriptor is computed from
const MAX_R2 = 89; // DCT coefficients with u²+v² <= 89: 80 of them, closed under transpose
const WEIGHTS = { structure: 0.45, colour8: 0.3, colour4: 0.15, light4: 0.1 } as const;
const LUMA_STD_FLOOR = 2; // in 0..255 luma units
const LAB_RMS_FLOOR = 4; // in CIELAB units

interface Tables {
  /** cos table, orthonormal DCT-II scaling folded in: basis[u * N + x]. */
  basis: Float64Array;
  /** sRGB 8-bit value -> linear light. */
  linear: Float64Array;
  /** The (u, v) pairs of the structure block, in vector order. */
  coefs: Array<readonly [number, number]>;
  /** Signed permutations for orientations 1..8 (index 0 unused). */
  orient: Array<{ index: Int32Array; sign: Float32Array }>;
}

let tables: Tables | undefined;

function getTables(): Tables {
  if (tables) return tables;
  const basis = new Float64Array(N * N);
  for (let u = 0; u < N; u++) {
    const scale = u === 0 ? Math.sqrt(1 / N) : Math.sqrt(2 / N);
    for (let x = 0; x < N; x++) basis[u * N + x] = scale * Math.cos((Math.PI * u * (2 * x + 1)) / (2 * N));
  }
  const linear = new Float64Array(256);
  for (let i = 0; i < 256; i++) {
    const c = i / 255;
    linear[i] = c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }
  const coefs: Array<readonly [number, number]> = [];
  for (let v = 0; v < N; v++) {
    for (let u = 0; u < N; u++) {
      const r2 = u * u + v * v;
      if (r2 >= 1 && r2 <= MAX_R2) coefs.push([u, v]);
    }
  }
  const built: Tables = { basis, linear, coefs, orient: [] };
  built.orient = buildOrientations(coefs);
  tables = built;
  return built;
}

/**
 * For EXIF orientation k, displayed(x', y') = stored(x, y) with
 * (a, b) = transpose ? (y', x') : (x', y'), x = flipX ? n-1-a : a, y = flipY ? n-1-b : b.
 */
const ORIENTATIONS: Record<ExifOrientation, { transpose: boolean; flipX: boolean; flipY: boolean }> = {
  1: { transpose: false, flipX: false, flipY: false },
  2: { transpose: false, flipX: true, flipY: false },
  3: { transpose: false, flipX: true, flipY: true },
  4: { transpose: false, flipX: false, flipY: true },
  5: { transpose: true, flipX: false, flipY: false },
  6: { transpose: true, flipX: false, flipY: true },
  7: { transpose: true, flipX: true, flipY: true },
  8: { transpose: true, flipX: true, flipY: false },
};

function buildOrientations(coefs: Array<readonly [number, number]>): Tables['orient'] {
  const coefIndex = new Map<number, number>();
  coefs.forEach(([u, v], i) => coefIndex.set(u * N + v, i));
  const out: Tables['orient'] = [{ index: new Int32Array(0), sign: new Float32Array(0) }];
  for (let k = 1 as ExifOrientation; k <= 8; k = (k + 1) as ExifOrientation) {
    const { transpose, flipX, flipY } = ORIENTATIONS[k];
    // out[i] = sign[i] * in[index[i]]
    const index = new Int32Array(LOCAL_EMBEDDING_DIM);
    const sign = new Float32Array(LOCAL_EMBEDDING_DIM).fill(1);
    // Structure block: mirroring x multiplies C(u,v) by (-1)^u (cos of a mirrored index), mirroring
    // y by (-1)^v, and a transpose swaps u and v. Checked against sharp's own EXIF handling in the tests.
    coefs.forEach(([u, v], i) => {
      const [su, sv] = transpose ? [v, u] : [u, v];
      index[i] = coefIndex.get(su * N + sv) as number;
      const fx = transpose ? flipY : flipX;
      const fy = transpose ? flipX : flipY;
      sign[i] = ((fx && u % 2 === 1) !== (fy && v % 2 === 1)) ? -1 : 1;
    });
    // Grid blocks: the displayed cell (gx', gy') shows the stored cell (gx, gy).
    const gridMap = (offset: number, g: number, planes: number) => {
      for (let p = 0; p < planes; p++) {
        for (let gy2 = 0; gy2 < g; gy2++) {
          for (let gx2 = 0; gx2 < g; gx2++) {
            const [a, b] = transpose ? [gy2, gx2] : [gx2, gy2];
            const gx = flipX ? g - 1 - a : a;
            const gy = flipY ? g - 1 - b : b;
            index[offset + p * g * g + gy2 * g + gx2] = offset + p * g * g + gy * g + gx;
          }
        }
      }
    };
    const s = coefs.length;
    gridMap(s, 8, 2);
    gridMap(s + 128, 4, 2);
    gridMap(s + 160, 4, 1);
    out[k] = { index, sign };
  }
  return out;
}

/**
 * The local descriptor of an encoded image (JPEG, PNG or WebP): a unit-length
 * Float32Array of LOCAL_EMBEDDING_DIM values, identical for identical input.
 * Exists so near-duplicate search works with no external model.
 */
export async function localEmbedding(image: Buffer): Promise<Float32Array> {
  let data: Buffer;
  try {
    const out = await sharp(image, { failOn: 'error' })
      .autoOrient()
      .flatten({ background: '#ffffff' })
      .resize(N, N, { fit: 'fill', kernel: 'linear' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (out.info.channels !== 3 || out.info.width !== N || out.info.height !== N) {
      throw new Error(`unexpected thumbnail ${out.info.width}x${out.info.height}x${out.info.channels}`);
    }
    data = out.data;
  } catch (err) {
    throw new InvalidInputError(
      `cannot compute the local embedding: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      'unreadable_image',
      422,
    );
  }
  return descriptorFromThumbnail(data);
}

/** The maths after decoding: 32x32 packed 8-bit sRGB in, descriptor out. */
function descriptorFromThumbnail(rgb: Uint8Array): Float32Array {
  const t = getTables();
  const px = N * N;
  const luma = new Float64Array(px);
  const L = new Float64Array(px);
  const A = new Float64Array(px);
  const B = new Float64Array(px);
  for (let i = 0; i < px; i++) {
    const r = rgb[3 * i] as number;
    const g = rgb[3 * i + 1] as number;
    const b = rgb[3 * i + 2] as number;
    luma[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    const rl = t.linear[r] as number;
    const gl = t.linear[g] as number;
    const bl = t.linear[b] as number;
    const fx = labF((0.4124 * rl + 0.3576 * gl + 0.1805 * bl) / 0.95047);
    const fy = labF(0.2126 * rl + 0.7152 * gl + 0.0722 * bl);
    const fz = labF((0.0193 * rl + 0.1192 * gl + 0.9505 * bl) / 1.08883);
    L[i] = 116 * fy - 16;
    A[i] = 500 * (fx - fy);
    B[i] = 200 * (fy - fz);
  }

  // Separable DCT: rows first for the horizontal frequencies we need, then columns.
  let maxU = 0;
  for (const [u] of t.coefs) maxU = Math.max(maxU, u);
  const rows = new Float64Array(N * (maxU + 1));
  for (let y = 0; y < N; y++) {
    for (let u = 0; u <= maxU; u++) {
      let s = 0;
      for (let x = 0; x < N; x++) s += (luma[y * N + x] as number) * (t.basis[u * N + x] as number);
      rows[y * (maxU + 1) + u] = s;
    }
  }
  const structure = new Float64Array(t.coefs.length);
  t.coefs.forEach(([u, v], i) => {
    let s = 0;
    for (let y = 0; y < N; y++) s += (rows[y * (maxU + 1) + u] as number) * (t.basis[v * N + y] as number);
    structure[i] = s;
  });

  const colour8 = concat(centred(gridMeans(A, 8)), centred(gridMeans(B, 8)));
  const colour4 = concat(centred(gridMeans(A, 4)), centred(gridMeans(B, 4)));
  const light4 = centred(gridMeans(L, 4));

  const out = new Float32Array(LOCAL_EMBEDDING_DIM);
  let o = 0;
  const put = (block: Float64Array, floor: number, weight: number) => {
    let ss = 0;
    for (const x of block) ss += x * x;
    const scale = Math.sqrt(weight) / Math.max(Math.sqrt(ss), floor);
    for (const x of block) out[o++] = x * scale;
  };
  // With an orthonormal DCT the block norm is at most N * (luma std).
  put(structure, N * LUMA_STD_FLOOR, WEIGHTS.structure);
  put(colour8, LAB_RMS_FLOOR * Math.sqrt(colour8.length), WEIGHTS.colour8);
  put(colour4, LAB_RMS_FLOOR * Math.sqrt(colour4.length), WEIGHTS.colour4);
  put(light4, LAB_RMS_FLOOR * Math.sqrt(light4.length), WEIGHTS.light4);

  let norm = 0;
  for (const x of out) norm += x * x;
  norm = Math.sqrt(norm);
  if (!(norm > 1e-12)) return out.fill(1 / Math.sqrt(LOCAL_EMBEDDING_DIM)); // a single flat colour
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / norm;
  return out;
}

function labF(t: number): number {
  return t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116;
}

function gridMeans(plane: Float64Array, g: number): Float64Array {
  const cell = N / g;
  const out = new Float64Array(g * g);
  for (let y = 0; y < N; y++) {
    const gy = Math.floor(y / cell);
    for (let x = 0; x < N; x++) {
      const idx = gy * g + Math.floor(x / cell);
      out[idx] = (out[idx] as number) + (plane[y * N + x] as number);
    }
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / (cell * cell);
  return out;
}

function centred(v: Float64Array): Float64Array {
  let mean = 0;
  for (const x of v) mean += x;
  mean /= v.length;
  return v.map((x) => x - mean);
}

function concat(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * The descriptor the same picture would have if displayed with EXIF
 * orientation `orientation` (6 = turned 90° clockwise, 2 = mirrored, ...).
 * Exact, no image needed: every block is on a square grid, so turning or
 * mirroring is a signed permutation. Exists for orientation-tolerant search:
 * query with all 8 variants when a copy may have lost or gained a rotation.
 */
export function reorientLocalEmbedding(v: Float32Array, orientation: ExifOrientation): Float32Array {
  if (v.length !== LOCAL_EMBEDDING_DIM) {
    throw new RangeError(`expected a ${LOCAL_EMBEDDING_DIM}-d local embedding, got ${v.length}`);
  }
  const map = getTables().orient[orientation];
  if (!map) throw new RangeError(`EXIF orientation must be 1-8, got ${String(orientation)}`);
  const out = new Float32Array(LOCAL_EMBEDDING_DIM);
  for (let i = 0; i < out.length; i++) out[i] = (map.sign[i] as number) * (v[map.index[i] as number] as number);
  return out;
}

/**
 * Highest cosine between `b` and `a` shown in any of the 8 EXIF orientations.
 * Exists for copies that were turned or mirrored in their pixels (e.g. an
 * EXIF tag dropped without rotating): a plain cosine treats those as
 * different layouts. Costs 8 dot products.
 */
export function orientationTolerantSimilarity(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`vector lengths differ: ${a.length} vs ${b.length}`);
  let best = -Infinity;
  for (let k = 1; k <= 8; k++) {
    const r = reorientLocalEmbedding(a, k as ExifOrientation);
    let s = 0;
    for (let i = 0; i < r.length; i++) s += (r[i] as number) * (b[i] as number);
    best = Math.max(best, s);
  }
  return best;
}
