/**
 * Object operations on S3 that the core needs (head, read, delete, list),
 * with SDK errors turned into project errors and "missing" turned into null.
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  RestoreObjectCommand,
  type StorageClass,
  type Tier,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { errorName, httpStatus, s3Error } from './s3.js';

export interface ObjectHead {
  size: number;
  contentType: string | undefined;
  etag: string | undefined;
  lastModified: Date | undefined;
  /** base64 SHA-256 when the server kept a checksum for the object. */
  checksumSha256: string | undefined;
  storageClass: string | undefined;
  /** The x-amz-restore header (Glacier restores). */
  restore: string | undefined;
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date | undefined;
}

const isMissing = (err: unknown) => {
  const n = errorName(err);
  return n === 'NotFound' || n === 'NoSuchKey' || httpStatus(err) === 404;
};

export class ObjectStore {
  constructor(
    readonly client: S3Client,
    private readonly endpoint: string | undefined,
  ) {}

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw s3Error(err, this.endpoint, what);
    }
  }

  /** HEAD; null when the object does not exist. */
  async head(bucket: string, key: string): Promise<ObjectHead | null> {
    return this.call(`HeadObject ${bucket}/${key}`, async () => {
      try {
        const h = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
        return {
          size: Number(h.ContentLength ?? 0),
          contentType: h.ContentType,
          etag: h.ETag,
          lastModified: h.LastModified,
          checksumSha256: h.ChecksumSHA256,
          storageClass: h.StorageClass,
          restore: h.Restore,
        };
      } catch (err) {
        if (isMissing(err)) return null;
        throw err;
      }
    });
  }

  /** Reads a whole object (bounded by `maxBytes`); null when it does not exist. */
  async read(bucket: string, key: string, maxBytes: number): Promise<Buffer | null> {
    return this.call(`GetObject ${bucket}/${key}`, async () => {
      try {
        const res = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const chunks: Buffer[] = [];
        let total = 0;
        for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
          total += chunk.length;
          if (total > maxBytes) {
            (res.Body as { destroy?: () => void }).destroy?.();
            throw new Error(`object ${key} is larger than ${maxBytes} bytes`);
          }
          chunks.push(Buffer.from(chunk));
        }
        return Buffer.concat(chunks, total);
      } catch (err) {
        if (isMissing(err)) return null;
        throw err;
      }
    });
  }

  /** Writes a whole object with a SHA-256 checksum the server verifies. */
  async put(bucket: string, key: string, body: Buffer, contentType: string, cacheControl?: string): Promise<void> {
    await this.call(`PutObject ${bucket}/${key}`, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          CacheControl: cacheControl,
          ContentLength: body.length,
          ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
        }),
      ),
    );
  }

  /**
   * Server-side copy (the bytes never pass through biostore), into a storage
   * class. Asks the server for a SHA-256 checksum of the copy where it keeps one.
   */
  async copy(src: { bucket: string; key: string }, dst: { bucket: string; key: string }, storageClass?: string): Promise<void> {
    await this.call(`CopyObject ${src.bucket}/${src.key} -> ${dst.bucket}/${dst.key}`, () =>
      this.client.send(
        new CopyObjectCommand({
          Bucket: dst.bucket,
          Key: dst.key,
          CopySource: `${src.bucket}/${src.key.split('/').map(encodeURIComponent).join('/')}`,
          StorageClass: storageClass as StorageClass | undefined,
          MetadataDirective: 'COPY',
        }),
      ),
    );
  }

  /**
   * Asks for a temporary restore of an archived (GLACIER, DEEP_ARCHIVE) object.
   * 'started' when accepted, 'in-progress' when one was already running.
   */
  async restore(bucket: string, key: string, days: number, tier: string): Promise<'started' | 'in-progress'> {
    return this.call(`RestoreObject ${bucket}/${key}`, async () => {
      try {
        await this.client.send(
          new RestoreObjectCommand({ Bucket: bucket, Key: key, RestoreRequest: { Days: days, GlacierJobParameters: { Tier: tier as Tier } } }),
        );
        return 'started';
      } catch (err) {
        if (errorName(err) === 'RestoreAlreadyInProgress' || httpStatus(err) === 409) return 'in-progress';
        throw err;
      }
    });
  }

  /** Deletes; a missing object counts as deleted. */
  async delete(bucket: string, key: string): Promise<void> {
    await this.call(`DeleteObject ${bucket}/${key}`, async () => {
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    });
  }

  /** Lists every object under a prefix, page by page. */
  async *list(bucket: string, prefix: string): AsyncGenerator<ListedObject> {
    let token: string | undefined;
    do {
      const page = await this.call(`ListObjectsV2 ${bucket}/${prefix}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key) yield { key: o.Key, size: Number(o.Size ?? 0), lastModified: o.LastModified };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}
