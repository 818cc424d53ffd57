/**
 * Collections and indexes of the registry, created capability-aware: each
 * feature the server lacks (time-series, TTL, vector search) gets the best
 * fallback that works everywhere, reported in one line. Idempotent.
 */
import type { Db, IndexDescription } from 'mongodb';
import { guard, isUnsupported, reasonOf, type MongoConnection } from './mongo.js';

export const FILES = 'files_metadata';
export const ARCHIVE_LOG = 'archive_log';
export const USAGE = 'user_usage';
export const LOCKS = 'job_locks';
export const DOC_LOCKS = 'doc_locks';
export const VECTOR_INDEX = 'embedding_vector_index';
/** TTL is a backstop: purge-run deletes the archived bytes first; the TTL index only
 * removes records that purge-run somehow missed, this long after their expiry. */
export const TTL_GRACE_SECONDS = 7 * 24 * 3600;

/** created: made now; exists: already there; fallback: made a substitute now;
 * fallback-exists: the substitute is already there; unsupported: nothing to make, the fallback is at query time. */
export type InitAction = 'created' | 'exists' | 'fallback' | 'fallback-exists' | 'unsupported';

export interface InitStep {
  target: string;
  action: InitAction;
  /** One line saying what happened, in the words the README uses. */
  message: string;
}

export interface InitMongoReport {
  database: string;
  changed: boolean;
  steps: InitStep[];
}

interface IndexSpec {
  name: string;
  key: IndexDescription['key'];
  unique?: boolean;
}

const FILE_INDEXES: IndexSpec[] = [
  { name: 'user_id_1_upload_timestamp_-1', key: { user_id: 1, upload_timestamp: -1 } },
  { name: 's3_key_1', key: { s3_key: 1 }, unique: true },
  { name: 'is_archived_1_archive_timestamp_1', key: { is_archived: 1, archive_timestamp: 1 } },
  { name: 'status_1_lease_until_1', key: { status: 1, lease_until: 1 } },
];

async function collectionNames(db: Db): Promise<Map<string, Record<string, unknown>>> {
  const list = await db.listCollections({}, { nameOnly: false }).toArray();
  return new Map(list.map((c) => [c.name, (c as { options?: Record<string, unknown> }).options ?? {}]));
}

async function indexNames(db: Db, coll: string): Promise<Map<string, Record<string, unknown>>> {
  const list = await db.collection(coll).listIndexes().toArray();
  return new Map(list.map((i) => [String(i.name), i as Record<string, unknown>]));
}

