/**
 * The image pipeline: every use of sharp in the project lives in src/media/.
 *
 * An upload is untrusted bytes from a phone. This module decides whether the
 * bytes are an image we accept (JPEG, PNG or WebP within a pixel budget and a
 * time budget) and turns an accepted one into the two privacy-safe WebP
 * derivatives the gallery serves. Refusals are `ImageRejectedError`s with a
 * reason fit to store on the file record; anything else that throws is an
 * internal failure worth a retry.
 *
 * Nothing happens at import time: no config, no environment, no sharp tuning.
 * The daemon's composition root calls `configureSharp` once.
 */
import { createHash } from 'node:crypto';
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';
import { BiostoreError, EXIT } from '../core/errors.js';

/** The decoders we accept. Everything else is refused before sharp sees the bytes. */
export type ImageFormat = 'jpeg' | 'png' | 'webp';

/** Why an image was refused: lets callers count refusals without parsing `reason`. */
export type RejectionKind = 'unsupported-format' | 'corrupt' | 'too-large' | 'timeout';

/**
 * The bytes are not an image we will process. Exists so a caller can tell
 * "this upload is bad, mark it rejected" (never retry) from an internal failure
 * (retry later). `reason` is one line, safe to store on the file record and to
 * show to the uploader.
 */
export class ImageRejectedError extends BiostoreError {
  readonly reason: string;
  readonly kind: RejectionKind;
  constructor(kind: RejectionKind, reason: string, options?: { cause?: unknown }) {
    super(`image rejected: ${reason}`, 'image_rejected', EXIT.FAILURE, options);
    this.kind = kind;
    this.reason = reason;
  }
}

/**
 * Everything that shapes the derivatives or bounds the work on one image.
 * Exists so the daemon passes config values in (nothing here reads config),
 * and so `optimizerVersion` can tell which records were made with other values.
 */
export interface OptimizeSettings {
  /** The gallery box for a landscape photo; a portrait photo gets the same box turned (1080x1920). */
  maxWidth: number;
  maxHeight: number;
  /** WebP quality, 1-100, for both derivatives. */
  quality: number;
  /** Long side of the thumbnail in pixels. */
  thumbSize: number;
  /**
   * libwebp effort (method), 0-6. The encoder is most of the CPU per image:
   * on the 12 MP fixture effort 2 encodes the gallery in ~100 ms against
   * ~215 ms for libwebp's default 4, for files ~5% larger (PSNR -0.5 dB).
   * Set 4 to trade throughput for bytes.
   */
  effort: number;
  /** Refuse images whose declared width x height exceeds this (decompression bombs). */
  maxPixels: number;
  /** Wall-clock budget for one image, whole seconds (sharp's own timeout granularity). */
  timeoutSeconds: number;
}

/** The product's defaults: 1920x1080 gallery at q80, 320 px thumbnail, 50 MP, 30 s. */
export const DEFAULT_OPTIMIZE_SETTINGS: Readonly<OptimizeSettings> = Object.freeze({
  maxWidth: 1920,
  maxHeight: 1080,
  quality: 80,
  thumbSize: 320,
  effort: 2,
  maxPixels: 50_000_000,
  timeoutSeconds: 30,
});

/** One WebP derivative, with what a record needs to describe it. */
export interface Derivative {
  data: Buffer;
  width: number;
  height: number;
  bytes: number;
  format: 'webp';
}

/**
 * What the header says about an upload. `width`/`height` are as stored;
 * `orientedWidth`/`orientedHeight` are as displayed (after the EXIF
 * orientation), which is what a gallery layout needs.
 */
export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
  orientedWidth: number;
  orientedHeight: number;
  hasAlpha: boolean;
}

/** Both derivatives and what the original was. */
export interface OptimizeResult {
  gallery: Derivative;
  thumb: Derivative;
  source: ImageInfo;
}

/**
 * Bump when the code changes the output for the same settings (resize
 * kernel, encoder options): records made before can then be found and
 * reprocessed.
 */
const PIPELINE_REVISION = 'v1';

/** The libvips loaders `configureSharp` leaves enabled (buffer input only). */
const ALLOWED_LOADERS = ['VipsForeignLoadJpegBuffer', 'VipsForeignLoadPngBuffer', 'VipsForeignLoadWebpBuffer'];

/** Reasons go on records and into logs: keep them one short line. */
const MAX_REASON = 200;

/**
 * Recognises the accepted formats by their magic numbers. Exists so
 * registration can check that the bytes are what was signed for (and refuse
 * HTML, ZIP, SVG...) before any decoder runs. 12 bytes are enough.
 */
export function sniffImageType(head: Uint8Array): ImageFormat | null {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'webp';
  return null;
}

/**
 * A fingerprint of every setting that changes the bytes of a derivative,
 * e.g. `v1-3f9a0c12`. Exists so each record can store which pipeline made
 * it and a reprocess job can select the stale ones. The limits (maxPixels,
 * timeoutSeconds) are left out on purpose: they decide whether an image is
 * processed, not what comes out, and raising a timeout must not re-encode the
 * whole library. The box is hashed as long/short side, since 1920x1080 and
 * 1080x1920 give the same images.
 */
