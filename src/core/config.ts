/**
 * Configuration: parsed and validated once, at start, from (lowest to highest
 * precedence) built-in defaults, a `.env` file, the process environment and
 * global CLI flags. Nothing here runs at import time; callers pass the
 * environment in, so tests build configs without touching process.env.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { ConfigError } from './errors.js';

const STORAGE_TYPES = ['aws', 'minio', 's3-compatible'] as const;
const ENVS = ['development', 'test', 'staging', 'production'] as const;
const STORAGE_CLASSES = ['GLACIER', 'DEEP_ARCHIVE', 'GLACIER_IR', 'STANDARD_IA'] as const;
const EMBEDDING_PROVIDERS = ['local', 'http'] as const;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Variables whose values are never printed, not even in errors. */
export const SECRET_VARS = new Set([
  'AWS_SECRET_ACCESS_KEY',
  'JWT_SECRET',
  'WEBHOOK_SECRET',
  'EMBEDDING_API_KEY',
]);

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const num = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+(\.\d+)?$/)
    .transform(Number)
    .pipe(z.number().min(min).max(max));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const url = (protocols: string[]) =>
  z
    .string()
    .trim()
    .refine((v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    });

// S3 bucket naming rules, in short: 3-63 chars, lowercase letters, digits, dots, hyphens.
const bucket = z
  .string()
  .trim()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/);

const csv = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );

const cron = z.string().trim().regex(/^(\S+\s+){4,5}\S+$|^off$/);

interface VarSpec {
  schema: z.ZodType;
  allowed: string;
  default?: string;
}