/** Creates what is missing and reports each collection and index. */
export async function initMongo(conn: MongoConnection, opts: { vectorDim: number }): Promise<InitMongoReport> {
  await conn.connect();
  const db = conn.db;
  const steps: InitStep[] = [];
  const run = <T>(fn: () => Promise<T>) => guard(conn.uri, fn);
  const existing = await run(() => collectionNames(db));

  for (const name of [FILES, USAGE, LOCKS, DOC_LOCKS]) {
    if (existing.has(name)) {
      steps.push({ target: name, action: 'exists', message: `collection '${name}' exists` });
    } else {
      await run(() => db.createCollection(name));
      steps.push({ target: name, action: 'created', message: `Created collection '${name}'` });
    }
  }

  // archive_log: time-series where supported, else a plain collection indexed on timestamp.
  const logOpts = existing.get(ARCHIVE_LOG);
  if (logOpts) {
    const ts = Boolean(logOpts.timeseries);
    steps.push({
      target: ARCHIVE_LOG,
      action: ts ? 'exists' : 'fallback-exists',
      message: ts ? `collection '${ARCHIVE_LOG}' exists (time-series)` : `collection '${ARCHIVE_LOG}' exists (plain, indexed on timestamp)`,
    });
  } else {
    try {
      await db.createCollection(ARCHIVE_LOG, { timeseries: { timeField: 'timestamp', metaField: 'operation', granularity: 'hours' } });
      steps.push({ target: ARCHIVE_LOG, action: 'created', message: `Created collection '${ARCHIVE_LOG}' (time-series)` });
    } catch (err) {
      if (!isUnsupported(err)) throw err;
      await run(() => db.createCollection(ARCHIVE_LOG));
      steps.push({
        target: ARCHIVE_LOG,
        action: 'fallback',
        message: `Created collection '${ARCHIVE_LOG}'; ${ARCHIVE_LOG}: time-series not supported by this server; created a plain collection indexed on timestamp`,
      });
    }
  }
  const logIdx = await run(() => indexNames(db, ARCHIVE_LOG));
  if (!logOpts?.timeseries && !logIdx.has('timestamp_-1') && !(await isTimeSeries(db))) {
    await run(() => db.collection(ARCHIVE_LOG).createIndex({ timestamp: -1 }, { name: 'timestamp_-1' }));
    steps.push({ target: `${ARCHIVE_LOG}.timestamp_-1`, action: 'created', message: `Created index timestamp_-1 on '${ARCHIVE_LOG}'` });
  }

  const idx = await run(() => indexNames(db, FILES));
  for (const spec of FILE_INDEXES) {
    if (idx.has(spec.name)) {
      steps.push({ target: `${FILES}.${spec.name}`, action: 'exists', message: `index ${spec.name} exists` });
      continue;
    }
    await run(() => db.collection(FILES).createIndex(spec.key, { name: spec.name, unique: spec.unique ?? false }));
    steps.push({ target: `${FILES}.${spec.name}`, action: 'created', message: `Created index ${spec.name}${spec.unique ? ' (unique)' : ''}` });
  }

  // ttl_expire_at: a TTL index where supported, else a plain index that purge-run uses.
  const ttl = idx.get('ttl_expire_at_1');
  if (ttl) {
    const isTtl = ttl.expireAfterSeconds !== undefined;
    steps.push({
      target: `${FILES}.ttl_expire_at_1`,
      action: isTtl ? 'exists' : 'fallback-exists',
      message: isTtl
        ? 'index ttl_expire_at_1 exists (TTL)'
        : 'index ttl_expire_at_1 exists (plain: this server has no TTL indexes; purge-run deletes expired files)',
    });
  } else {
    try {
      await db.collection(FILES).createIndex({ ttl_expire_at: 1 }, { name: 'ttl_expire_at_1', expireAfterSeconds: TTL_GRACE_SECONDS });
      steps.push({ target: `${FILES}.ttl_expire_at_1`, action: 'created', message: 'Created index ttl_expire_at_1 (TTL, 7-day grace after purge-run)' });
    } catch (err) {
      if (!isUnsupported(err)) throw err;
      await run(() => db.collection(FILES).createIndex({ ttl_expire_at: 1 }, { name: 'ttl_expire_at_1' }));
      steps.push({
        target: `${FILES}.ttl_expire_at_1`,
        action: 'fallback',
        message: 'ttl_expire_at: TTL indexes not supported by this server; created a plain index, purge-run deletes expired files',
      });
    }
  }

  steps.push(await ensureVectorIndex(db, opts.vectorDim));

  return {
    database: db.databaseName,
    changed: steps.some((s) => s.action === 'created' || s.action === 'fallback'),
    steps,
  };
}

async function isTimeSeries(db: Db): Promise<boolean> {
  const [c] = await db.listCollections({ name: ARCHIVE_LOG }).toArray();
  return Boolean((c as { options?: { timeseries?: unknown } } | undefined)?.options?.timeseries);
}

/** Atlas vector search index on embedding_vector (cosine, filter on user_id), or the exact-search fallback. */
async function ensureVectorIndex(db: Db, dim: number): Promise<InitStep> {
  const target = `${FILES}.${VECTOR_INDEX}`;
  const fallback = (why: string): InitStep => ({
    target,
    action: 'unsupported',
    message: `embedding_vector: vector search not supported by this server (${why}); similarity search uses an exact cosine scan over the user's files (index user_id_1_upload_timestamp_-1)`,
  });
  let list: Array<Record<string, unknown>>;
  try {
    list = (await db.collection(FILES).listSearchIndexes().toArray()) as Array<Record<string, unknown>>;
  } catch (err) {
    if (!isUnsupported(err)) throw err;
    return fallback(shortReason(err));
  }
  if (list.some((i) => i.name === VECTOR_INDEX)) {
    return { target, action: 'exists', message: `vector search index ${VECTOR_INDEX} exists` };
  }
  try {
    await db.collection(FILES).createSearchIndex({
      name: VECTOR_INDEX,
      type: 'vectorSearch',
      definition: {
        fields: [
          { type: 'vector', path: 'embedding_vector', numDimensions: dim, similarity: 'cosine' },
          { type: 'filter', path: 'user_id' },
        ],
      },
    });
    return { target, action: 'created', message: `Created vector search index ${VECTOR_INDEX} (cosine, ${dim} dimensions, filter user_id)` };
  } catch (err) {
    if (!isUnsupported(err)) throw err;
    return fallback(shortReason(err));
  }
}

function shortReason(err: unknown): string {
  const r = reasonOf(err);
  if (/no such command|CommandNotFound/i.test(r)) return 'no search index commands';
  return r.length > 80 ? `${r.slice(0, 77)}...` : r;
}
