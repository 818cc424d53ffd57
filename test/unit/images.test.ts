/**
 * The image pipeline against real photos (test/helpers FIXTURES) and
 * hostile inputs generated here. No servers involved.
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { FIXTURES } from '../helpers/stack.js';
import {
  DEFAULT_OPTIMIZE_SETTINGS,
  ImageRejectedError,
  configureSharp,
  optimizeImage,
  optimizerVersion,
  probeImage,
  sniffImageType,
  type OptimizeSettings,
} from '../../src/media/images.js';

const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const PHONE = 'coffee-phone-4032x3024.jpg';

/** The refusal `promise` ends with, or a failure if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<ImageRejectedError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ImageRejectedError);
    return err as ImageRejectedError;
  }
  throw new Error('expected an ImageRejectedError, but the call succeeded');
}

/** A small greyscale thumbnail of an image, as raw bytes, for comparing content. */
async function signature(input: Buffer | Sharp, width = 48, height = 64): Promise<Buffer> {
  const pipeline = Buffer.isBuffer(input) ? sharp(input) : input;
  return pipeline.resize(width, height, { fit: 'fill' }).greyscale().raw().toBuffer();
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

function solid(width: number, height: number, channels: 3 | 4 = 3): Sharp {
  const background = channels === 4 ? { r: 200, g: 120, b: 40, alpha: 0.5 } : { r: 200, g: 120, b: 40 };
  return sharp({ create: { width, height, channels, background } });
}

/** Standard CRC-32 (PNG chunks); node:zlib has no crc32 in Node 20. */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** A small, valid-looking PNG that declares width x height grey pixels: a decompression bomb's header. */
function bombPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale, deflate, adaptive filter, no interlace
  const rows = deflateSync(Buffer.alloc((width + 1) * 16), { level: 9 }); // the first rows only
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', rows),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function hasExiftool(): boolean {
  try {
    execFileSync('exiftool', ['-ver'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('optimizeImage: the 12 MP phone photo (Orientation=6, GPS)', async () => {
  const input = fixture(PHONE);
  const result = await optimizeImage(input);

  it('makes an upright portrait WebP within 1080x1920, not a landscape one squeezed into 1920x1080', async () => {
    const meta = await sharp(result.gallery.data).metadata();
    expect(meta.format).toBe('webp');
    expect(meta.width).toBeLessThanOrEqual(1080);
    expect(meta.height).toBeLessThanOrEqual(1920);
    expect(meta.height).toBeGreaterThan(meta.width);
    // 3024x4032 displayed, scaled to fit 1080 wide.
    expect([meta.width, meta.height]).toEqual([1080, 1440]);
    expect(result.gallery).toMatchObject({ width: 1080, height: 1440, format: 'webp', bytes: result.gallery.data.length });
    expect(result.source).toEqual({
      format: 'jpeg',
      width: 4032,
      height: 3024,
      orientedWidth: 3024,
      orientedHeight: 4032,
      hasAlpha: false,
    });
  });

  it('shows the photo the right way up (checked by content, not by a tag)', async () => {
    const out = await signature(result.gallery.data);
    const upright = await signature(sharp(input).rotate(90)); // what Orientation=6 means
    const wrongWay = await signature(sharp(input).rotate(270));
    const good = meanAbsDiff(out, upright);
    const bad = meanAbsDiff(out, wrongWay);
    expect(good).toBeLessThan(6);
    expect(bad).toBeGreaterThan(good * 4);
  });

  it('keeps no EXIF, XMP, ICC or GPS in either derivative', async () => {
    for (const d of [result.gallery, result.thumb]) {
      const meta = await sharp(d.data).metadata();
      expect(meta.exif).toBeUndefined();
      expect(meta.xmp).toBeUndefined();
      expect(meta.icc).toBeUndefined();
      expect(meta.iptc).toBeUndefined();
      expect(meta.orientation).toBeUndefined();
      // Belt and braces: no metadata chunk in the RIFF container at all.
      const riff = d.data.toString('latin1');
      expect(riff).not.toMatch(/EXIF|XMP |ICCP/);
    }
  });

  it.skipIf(!hasExiftool())('exiftool finds no GPS or camera tags in the derivatives (it does in the original)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'biostore-images-'));
    try {
      const tags = (file: string, data: Buffer): string[] => {
        writeFileSync(join(dir, file), data);
        const json = JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', join(dir, file)], { encoding: 'utf8' }));
        return Object.keys(json[0] as object);
      };
      const personal = /GPS|Make|Model|Artist|DateTimeOriginal|SerialNumber/i;
      expect(tags('original.jpg', input).filter((k) => personal.test(k)).length).toBeGreaterThan(3);
      for (const [name, d] of [['gallery.webp', result.gallery], ['thumb.webp', result.thumb]] as const) {
        expect(tags(name, d.data).filter((k) => personal.test(k))).toEqual([]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makes a 320 px thumbnail (long side) with the same orientation and content', async () => {
    const meta = await sharp(result.thumb.data).metadata();
    expect([meta.width, meta.height]).toEqual([240, 320]);
    expect(result.thumb).toMatchObject({ width: 240, height: 320, format: 'webp' });
    const diff = meanAbsDiff(await signature(result.thumb.data), await signature(result.gallery.data));
    expect(diff).toBeLessThan(4);
  });
});

describe('optimizeImage: sizes and orientation', () => {
  it('honours a configured thumbnail size', async () => {
    const settings: OptimizeSettings = { ...DEFAULT_OPTIMIZE_SETTINGS, thumbSize: 200 };
    const { thumb } = await optimizeImage(fixture('rocket.jpg'), settings);
    // rocket.jpg is 640x427: the long side is the width.
    expect([thumb.width, thumb.height]).toEqual([200, 133]);
  });

  it('never enlarges a small image: 100x80 stays 100x80, gallery and thumbnail', async () => {
    const small = await solid(100, 80).jpeg().toBuffer();
    const { gallery, thumb } = await optimizeImage(small);
    expect([gallery.width, gallery.height]).toEqual([100, 80]);
    expect([thumb.width, thumb.height]).toEqual([100, 80]);
  });

  it('fits landscape photos in 1920x1080 and portrait ones in 1080x1920', async () => {
    const wide = await optimizeImage(await solid(4000, 1000).png().toBuffer());
    expect([wide.gallery.width, wide.gallery.height]).toEqual([1920, 480]);
    const tall = await optimizeImage(await solid(1000, 4000).png().toBuffer());
    expect([tall.gallery.width, tall.gallery.height]).toEqual([480, 1920]);
    const photo = await optimizeImage(await solid(3000, 2000).jpeg().toBuffer());
    expect([photo.gallery.width, photo.gallery.height]).toEqual([1620, 1080]);
    expect([photo.thumb.width, photo.thumb.height]).toEqual([320, 213]);
  });

  it('auto-orients the small Orientation=6 JPEG and drops its GPS', async () => {
    const { gallery, source } = await optimizeImage(fixture('chelsea-exif-orient6.jpg'));
    expect([source.orientedWidth, source.orientedHeight]).toEqual([300, 451]);
    expect([gallery.width, gallery.height]).toEqual([300, 451]);
    const meta = await sharp(gallery.data).metadata();
    expect(meta.exif).toBeUndefined();
  });

  it('accepts WebP and PNG input', async () => {
    const webp = await optimizeImage(fixture('coffee.webp'));
    expect(webp.source.format).toBe('webp');
    expect([webp.gallery.width, webp.gallery.height]).toEqual([600, 400]);
    const png = await optimizeImage(fixture('coffee.png'));
    expect(png.source.format).toBe('png');
    expect([png.gallery.width, png.gallery.height]).toEqual([600, 400]);
  });
});

describe('optimizeImage: colour and transparency', () => {
  it('keeps transparency: a PNG with alpha gives WebPs with alpha', async () => {
    const { gallery, thumb, source } = await optimizeImage(fixture('chelsea-alpha.png'));
    expect(source.hasAlpha).toBe(true);
    for (const d of [gallery, thumb]) {
      const { data, info } = await sharp(d.data).raw().toBuffer({ resolveWithObject: true });
      expect(info.channels).toBe(4);
      expect((await sharp(d.data).metadata()).hasAlpha).toBe(true);
      let translucent = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]! < 255) translucent++;
      expect(translucent / (data.length / 4)).toBeGreaterThan(0.9); // the fixture is 60% alpha everywhere
    }
  });

  it('converts a Display-P3 photo to sRGB values instead of dropping the profile', async () => {
    const p3 = await solid(64, 48).withIccProfile('p3').jpeg({ quality: 95 }).toBuffer();
    const stored = await sharp(p3, { ignoreIcc: true }).raw().toBuffer();
    const { gallery } = await optimizeImage(p3);
    const out = await sharp(gallery.data).raw().toBuffer();
    // Without the conversion the output would carry the P3 numbers (stored) and look washed out.
    expect(Math.abs(out[0]! - 200)).toBeLessThanOrEqual(6);
    expect(Math.abs(out[1]! - 120)).toBeLessThanOrEqual(6);
    expect(Math.abs(out[2]! - 40)).toBeLessThanOrEqual(6);
    expect(Math.abs(stored[0]! - out[0]!) + Math.abs(stored[2]! - out[2]!)).toBeGreaterThan(10);
  });

  it('turns CMYK JPEG and 16-bit PNG into ordinary 8-bit sRGB', async () => {
    for (const input of [
      await solid(64, 48).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer(),
      await solid(64, 48).toColourspace('rgb16').png().toBuffer(),
    ]) {
      const { gallery } = await optimizeImage(input);
      const { data, info } = await sharp(gallery.data).raw().toBuffer({ resolveWithObject: true });
      expect(info.channels).toBe(3);
      expect(Math.abs(data[0]! - 200)).toBeLessThanOrEqual(25);
      expect(Math.abs(data[1]! - 120)).toBeLessThanOrEqual(25);
      expect(Math.abs(data[2]! - 40)).toBeLessThanOrEqual(25);
    }
  });
});

describe('hostile and broken files', () => {
  it('refuses the truncated JPEG with a readable, storable reason', async () => {
    const err = await rejection(optimizeImage(fixture('truncated.jpg')));
    expect(err.kind).toBe('corrupt');
    expect(err.reason).toMatch(/^corrupt or truncated image: \S/);
    expect(err.reason).not.toContain('\n');
    expect(err.reason.length).toBeLessThanOrEqual(200);
    expect(err.message).toContain(err.reason);
  });

  it('refuses a phone photo cut off half way (header intact, pixels missing)', async () => {
    const photo = fixture(PHONE);
    const cut = photo.subarray(0, Math.floor(photo.length * 0.6));
    // The header is fine, so registration's probe accepts it...
    expect((await probeImage(cut)).width).toBe(4032);
    // ...and decoding finds the missing pixels.
    const err = await rejection(optimizeImage(cut));
    expect(err.kind).toBe('corrupt');
    expect(err.reason).toMatch(/^corrupt or truncated image: /);
  });

  it('refuses bytes that start like a JPEG but are not one', async () => {
    const fake = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, 0x41)]);
    const err = await rejection(optimizeImage(fake));
    expect(err.kind).toBe('corrupt');
  });

  it('refuses a decompression bomb (30000x30000 declared) from its header, quickly and without memory growth', async () => {
    const bomb = bombPng(30_000, 30_000);
    expect(bomb.length).toBeLessThan(10_000);
    expect(sniffImageType(bomb)).toBe('png');
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const err = await rejection(optimizeImage(bomb));
    const elapsed = performance.now() - started;
    const growth = process.memoryUsage().rss - rssBefore;
    expect(err.kind).toBe('too-large');
    expect(err.reason).toBe('image too large: 30000x30000 pixels exceeds the limit of 50000000');
    expect(elapsed).toBeLessThan(1_000);
    expect(growth).toBeLessThan(300 * 1024 * 1024);
    expect((await rejection(probeImage(bomb))).reason).toBe(err.reason);
  });

  it('applies a configured pixel limit', async () => {
    const settings = { ...DEFAULT_OPTIMIZE_SETTINGS, maxPixels: 1_000_000 };
    const err = await rejection(optimizeImage(await solid(1200, 900).jpeg().toBuffer(), settings));
    expect(err.reason).toBe('image too large: 1200x900 pixels exceeds the limit of 1000000');
    expect((await optimizeImage(await solid(1000, 1000).jpeg().toBuffer(), settings)).gallery.width).toBe(1000);
  });

  it('refuses files that are not images: HTML, ZIP, SVG', async () => {
    const html = Buffer.from('<!DOCTYPE html>\n<html><body><img src=x onerror=alert(1)></body></html>');
    const zip = Buffer.from('504b0304140000000800a1b2c3d4000000000000000000000000080000006576696c2e6a7067', 'hex');
    const svg = Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    for (const [bytes, name] of [[html, 'html'], [zip, 'zip'], [svg, 'svg']] as const) {
      expect(sniffImageType(bytes)).toBeNull();
      const err = await rejection(optimizeImage(bytes));
      expect(err.kind).toBe('unsupported-format');
      expect(err.reason).toBe(`unsupported format: ${name}`);
    }
    expect((await rejection(optimizeImage(Buffer.alloc(0)))).kind).toBe('unsupported-format');
  });

  it('refuses GIF and TIFF, which sharp could decode but we do not accept', async () => {
    const gif = await solid(40, 30).gif().toBuffer();
    const tiff = await solid(40, 30).tiff().toBuffer();
    for (const [bytes, name] of [[gif, 'gif'], [tiff, 'tiff']] as const) {
      expect(sniffImageType(bytes)).toBeNull();
      expect((await rejection(optimizeImage(bytes))).reason).toBe(`unsupported format: ${name}`);
      expect((await rejection(probeImage(bytes))).reason).toBe(`unsupported format: ${name}`);
    }
  });
});

describe('sniffImageType', () => {
  it('recognises the accepted formats by their first bytes', () => {
    expect(sniffImageType(fixture(PHONE).subarray(0, 16))).toBe('jpeg');
    expect(sniffImageType(fixture('coffee.png').subarray(0, 16))).toBe('png');
    expect(sniffImageType(fixture('coffee.webp').subarray(0, 16))).toBe('webp');
  });

  it('gives null for other or too few bytes', () => {
    expect(sniffImageType(Buffer.alloc(0))).toBeNull();
    expect(sniffImageType(Buffer.from([0xff, 0xd8]))).toBeNull();
    expect(sniffImageType(Buffer.from('RIFF\0\0\0\0WAVEfmt ', 'latin1'))).toBeNull();
    expect(sniffImageType(Buffer.from('GIF89a', 'latin1'))).toBeNull();
  });
});

describe('probeImage', () => {
  it('reads format and dimensions, as stored and as displayed', async () => {
    expect(await probeImage(fixture('chelsea-exif-orient6.jpg'))).toEqual({
      format: 'jpeg',
      width: 451,
      height: 300,
      orientedWidth: 300,
      orientedHeight: 451,
      hasAlpha: false,
    });
  });
});

describe('optimizerVersion', () => {
  const base = DEFAULT_OPTIMIZE_SETTINGS;

  it('is stable for the same settings', () => {
    expect(optimizerVersion(base)).toMatch(/^v1-[0-9a-f]{8}$/);
    expect(optimizerVersion({ ...base })).toBe(optimizerVersion(base));
    expect(optimizerVersion()).toBe(optimizerVersion(base));
  });

  it('changes when a setting that shapes the output changes', () => {
    const v = optimizerVersion(base);
    expect(optimizerVersion({ ...base, quality: 81 })).not.toBe(v);
    expect(optimizerVersion({ ...base, thumbSize: 256 })).not.toBe(v);
    expect(optimizerVersion({ ...base, maxWidth: 2560, maxHeight: 1440 })).not.toBe(v);
    expect(optimizerVersion({ ...base, effort: 4 })).not.toBe(v);
  });

  it('does not change for limits, nor for the same box written the other way round', () => {
    const v = optimizerVersion(base);
    expect(optimizerVersion({ ...base, maxPixels: 80_000_000, timeoutSeconds: 60 })).toBe(v);
    expect(optimizerVersion({ ...base, maxWidth: 1080, maxHeight: 1920 })).toBe(v);
  });

  it('refuses nonsense settings', () => {
    expect(() => optimizerVersion({ ...base, quality: 0 })).toThrow(RangeError);
    expect(() => optimizerVersion({ ...base, thumbSize: 1.5 })).toThrow(RangeError);
  });
});

// Last: configureSharp changes process-wide libvips state (vitest runs each file in its own process).
describe('configureSharp', () => {
  it('keeps JPEG, PNG and WebP working while every other decoder is blocked', async () => {
    const gif = await solid(40, 30).gif().toBuffer();
    expect((await sharp(gif).metadata()).format).toBe('gif');
    try {
      expect(configureSharp({ concurrency: 1, cache: false })).toEqual({
        concurrency: 1,
        cache: false,
        restrictDecoders: true,
      });
      await expect(sharp(gif).metadata()).rejects.toThrow();
      for (const name of [PHONE, 'chelsea-alpha.png', 'coffee.webp']) {
        expect((await optimizeImage(fixture(name))).gallery.bytes).toBeGreaterThan(1000);
      }
    } finally {
      configureSharp({ concurrency: 1, cache: false, restrictDecoders: false });
    }
    expect((await sharp(gif).metadata()).format).toBe('gif');
    expect(() => configureSharp({ concurrency: -1, cache: false })).toThrow(RangeError);
  });
});
