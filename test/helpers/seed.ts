/** Seeds files as earlier stages leave them: `uploaded` (raw object + record) or `ready` (gallery, thumbnail, record). */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import type { Context } from '../../src/core/context.js';
import type { FileRecord } from '../../src/core/files.js';

export interface Seeded {
  rec: FileRecord;
  sha256: string;
}

export async function seedReady(ctx: Context, user: string, n: number, at: Date, size = 2048): Promise<Seeded[]> {
  const limit = pLimit(16);
  const hot = ctx.config.s3.bucketHot;
  return Promise.all(
    Array.from({ length: n }, () =>
      limit(async () => {
        const id = randomUUID();
        const gallery = randomBytes(size);
        const thumb = randomBytes(256);
        const sha256 = createHash('sha256').update(gallery).digest('hex');
        const rec: FileRecord = {
          _id: id,
          user_id: user,
          status: 'ready',
          s3_key: `raw/${user}/${id}.jpg`,
          content_type: 'image/jpeg',
          original_filename: 'meal.jpg',
          use_case: 'gallery',
          size_bytes: size * 3,
          checksum_sha256: sha256,
          reserved_bytes: 0,
          upload_mode: 'put',
          created_at: at,
          updated_at: at,
          upload_timestamp: at,
          last_accessed_at: at,
          gallery_key: `gallery/${user}/${id}.webp`,
          gallery_bytes: gallery.length,
          gallery_sha256: sha256,
          thumb_key: `gallery/${user}/${id}.thumb.webp`,
          thumb_bytes: thumb.length,
        };
        await ctx.objects.put(hot, rec.gallery_key!, gallery, 'image/webp');
        await ctx.objects.put(hot, rec.thumb_key!, thumb, 'image/webp');
        await ctx.registry.insert(rec);
        return { rec, sha256 };
      }),
    ),
  );
}

/** Every object of both buckets, as "bucket/key". */
export async function allObjects(ctx: Context): Promise<Set<string>> {
  const out = new Set<string>();
  for (const b of [ctx.config.s3.bucketHot, ctx.config.s3.bucketArchive]) {
    for await (const o of ctx.objects.list(b, '')) out.add(`${b}/${o.key}`);
  }
  return out;
}

export async function sha(ctx: Context, bucket: string, key: string): Promise<string | null> {
  const body = await ctx.objects.read(bucket, key, 64e6);
  return body ? createHash('sha256').update(body).digest('hex') : null;
}

/** An `uploaded` file as registration leaves it: the raw object in the hot bucket and its record. */
export async function seedUploaded(c: Context, user: string, body: Buffer, contentType: string, at = new Date()): Promise<FileRecord> {
  const id = randomUUID();
  const ext = contentType.split('/')[1] === 'jpeg' ? 'jpg' : contentType.split('/')[1];
  const key = `raw/${user}/${id}.${ext}`;
  await c.objects.put(c.config.s3.bucketHot, key, body, contentType);
  const rec: FileRecord = {
    _id: id,
    user_id: user,
    status: 'uploaded',
    s3_key: key,
    content_type: contentType,
    original_filename: 'x',
    use_case: 'gallery',
    size_bytes: body.length,
    checksum_sha256: createHash('sha256').update(body).digest('hex'),
    reserved_bytes: 0,
    upload_mode: 'put',
    created_at: at,
    updated_at: at,
    upload_timestamp: at,
    last_accessed_at: at,
  };
  await c.registry.insert(rec);
  return rec;
}
