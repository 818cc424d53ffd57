/**
 * The local near-duplicate descriptor against real photos: every edit of a
 * photo must find that photo before any other photo, above the default
 * threshold, and other photos must stay below it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/core/errors.js';
import { cosine, dot, norm } from '../../src/core/vector.js';
import {
  LOCAL_EMBEDDING_DIM,
  LOCAL_EMBEDDING_MODEL,
  localEmbedding,
  orientationTolerantSimilarity,
  reorientLocalEmbedding,
  type ExifOrientation,
} from '../../src/media/embedding.js';
import { FIXTURES } from '../helpers/stack.js';

const THRESHOLD = 0.75; // VECTOR_SIMILARITY_THRESHOLD default

interface Copy {
  photo: string;
  edit: string;
  vector: Float32Array;
  /** Shown turned by 90° relative to the original: only an orientation-tolerant score can match it. */
  turned: boolean;
}

/** The edits a photo goes through in the wild, made from the auto-oriented original. */
async function edits(original: Buffer): Promise<Record<string, Buffer>> {
  const base = await sharp(original).autoOrient().png().toBuffer();
  const { width: w, height: h } = await sharp(base).metadata();
  const cut = (fx: number, fy: number, fw: number, fh: number) =>
    sharp(base).extract({ left: Math.round(w * fx), top: Math.round(h * fy), width: Math.round(w * fw), height: Math.round(h * fh) });
  return {
    'jpeg-q20': await sharp(base).jpeg({ quality: 20 }).toBuffer(),
    'webp-q50': await sharp(base).webp({ quality: 50 }).toBuffer(),
    half: await sharp(base).resize(Math.round(w / 2), Math.round(h / 2)).png().toBuffer(),
    'crop-centre-90%': await cut(0.05, 0.05, 0.9, 0.9).png().toBuffer(),
    'crop-left-10%': await cut(0.1, 0, 0.9, 1).png().toBuffer(),
    'crop-bottom-10%': await cut(0, 0, 1, 0.9).png().toBuffer(),
    'brighten-15%': await sharp(base).modulate({ brightness: 1.15 }).png().toBuffer(),
    // Stored sideways with Orientation=6, as a phone camera writes it: displays upright.
    'exif-orientation-6': await sharp(base).rotate(270).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toBuffer(),
    'crop+brighten+half+q30': await cut(0.05, 0.05, 0.9, 0.9).modulate({ brightness: 1.15 }).resize(Math.round(w * 0.45)).jpeg({ quality: 30 }).toBuffer(),
  };
}

const PHOTOS = {
  coffee: { file: 'coffee.png', turned: 'coffee-phone-4032x3024.jpg' },
  chelsea: { file: 'chelsea.png', turned: 'chelsea-exif-orient6.jpg' },
  rocket: { file: 'rocket.jpg', turned: undefined },
} as const;

const originals = new Map<string, Float32Array>();
const copies: Copy[] = [];

beforeAll(async () => {
  for (const [photo, { file, turned }] of Object.entries(PHOTOS)) {
    const bytes = await readFile(join(FIXTURES, file));
    originals.set(photo, await localEmbedding(bytes));
    for (const [edit, buf] of Object.entries(await edits(bytes))) {
      copies.push({ photo, edit, vector: await localEmbedding(buf), turned: false });
    }
    if (turned) {
      // The fixture is the original's pixels tagged Orientation=6: it displays turned 90° clockwise.
      copies.push({ photo, edit: turned, vector: await localEmbedding(await readFile(join(FIXTURES, turned))), turned: true });
    }
  }
  // The other photos' originals are candidates too.
  for (const [photo, v] of originals) copies.push({ photo, edit: 'original', vector: v, turned: false });
}, 60_000);

type Score = (a: Float32Array, b: Float32Array) => number;

/** For each photo: its own copies' scores and the other photos' copies' scores, against its original. */
function scoreAll(score: Score, include: (c: Copy) => boolean) {
  let minSame = { score: Infinity, what: '' };
  let maxDiff = { score: -Infinity, what: '' };
  for (const [photo, query] of originals) {
    const ranked = copies
      .filter(include)
      .filter((c) => !(c.photo === photo && c.edit === 'original'))
      .map((c) => ({ c, s: score(query, c.vector) }))
      .sort((a, b) => b.s - a.s);
    const own = ranked.filter((r) => r.c.photo === photo);
    const other = ranked.filter((r) => r.c.photo !== photo);
    // recall@k = 100%: the first own.length results are exactly this photo's copies.
    expect(ranked.slice(0, own.length).map((r) => `${r.c.photo}/${r.c.edit}`)).toEqual(own.map((r) => `${r.c.photo}/${r.c.edit}`));
    for (const r of own) {
      expect(r.s, `${photo} vs own ${r.c.edit}`).toBeGreaterThanOrEqual(THRESHOLD);
      if (r.s < minSame.score) minSame = { score: r.s, what: `${photo}/${r.c.edit}` };
    }
    for (const r of other) {
      expect(r.s, `${photo} vs ${r.c.photo}/${r.c.edit}`).toBeLessThan(THRESHOLD);
      if (r.s > maxDiff.score) maxDiff = { score: r.s, what: `${photo} vs ${r.c.photo}/${r.c.edit}` };
    }
  }
  return { minSame, maxDiff };
}