/** Every variable biostore reads, with its default and a phrase saying what is allowed. */
export const VARS = {
  PORT: { schema: int(1, 65535), allowed: 'a TCP port 1-65535', default: '8004' },
  ENV: { schema: z.enum(ENVS), allowed: ENVS.join(' | '), default: 'development' },
  LOG_LEVEL: { schema: z.enum(LOG_LEVELS), allowed: LOG_LEVELS.join(' | '), default: 'info' },
  MONGODB_URI: {
    schema: url(['mongodb:', 'mongodb+srv:']),
    allowed: 'a mongodb:// or mongodb+srv:// URI',
    default: 'mongodb://127.0.0.1:27017',
  },
  MONGO_DB_NAME: {
    schema: z.string().trim().regex(/^[A-Za-z0-9_-]{1,63}$/),
    allowed: 'letters, digits, _ and -, at most 63 characters',
    default: 'bio_ai',
  },
  STORAGE_TYPE: { schema: z.enum(STORAGE_TYPES), allowed: STORAGE_TYPES.join(' | '), default: 'aws' },
  AWS_ACCESS_KEY_ID: { schema: z.string().trim().min(1), allowed: 'an access key id' },
  AWS_SECRET_ACCESS_KEY: { schema: z.string().min(1), allowed: 'a secret access key' },
  AWS_REGION: {
    schema: z.string().trim().regex(/^[a-z0-9-]{2,32}$/),
    allowed: 'a region name such as us-east-1',
    default: 'us-east-1',
  },
  S3_ENDPOINT_URL: { schema: url(['http:', 'https:']), allowed: 'an http(s) URL' },
  S3_FORCE_PATH_STYLE: { schema: bool, allowed: 'true | false' },
  BUCKET_HOT: { schema: bucket, allowed: 'an S3 bucket name (3-63 lowercase letters, digits, . and -)', default: 'bio-ai-hot' },
  BUCKET_ARCHIVE: {
    schema: bucket,
    allowed: 'an S3 bucket name (3-63 lowercase letters, digits, . and -)',
    default: 'bio-ai-archive',
  },
  CORS_ORIGINS: { schema: csv, allowed: 'comma-separated origins, or *', default: '*' },
  VECTOR_EMBEDDING_DIM: { schema: int(1, 8192), allowed: 'a whole number 1-8192', default: '256' },
  VECTOR_SIMILARITY_THRESHOLD: { schema: num(0, 1), allowed: 'a number between 0 and 1', default: '0.75' },
  ARCHIVE_THRESHOLD_DAYS: { schema: int(1, 36500), allowed: 'a whole number of days >= 1', default: '30' },
  RETENTION_DAYS: { schema: int(1, 36500), allowed: 'a whole number of days >= 1', default: '90' },
  ARCHIVE_STORAGE_CLASS: { schema: z.enum(STORAGE_CLASSES), allowed: STORAGE_CLASSES.join(' | '), default: 'GLACIER' },
  CDN_DOMAIN: {
    schema: z.string().trim().regex(/^(https?:\/\/)?[A-Za-z0-9.-]+(:\d+)?\/?$/),
    allowed: 'a host name such as cdn.example.com',
  },
  REDIS_URL: { schema: url(['redis:', 'rediss:']), allowed: 'a redis:// or rediss:// URL' },
  MAX_UPLOAD_BYTES: { schema: int(1, 5 * 1024 ** 3), allowed: 'a byte count 1..5 GiB', default: String(25 * 1024 * 1024) },
  QUOTA_BYTES_PER_USER: { schema: int(0, Number.MAX_SAFE_INTEGER), allowed: 'a byte count (0 = unlimited)', default: String(5 * 1024 ** 3) },
  QUOTA_FILES_PER_USER: { schema: int(0, Number.MAX_SAFE_INTEGER), allowed: 'a file count (0 = unlimited)', default: '10000' },
  UPLOAD_URL_TTL_SECONDS: { schema: int(1, 7 * 24 * 3600), allowed: 'seconds, 1..604800', default: '60' },
  DOWNLOAD_URL_TTL_SECONDS: { schema: int(1, 7 * 24 * 3600), allowed: 'seconds, 1..604800', default: '300' },
  JWT_SECRET: { schema: z.string().min(16), allowed: 'a shared secret of at least 16 characters' },
  JWT_JWKS_URL: { schema: url(['http:', 'https:']), allowed: 'an http(s) URL of a JWKS document' },
  JWT_ISSUER: { schema: z.string().trim().min(1), allowed: 'the expected iss claim' },
  JWT_AUDIENCE: { schema: z.string().trim().min(1), allowed: 'the expected aud claim' },
  WEBHOOK_SECRET: { schema: z.string().min(16), allowed: 'a shared secret of at least 16 characters' },
  OPTIMIZER_CONCURRENCY: { schema: int(1, 64), allowed: 'a whole number 1-64', default: '2' },
  OPTIMIZER_MAX_PIXELS: { schema: int(1, 1_000_000_000), allowed: 'a pixel count', default: String(50_000_000) },
  OPTIMIZER_TIMEOUT_SECONDS: { schema: int(1, 3600), allowed: 'seconds, 1..3600', default: '30' },
  OPTIMIZER_MAX_ATTEMPTS: { schema: int(1, 100), allowed: 'a whole number 1-100', default: '3' },
  OPTIMIZER_QUALITY: { schema: int(1, 100), allowed: 'WebP quality 1-100', default: '80' },
  OPTIMIZER_EFFORT: { schema: int(0, 6), allowed: 'libwebp effort 0-6 (higher: smaller, slower)', default: '2' },
  OPTIMIZER_LEASE_SECONDS: { schema: int(5, 3600), allowed: 'seconds, 5..3600', default: '120' },
  THUMBNAIL_SIZE: { schema: int(16, 2048), allowed: 'pixels on the long side, 16-2048', default: '320' },
  EMBEDDING_PROVIDER: { schema: z.enum(EMBEDDING_PROVIDERS), allowed: EMBEDDING_PROVIDERS.join(' | '), default: 'local' },
  EMBEDDING_MODEL: { schema: z.string().trim().min(1), allowed: 'a model name', default: 'biostore-local-v1' },
  EMBEDDING_URL: { schema: url(['http:', 'https:']), allowed: 'an http(s) URL' },
  EMBEDDING_API_KEY: { schema: z.string().min(1), allowed: 'an API key' },
  SCHEDULE_ARCHIVE: { schema: cron, allowed: 'a cron expression, or off', default: '0 3 * * *' },
  SCHEDULE_PURGE: { schema: cron, allowed: 'a cron expression, or off', default: '30 3 * * *' },
  SCHEDULE_RECONCILE: { schema: cron, allowed: 'a cron expression, or off', default: '*/1 * * * *' },
  SCHEDULE_REHYDRATE: { schema: cron, allowed: 'a cron expression, or off', default: '*/5 * * * *' },
} satisfies Record<string, VarSpec>;

export type VarName = keyof typeof VARS;
type Parsed<K extends VarName> = z.output<(typeof VARS)[K]['schema']>;