export function optimizerVersion(settings: OptimizeSettings = DEFAULT_OPTIMIZE_SETTINGS): string {
  checkSettings(settings);
  const box = boxSides(settings);
  const canonical = JSON.stringify({
    rev: PIPELINE_REVISION,
    long: box.long,
    short: box.short,
    quality: settings.quality,
    thumbSize: settings.thumbSize,
    effort: settings.effort,
  });
  return `${PIPELINE_REVISION}-${createHash('sha256').update(canonical).digest('hex').slice(0, 8)}`;
}

/** Machine-level sharp tuning, chosen by the composition root. */
export interface SharpTuning {
  /** libvips threads per image; 0 lets libvips use one per core. Several images in flight want 1. */
  concurrency: number;
  /** libvips operation cache: off for a server that never sees the same input twice. */
  cache: boolean;
  /** Disable every libvips loader except JPEG/PNG/WebP from a buffer (default true). */
  restrictDecoders?: boolean;
}

/**
 * Tunes sharp for this process and machine; returns what is in effect so the
 * daemon can log it. Exists because these are process-wide switches: one
 * call from the composition root, never at import time. Restricting the
 * decoders is defence in depth behind the format check in this module: even
 * a code path that forgot to sniff cannot reach the SVG, TIFF, GIF, HEIF or
 * PDF decoders.
 */
export function configureSharp(tuning: SharpTuning): { concurrency: number; cache: boolean; restrictDecoders: boolean } {
  if (!Number.isInteger(tuning.concurrency) || tuning.concurrency < 0 || tuning.concurrency > 1024) {
    throw new RangeError(`sharp concurrency must be an integer 0-1024, got ${tuning.concurrency}`);
  }
  sharp.concurrency(tuning.concurrency);
  sharp.cache(tuning.cache);
  const restrictDecoders = tuning.restrictDecoders ?? true;
  if (restrictDecoders) {
    sharp.block({ operation: ['VipsForeignLoad'] });
    sharp.unblock({ operation: ALLOWED_LOADERS });
  } else {
    sharp.unblock({ operation: ['VipsForeignLoad'] });
  }
  return { concurrency: sharp.concurrency(), cache: tuning.cache, restrictDecoders };
}

/**
 * Reads the header only (no pixels): format, dimensions, orientation.
 * Exists for registration, which must refuse a non-image or a bomb cheaply
 * and record the dimensions. Truncated pixel data is not detected here;
 * `optimizeImage` finds it. Throws `ImageRejectedError`.
 */
export async function probeImage(
  input: Buffer,
  limits: Pick<OptimizeSettings, 'maxPixels'> = DEFAULT_OPTIMIZE_SETTINGS,
): Promise<ImageInfo> {
  const sniffed = sniffImageType(input.subarray(0, 16));
  if (!sniffed) {
    throw new ImageRejectedError('unsupported-format', `unsupported format: ${nameUnsupported(input.subarray(0, 512))}`);
  }
  let meta: Metadata;
  try {
    // Header only, so no pixel limit here: we want the dimensions to say why we refuse.
    meta = await sharp(input, { failOn: 'error', limitInputPixels: false }).metadata();
  } catch (err) {
    throw new ImageRejectedError('corrupt', `corrupt or truncated image: ${firstLine(err)}`, { cause: err });
  }
  if (meta.format !== sniffed) {
    throw new ImageRejectedError('unsupported-format', `unsupported format: ${meta.format} (the bytes start like ${sniffed})`);
  }
  const { width, height } = meta;
  if (!(width > 0 && height > 0)) {
    throw new ImageRejectedError('corrupt', `corrupt or truncated image: no dimensions in the ${sniffed} header`);
  }
  if (width * height > limits.maxPixels) {
    throw new ImageRejectedError(
      'too-large',
      `image too large: ${width}x${height} pixels exceeds the limit of ${limits.maxPixels}`,
    );
  }
  const swapped = (meta.orientation ?? 1) >= 5;
  return {
    format: sniffed,
    width,
    height,
    orientedWidth: meta.autoOrient?.width ?? (swapped ? height : width),
    orientedHeight: meta.autoOrient?.height ?? (swapped ? width : height),
    hasAlpha: meta.hasAlpha,
  };
}

/**
 * Turns an accepted upload into the gallery WebP and the thumbnail, upright
 * and without metadata. Exists as the optimizer worker's one call.
 *
 * One decode: the original is decoded once (JPEG shrink-on-load, EXIF
 * orientation, ICC/CMYK/16-bit to 8-bit sRGB) straight to gallery-sized raw
 * pixels; both encoders then read those pixels, the thumbnail being a
 * downscale of the gallery pixels rather than of the 12 MP original. Raw
 * pixels carry no EXIF, XMP or ICC, so nothing personal can leak into either
 * derivative. Throws `ImageRejectedError` for bad input.
 */
