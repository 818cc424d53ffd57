/**
 * S3 boundary: the one S3 client, bucket set-up with capability fallbacks,
 * and the translation of SDK errors into project errors. Only storage modules
 * import `@aws-sdk/*`.
 */
import {
  CreateBucketCommand,
  GetBucketCorsCommand,
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  PutBucketCorsCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  S3Client,
  S3ServiceException,
  type CORSRule,
  type LifecycleRule,
} from '@aws-sdk/client-s3';
import { BiostoreError, NotFoundError, UnavailableError } from '../core/errors.js';

export interface S3Options {
  region: string;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  /** Connection timeout in ms (default 3000). */
  connectTimeoutMs?: number;
  /** Per-request timeout in ms (default 30000). */
  requestTimeoutMs?: number;
  /** SDK retry attempts (default 3). */
  maxAttempts?: number;
}

/** Builds the S3 client once per process; every S3 call goes through it. */
export function createS3Client(o: S3Options): S3Client {
  const client = new S3Client({
    region: o.region,
    endpoint: o.endpoint,
    forcePathStyle: o.forcePathStyle,
    credentials: o.accessKeyId && o.secretAccessKey ? { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } : undefined,
    maxAttempts: o.maxAttempts ?? 3,
    requestHandler: { connectionTimeout: o.connectTimeoutMs ?? 3000, requestTimeout: o.requestTimeoutMs ?? 30_000 },
    // Only send checksums where the operation requires them: S3-compatible servers
    // vary in their support of the newer default CRC32 trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  // Remember the last `Server` header, so `status` can say which server answered.
  client.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const res = out.response as { headers?: Record<string, string> } | undefined;
      if (res?.headers?.server) lastServerHeader.set(client, res.headers.server);
      return out;
    },
    { step: 'deserialize', name: 'biostoreServerHeader' },
  );
  return client;
}

const lastServerHeader = new WeakMap<S3Client, string>();

/** The `Server` header of the last response this client saw (e.g. "AmazonS3", "VERSITYGW"). */
export function serverHeader(client: S3Client): string | undefined {
  return lastServerHeader.get(client);
}

export function errorName(err: unknown): string {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return e?.Code ?? e?.name ?? '';
}

export function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** True when the server does not implement the operation (versitygw: lifecycle, moto: some configs). */
export function isNotImplemented(err: unknown): boolean {
  const name = errorName(err);
  const status = httpStatus(err);
  return name === 'NotImplemented' || name === 'MethodNotAllowed' || status === 501 || status === 405;
}