/** The validated configuration, with defaults applied. */
export interface Config {
  port: number;
  env: (typeof ENVS)[number];
  logLevel: (typeof LOG_LEVELS)[number];
  mongo: { uri: string; dbName: string };
  s3: {
    storageType: (typeof STORAGE_TYPES)[number];
    region: string;
    endpoint: string | undefined;
    forcePathStyle: boolean;
    accessKeyId: string | undefined;
    secretAccessKey: string | undefined;
    bucketHot: string;
    bucketArchive: string;
    corsOrigins: string[];
  };
  redisUrl: string | undefined;
  cdnDomain: string | undefined;
  vector: { dim: number; similarityThreshold: number };
  embedding: {
    provider: (typeof EMBEDDING_PROVIDERS)[number];
    model: string;
    url: string | undefined;
    apiKey: string | undefined;
  };
  lifecycle: { archiveThresholdDays: number; retentionDays: number; archiveStorageClass: (typeof STORAGE_CLASSES)[number] };
  upload: {
    maxBytes: number;
    quotaBytes: number;
    quotaFiles: number;
    urlTtlSeconds: number;
    downloadTtlSeconds: number;
  };
  auth: {
    jwtSecret: string | undefined;
    jwksUrl: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
    webhookSecret: string | undefined;
  };
  optimizer: {
    concurrency: number;
    maxPixels: number;
    timeoutSeconds: number;
    maxAttempts: number;
    thumbnailSize: number;
    quality: number;
    effort: number;
    leaseSeconds: number;
  };
  schedule: { archive: string; purge: string; reconcile: string; rehydrate: string };
}

export interface LoadConfigOptions {
  /** The process environment (pass process.env from the composition root). */
  env: Record<string, string | undefined>;
  /** Values from global CLI flags; they win over everything else. */
  overrides?: Partial<Record<VarName, string | undefined>>;
  /** A .env file to read. Defaults to `.env` in `cwd` when present. */
  envFile?: string;
  cwd?: string;
}

/** Reads the .env file (if any) without touching process.env. */
function readEnvFile(path: string, explicit: boolean): Record<string, string> {
  if (!existsSync(path)) {
    if (explicit) throw new ConfigError(`env file ${path} does not exist; check --env-file or create it`);
    return {};
  }
  try {
    return parseDotenv(readFileSync(path));
  } catch (err) {
    throw new ConfigError(`env file ${path} could not be read: ${(err as Error).message}`);
  }
}

function show(name: string, value: string): string {
  if (SECRET_VARS.has(name)) return '(hidden)';
  const v = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  return JSON.stringify(redactUri(v));
}

/** Hides the password in a URI such as mongodb://user:pass@host. */
export function redactUri(uri: string): string {
  return uri.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@');
}