describe('localEmbedding', () => {
  it('is a unit vector of the declared size, the same every time', async () => {
    expect(LOCAL_EMBEDDING_MODEL).toBe('biostore-local-v1');
    const bytes = await readFile(join(FIXTURES, 'coffee.webp'));
    const a = await localEmbedding(bytes);
    const b = await localEmbedding(Buffer.from(bytes));
    expect(a).toBeInstanceOf(Float32Array);
    expect(a.length).toBe(LOCAL_EMBEDDING_DIM);
    expect(Array.from(a).every(Number.isFinite)).toBe(true);
    expect(norm(a)).toBeCloseTo(1, 5);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  it('ranks every edit of a photo above every other photo, above the 0.75 threshold (plain cosine)', () => {
    const { minSame, maxDiff } = scoreAll(dot, (c) => !c.turned);
    console.log(
      `local embedding, plain cosine: min same-photo ${minSame.score.toFixed(3)} (${minSame.what}); ` +
        `max different-photo ${maxDiff.score.toFixed(3)} (${maxDiff.what})`,
    );
  });

  it('with orientation-tolerant scoring, also finds copies shown turned by 90° (the EXIF fixtures)', () => {
    const { minSame, maxDiff } = scoreAll(orientationTolerantSimilarity, () => true);
    console.log(
      `local embedding, orientation-tolerant: min same-photo ${minSame.score.toFixed(3)} (${minSame.what}); ` +
        `max different-photo ${maxDiff.score.toFixed(3)} (${maxDiff.what})`,
    );
    for (const c of copies.filter((x) => x.turned)) {
      const plain = dot(originals.get(c.photo) as Float32Array, c.vector);
      const tolerant = orientationTolerantSimilarity(originals.get(c.photo) as Float32Array, c.vector);
      console.log(`  ${c.edit}: plain cosine ${plain.toFixed(3)}, orientation-tolerant ${tolerant.toFixed(3)}`);
      expect(tolerant).toBeGreaterThan(plain);
    }
  });

  it('reorients a descriptor exactly as turning or mirroring the pixels does', async () => {
    const base = await sharp(await readFile(join(FIXTURES, 'chelsea.png'))).png().toBuffer();
    const v = await localEmbedding(base);
    const turn = async (deg: number) => sharp(base).rotate(deg).png().toBuffer();
    // EXIF 5 (transpose) is a 90° clockwise turn then a mirror; 7 (transverse) is 270° then a mirror.
    const ops: Array<[ExifOrientation, Sharp]> = [
      [1, sharp(base)],
      [2, sharp(base).flop()],
      [3, sharp(base).rotate(180)],
      [4, sharp(base).flip()],
      [5, sharp(await turn(90)).flop()],
      [6, sharp(base).rotate(90)],
      [7, sharp(await turn(270)).flop()],
      [8, sharp(base).rotate(270)],
    ];
    for (const [k, pipeline] of ops) {
      const turned = await localEmbedding(await pipeline.png().toBuffer());
      expect(cosine(reorientLocalEmbedding(v, k), turned), `orientation ${k}`).toBeGreaterThan(0.97);
      expect(norm(reorientLocalEmbedding(v, k))).toBeCloseTo(1, 5);
    }
    // Only the identity maps the descriptor onto itself: a turned photo is not a plain-cosine match.
    expect(cosine(reorientLocalEmbedding(v, 6), v)).toBeLessThan(THRESHOLD);
  });

  it('agrees with sharp on what each EXIF orientation tag means', async () => {
    const base = await sharp(await readFile(join(FIXTURES, 'coffee.png'))).png().toBuffer();
    const v = await localEmbedding(base);
    for (let k = 1; k <= 8; k++) {
      const tagged = await sharp(base).withMetadata({ orientation: k }).jpeg({ quality: 95 }).toBuffer();
      const shown = await localEmbedding(tagged);
      expect(cosine(reorientLocalEmbedding(v, k as ExifOrientation), shown), `orientation ${k}`).toBeGreaterThan(0.97);
    }
  });

  it('accepts greyscale and alpha images', async () => {
    const alpha = await localEmbedding(await readFile(join(FIXTURES, 'chelsea-alpha.png')));
    expect(norm(alpha)).toBeCloseTo(1, 5);
    const grey = await localEmbedding(await sharp(join(FIXTURES, 'rocket.jpg')).greyscale().jpeg().toBuffer());
    expect(norm(grey)).toBeCloseTo(1, 5);
    const flat = await localEmbedding(await sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } }).png().toBuffer());
    expect(norm(flat)).toBeCloseTo(1, 5);
  });

  it('refuses bytes that are not a readable image with InvalidInputError', async () => {
    await expect(localEmbedding(await readFile(join(FIXTURES, 'truncated.jpg')))).rejects.toBeInstanceOf(InvalidInputError);
    await expect(localEmbedding(Buffer.from('not an image'))).rejects.toMatchObject({ code: 'unreadable_image' });
  });
});