/** Maps an SDK failure to a project error; `what` names the operation for the message. */
export function s3Error(err: unknown, endpoint: string | undefined, what: string): Error {
  if (err instanceof BiostoreError) return err;
  const name = errorName(err);
  const e = err as { code?: string; message?: string };
  const msg = (e?.message ?? String(err)).split('\n')[0] ?? '';
  const where = endpoint ?? 'AWS S3';
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(msg)) {
    return new UnavailableError('S3', `no credentials found for ${where}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile/role)`, {
      cause: err,
    });
  }
  if (
    ['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN'].includes(e?.code ?? '') ||
    /TimeoutError|RequestTimeout|socket hang up|ECONNREFUSED|ENOTFOUND/i.test(`${name} ${msg}`)
  ) {
    const why = /ECONNREFUSED/.test(`${e?.code} ${msg}`) ? 'connection refused' : /ENOTFOUND|EAI_AGAIN/.test(`${e?.code} ${msg}`) ? 'host not found' : /time/i.test(`${name} ${msg}`) ? 'timed out' : msg;
    return new UnavailableError('S3', `unreachable at ${where} (${why}) during ${what}; check S3_ENDPOINT_URL and that the server is up`, {
      cause: err,
    });
  }
  if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden'].includes(name) || httpStatus(err) === 403) {
    return new UnavailableError('S3', `${where} refused ${what} (${name || 'access denied'}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY`, {
      cause: err,
    });
  }
  if (name === 'NoSuchBucket') return new NotFoundError(`S3: bucket does not exist (${what}); run \`biostore init-buckets\``);
  if (err instanceof S3ServiceException) {
    return new UnavailableError('S3', `${what} failed: ${name}: ${msg}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(msg);
}

export type BucketAction = 'created' | 'exists' | 'applied' | 'unchanged' | 'unsupported';

export interface BucketStep {
  bucket: string;
  setting: 'bucket' | 'lifecycle' | 'cors' | 'encryption';
  action: BucketAction;
  message: string;
}

export interface InitBucketsOptions {
  hot: string;
  archive: string;
  corsOrigins: string[];
  region: string;
}

const RAW_RULE_ID = 'biostore-expire-raw-uploads';

function rawLifecycleRule(): LifecycleRule {
  return { ID: RAW_RULE_ID, Status: 'Enabled', Filter: { Prefix: 'raw/' }, Expiration: { Days: 1 } };
}

function corsRules(origins: string[]): CORSRule[] {
  return [
    {
      AllowedOrigins: origins.length ? origins : ['*'],
      AllowedMethods: ['PUT', 'POST', 'GET', 'HEAD'],
      AllowedHeaders: ['*'],
      ExposeHeaders: ['ETag', 'x-amz-checksum-sha256'],
      MaxAgeSeconds: 3600,
    },
  ];
}

const sameCors = (a: CORSRule[] | undefined, b: CORSRule[]): boolean => {
  const norm = (rules: CORSRule[] | undefined) =>
    JSON.stringify(
      (rules ?? []).map((r) => ({
        o: [...(r.AllowedOrigins ?? [])].sort(),
        m: [...(r.AllowedMethods ?? [])].sort(),
        h: [...(r.AllowedHeaders ?? [])].sort(),
      })),
    );
  return norm(a) === norm(b);
};

/** Creates both buckets and applies lifecycle, CORS and encryption; reports each setting. Idempotent. */
export async function initBuckets(client: S3Client, endpoint: string | undefined, o: InitBucketsOptions): Promise<BucketStep[]> {
  const steps: BucketStep[] = [];
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw s3Error(err, endpoint, what);
    }
  };

  for (const bucket of [o.hot, o.archive]) {
    steps.push(await ensureBucket(client, endpoint, bucket, o.region));
  }

  // Hot bucket: raw uploads expire after a day.
  steps.push(
    await applySetting(o.hot, 'lifecycle', 'purge-run enforces the 24 h expiry of raw/ uploads', async () => {
      let current: LifecycleRule[] = [];
      try {
        current = (await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: o.hot }))).Rules ?? [];
      } catch (err) {
        if (isNotImplemented(err)) throw err;
        if (errorName(err) !== 'NoSuchLifecycleConfiguration') throw err;
      }
      const have = current.find((r) => r.ID === RAW_RULE_ID);
      if (have && have.Expiration?.Days === 1 && have.Status === 'Enabled') return 'unchanged';
      const rules = [...current.filter((r) => r.ID !== RAW_RULE_ID), rawLifecycleRule()];
      await client.send(new PutBucketLifecycleConfigurationCommand({ Bucket: o.hot, LifecycleConfiguration: { Rules: rules } }));
      return 'applied';
    }),
  );

  // Hot bucket: browsers and apps PUT/POST/GET directly.
  steps.push(
    await applySetting(o.hot, 'cors', 'uploads from browsers need CORS configured on the server itself', async () => {
      const want = corsRules(o.corsOrigins);
      let current: CORSRule[] | undefined;
      try {
        current = (await client.send(new GetBucketCorsCommand({ Bucket: o.hot }))).CORSRules;
      } catch (err) {
        if (isNotImplemented(err)) throw err;
        if (!/NoSuchCORSConfiguration|NoSuchCors/i.test(errorName(err))) throw err;
      }
      if (sameCors(current, want)) return 'unchanged';
      await client.send(new PutBucketCorsCommand({ Bucket: o.hot, CORSConfiguration: { CORSRules: want } }));
      return 'applied';
    }),
  );

  // Both buckets: default server-side encryption (SSE-S3).
  for (const bucket of [o.hot, o.archive]) {
    steps.push(
      await applySetting(bucket, 'encryption', 'objects are stored with the server default', async () => {
        try {
          const cur = await client.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
          const algo = cur.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm;
          if (algo) return 'unchanged';
        } catch (err) {
          if (isNotImplemented(err)) throw err;
          if (!/ServerSideEncryptionConfigurationNotFound|NotFound/i.test(errorName(err))) throw err;
        }
        await client.send(
          new PutBucketEncryptionCommand({
            Bucket: bucket,
            ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
          }),
        );
        return 'applied';
      }),
    );
  }
  return steps;

  async function applySetting(
    bucket: string,
    setting: BucketStep['setting'],
    coveredBy: string,
    fn: () => Promise<'applied' | 'unchanged'>,
  ): Promise<BucketStep> {
    const action = await call(`${setting} on ${bucket}`, async () => {
      try {
        return await fn();
      } catch (err) {
        if (isNotImplemented(err)) return 'unsupported' as const;
        throw err;
      }
    });
    const message =
      action === 'unsupported'
        ? `${bucket}: ${setting}: not supported by this server; ${coveredBy}`
        : action === 'applied'
          ? `${bucket}: ${setting} applied`
          : `${bucket}: ${setting} unchanged`;
    return { bucket, setting, action, message };
  }
}

async function ensureBucket(client: S3Client, endpoint: string | undefined, bucket: string, region: string): Promise<BucketStep> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return { bucket, setting: 'bucket', action: 'exists', message: `bucket '${bucket}' exists` };
  } catch (err) {
    const name = errorName(err);
    if (name !== 'NotFound' && name !== 'NoSuchBucket' && httpStatus(err) !== 404) throw s3Error(err, endpoint, `HeadBucket ${bucket}`);
  }
  try {
    await client.send(
      new CreateBucketCommand({
        Bucket: bucket,
        CreateBucketConfiguration: region === 'us-east-1' ? undefined : { LocationConstraint: region as never },
      }),
    );
    return { bucket, setting: 'bucket', action: 'created', message: `Created bucket '${bucket}'` };
  } catch (err) {
    if (errorName(err) === 'BucketAlreadyOwnedByYou') {
      return { bucket, setting: 'bucket', action: 'exists', message: `bucket '${bucket}' exists` };
    }
    throw s3Error(err, endpoint, `CreateBucket ${bucket}`);
  }
}

export interface S3Health {
  rttMs: number;
  server: string | undefined;
  buckets: Record<string, boolean>;
}

/** Reachability, round trip and which of our buckets exist. */
export async function s3Health(client: S3Client, endpoint: string | undefined, buckets: string[]): Promise<S3Health> {
  const t0 = performance.now();
  try {
    await client.send(new ListBucketsCommand({}));
  } catch (err) {
    throw s3Error(err, endpoint, 'ListBuckets');
  }
  const rttMs = performance.now() - t0;
  const present: Record<string, boolean> = {};
  await Promise.all(
    buckets.map(async (b) => {
      try {
        await client.send(new HeadBucketCommand({ Bucket: b }));
        present[b] = true;
      } catch (err) {
        const name = errorName(err);
        if (name === 'NotFound' || name === 'NoSuchBucket' || httpStatus(err) === 404) present[b] = false;
        else throw s3Error(err, endpoint, `HeadBucket ${b}`);
      }
    }),
  );
  return { rttMs, server: serverHeader(client), buckets: present };
}