export async function optimizeImage(
  input: Buffer,
  settings: OptimizeSettings = DEFAULT_OPTIMIZE_SETTINGS,
): Promise<OptimizeResult> {
  checkSettings(settings);
  const started = performance.now();
  const source = await probeImage(input, settings);

  const box = boxSides(settings);
  const portrait = source.orientedHeight > source.orientedWidth;
  let pixels: { data: Buffer; info: OutputInfo };
  try {
    // failOn 'error' (not sharp's default 'warning'): truncation and decoder errors
    // fail, while the harmless warnings common in ordinary phone and editor files do not.
    pixels = await sharp(input, { failOn: 'error', limitInputPixels: settings.maxPixels, autoOrient: true })
      .timeout({ seconds: settings.timeoutSeconds })
      .resize({
        width: portrait ? box.short : box.long,
        height: portrait ? box.long : box.short,
        fit: 'inside',
        withoutEnlargement: true,
      })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeRejection(err, settings);
  }

  const seconds = settings.timeoutSeconds - (performance.now() - started) / 1000;
  if (seconds <= 0) throw timeoutRejection(settings);
  const remaining = Math.max(1, Math.ceil(seconds));
  const { width, height, channels } = pixels.info;
  const fromPixels = () => sharp(pixels.data, { raw: { width, height, channels } }).timeout({ seconds: remaining });
  const [gallery, thumb] = await Promise.all([
    encode(fromPixels(), settings),
    encode(
      fromPixels().resize({
        width: settings.thumbSize,
        height: settings.thumbSize,
        fit: 'inside',
        withoutEnlargement: true,
      }),
      settings,
    ),
  ]);
  return { gallery, thumb, source };
}

async function encode(pipeline: Sharp, settings: OptimizeSettings): Promise<Derivative> {
  try {
    const { data, info } = await pipeline
      .webp({ quality: settings.quality, effort: settings.effort })
      .toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, bytes: data.length, format: 'webp' };
  } catch (err) {
    // The pixels are ours by now: only a timeout is the image's fault.
    if (isTimeout(err)) throw timeoutRejection(settings, err);
    throw err;
  }
}

/** The decoder failed: the input's fault, whatever libvips said. */
function decodeRejection(err: unknown, settings: OptimizeSettings): ImageRejectedError {
  if (isTimeout(err)) return timeoutRejection(settings, err);
  const line = firstLine(err);
  if (/pixel limit/i.test(line)) {
    return new ImageRejectedError('too-large', `image too large: exceeds the limit of ${settings.maxPixels} pixels`, {
      cause: err,
    });
  }
  return new ImageRejectedError('corrupt', `corrupt or truncated image: ${line}`, { cause: err });
}

function timeoutRejection(settings: OptimizeSettings, cause?: unknown): ImageRejectedError {
  return new ImageRejectedError('timeout', `processing took longer than ${settings.timeoutSeconds} s`, { cause });
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && /^timeout/i.test(err.message);
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = (text.split('\n').find((l) => l.trim() !== '') ?? 'unknown error').trim();
  return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON - 3)}...` : line;
}

function boxSides(s: OptimizeSettings): { long: number; short: number } {
  return { long: Math.max(s.maxWidth, s.maxHeight), short: Math.min(s.maxWidth, s.maxHeight) };
}

function checkSettings(s: OptimizeSettings): void {
  const int = (name: keyof OptimizeSettings, min: number, max: number) => {
    const v = s[name];
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RangeError(`optimize setting ${name} must be an integer ${min}-${max}, got ${v}`);
    }
  };
  int('maxWidth', 1, 16383); // WebP's limit
  int('maxHeight', 1, 16383);
  int('quality', 1, 100);
  int('thumbSize', 1, 16383);
  int('effort', 0, 6);
  int('maxPixels', 1, Number.MAX_SAFE_INTEGER);
  int('timeoutSeconds', 1, 3600); // sharp's range
}

function startsWith(head: Uint8Array, magic: number[]): boolean {
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
}

function ascii(head: Uint8Array, from: number, to: number): string {
  if (head.length < to) return '';
  return String.fromCharCode(...head.subarray(from, to));
}

/** A name for a refused format, only to make the stored reason useful. */
function nameUnsupported(head: Uint8Array): string {
  if (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a') return 'gif';
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (ascii(head, 4, 8) === 'ftyp') {
    const brand = ascii(head, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (/^(hei[cxms]|hev[cxms]|mif1|msf1)$/.test(brand)) return 'heic';
    return `iso media (${brand.replace(/[^\x20-\x7e]/g, '?')})`;
  }
  if (startsWith(head, [0xff, 0x0a]) || ascii(head, 4, 8) === 'JXL ') return 'jxl';
  if (ascii(head, 0, 2) === 'BM') return 'bmp';
  if (ascii(head, 0, 5) === '%PDF-') return 'pdf';
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return 'zip';
  if (startsWith(head, [0x00, 0x00, 0x01, 0x00])) return 'ico';
  const text = Buffer.from(head).toString('latin1').replace(/^\ufeff|^\xef\xbb\xbf/, '').trimStart().toLowerCase();
  if (text.startsWith('<')) {
    if (text.includes('<svg')) return 'svg';
    if (text.startsWith('<!doctype html') || text.startsWith('<html')) return 'html';
    return 'xml or html';
  }
  return 'not a JPEG, PNG or WebP image';
}