/** Parses and validates everything; throws ConfigError with one line on the first bad value. */
export function loadConfig(opts: LoadConfigOptions): Config {
  const cwd = opts.cwd ?? process.cwd();
  const fileVars = readEnvFile(opts.envFile ?? `${cwd}/.env`, opts.envFile !== undefined);
  const raw: Record<string, string | undefined> = {};
  for (const name of Object.keys(VARS)) {
    const fromFlag = opts.overrides?.[name as VarName];
    const fromEnv = opts.env[name];
    const fromFile = fileVars[name];
    const pick = [fromFlag, fromEnv, fromFile].find((v) => v !== undefined && v !== '');
    raw[name] = pick;
  }

  const get = <K extends VarName>(name: K): Parsed<K> | undefined => {
    const spec: VarSpec = VARS[name];
    const value = raw[name] ?? spec.default;
    if (value === undefined) return undefined;
    const res = spec.schema.safeParse(value);
    if (!res.success) {
      throw new ConfigError(`${name}=${show(name, value)} is invalid: expected ${spec.allowed}`);
    }
    return res.data as Parsed<K>;
  };
  const req = <K extends VarName>(name: K): Parsed<K> => get(name) as Parsed<K>;

  const storageType = req('STORAGE_TYPE');
  const endpoint = get('S3_ENDPOINT_URL');
  if (storageType !== 'aws' && !endpoint) {
    throw new ConfigError(`S3_ENDPOINT_URL is required when STORAGE_TYPE=${storageType}; set it to the server's URL`);
  }
  const accessKeyId = get('AWS_ACCESS_KEY_ID');
  const secretAccessKey = get('AWS_SECRET_ACCESS_KEY');
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    throw new ConfigError('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (or neither, to use the AWS default chain)');
  }
  const archiveThresholdDays = req('ARCHIVE_THRESHOLD_DAYS');
  const retentionDays = req('RETENTION_DAYS');
  if (retentionDays <= archiveThresholdDays) {
    throw new ConfigError(
      `RETENTION_DAYS=${retentionDays} must be greater than ARCHIVE_THRESHOLD_DAYS=${archiveThresholdDays}`,
    );
  }
  const bucketHot = req('BUCKET_HOT');
  const bucketArchive = req('BUCKET_ARCHIVE');
  if (bucketHot === bucketArchive) {
    throw new ConfigError(`BUCKET_HOT and BUCKET_ARCHIVE are both "${bucketHot}"; they must be different buckets`);
  }
  const provider = req('EMBEDDING_PROVIDER');
  const embeddingUrl = get('EMBEDDING_URL');
  if (provider === 'http' && !embeddingUrl) {
    throw new ConfigError('EMBEDDING_URL is required when EMBEDDING_PROVIDER=http');
  }

  return {
    port: req('PORT'),
    env: req('ENV'),
    logLevel: req('LOG_LEVEL'),
    mongo: { uri: req('MONGODB_URI'), dbName: req('MONGO_DB_NAME') },
    s3: {
      storageType,
      region: req('AWS_REGION'),
      endpoint,
      forcePathStyle: get('S3_FORCE_PATH_STYLE') ?? storageType !== 'aws',
      accessKeyId,
      secretAccessKey,
      bucketHot,
      bucketArchive,
      corsOrigins: req('CORS_ORIGINS'),
    },
    redisUrl: get('REDIS_URL'),
    cdnDomain: get('CDN_DOMAIN'),
    vector: { dim: req('VECTOR_EMBEDDING_DIM'), similarityThreshold: req('VECTOR_SIMILARITY_THRESHOLD') },
    embedding: {
      provider,
      model: req('EMBEDDING_MODEL'),
      url: embeddingUrl,
      apiKey: get('EMBEDDING_API_KEY'),
    },
    lifecycle: { archiveThresholdDays, retentionDays, archiveStorageClass: req('ARCHIVE_STORAGE_CLASS') },
    upload: {
      maxBytes: req('MAX_UPLOAD_BYTES'),
      quotaBytes: req('QUOTA_BYTES_PER_USER'),
      quotaFiles: req('QUOTA_FILES_PER_USER'),
      urlTtlSeconds: req('UPLOAD_URL_TTL_SECONDS'),
      downloadTtlSeconds: req('DOWNLOAD_URL_TTL_SECONDS'),
    },
    auth: {
      jwtSecret: get('JWT_SECRET'),
      jwksUrl: get('JWT_JWKS_URL'),
      issuer: get('JWT_ISSUER'),
      audience: get('JWT_AUDIENCE'),
      webhookSecret: get('WEBHOOK_SECRET'),
    },
    optimizer: {
      concurrency: req('OPTIMIZER_CONCURRENCY'),
      maxPixels: req('OPTIMIZER_MAX_PIXELS'),
      timeoutSeconds: req('OPTIMIZER_TIMEOUT_SECONDS'),
      maxAttempts: req('OPTIMIZER_MAX_ATTEMPTS'),
      thumbnailSize: req('THUMBNAIL_SIZE'),
      quality: req('OPTIMIZER_QUALITY'),
      effort: req('OPTIMIZER_EFFORT'),
      leaseSeconds: req('OPTIMIZER_LEASE_SECONDS'),
    },
    schedule: {
      archive: req('SCHEDULE_ARCHIVE'),
      purge: req('SCHEDULE_PURGE'),
      reconcile: req('SCHEDULE_RECONCILE'),
      rehydrate: req('SCHEDULE_REHYDRATE'),
    },
  };
}

/** The configuration as safe to print: secrets masked, URI passwords hidden. */
export function publicConfig(c: Config): Record<string, unknown> {
  return {
    env: c.env,
    port: c.port,
    mongodb_uri: redactUri(c.mongo.uri),
    mongo_db_name: c.mongo.dbName,
    storage_type: c.s3.storageType,
    s3_endpoint_url: c.s3.endpoint ?? '(AWS default)',
    aws_region: c.s3.region,
    bucket_hot: c.s3.bucketHot,
    bucket_archive: c.s3.bucketArchive,
    redis_url: c.redisUrl ? redactUri(c.redisUrl) : null,
    archive_threshold_days: c.lifecycle.archiveThresholdDays,
    retention_days: c.lifecycle.retentionDays,
  };
}
