/**
 * The daemon's HTTP API (Fastify): thin routes over the same core the CLI
 * uses. Bodies are validated by JSON schema, errors are JSON
 * `{"error":{"code","message"}}` with the right status, never a stack trace.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { actingUser, Authenticator, ForbiddenError, UnauthorizedError, type Principal } from '../core/auth.js';
import type { Context } from '../core/context.js';
import {
  BiostoreError,
  ConflictError,
  InvalidInputError,
  NotFoundError,
  QuotaExceededError,
  UnavailableError,
} from '../core/errors.js';
import { publicFile } from '../core/files.js';
import { collectStatus } from '../core/status.js';
import { deleteFile, downloadUrl, getOwnedFile, registerUpload, signUpload } from '../core/uploads.js';
import { registerArchiveRoutes } from './archive-routes.js';
import { registerSearchRoutes } from './search-routes.js';

export interface AppOptions {
  /** Body limit for API JSON (bytes). */
  bodyLimit?: number;
  /** Pino logger options for Fastify; false for none. */
  logger?: boolean | { level: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const errorBody = (code: string, message: string) => ({ error: { code, message } });

/** HTTP status for a project error. */
export function statusOf(err: unknown): number {
  if (err instanceof UnauthorizedError) return 401;
  if (err instanceof ForbiddenError) return 403;
  if (err instanceof InvalidInputError) return err.status;
  if (err instanceof QuotaExceededError) return 403;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof UnavailableError) return 503;
  return 500;
}

const signSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['filename', 'content_type'],
  properties: {
    filename: { type: 'string', minLength: 1, maxLength: 1024 },
    content_type: { type: 'string', minLength: 1, maxLength: 100 },
    use_case: { type: 'string', minLength: 1, maxLength: 32 },
    size_bytes: { type: 'integer', minimum: 1 },
    checksum_sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
    user_id: { type: 'string', minLength: 1, maxLength: 64 },
    mode: { type: 'string', enum: ['put', 'post'] },
  },
} as const;

interface SignBody {
  filename: string;
  content_type: string;
  use_case?: string;
  size_bytes?: number;
  checksum_sha256?: string;
  user_id?: string;
  mode?: 'put' | 'post';
}

interface S3EventRecord {
  eventName?: string;
  s3?: { bucket?: { name?: string }; object?: { key?: string } };
}

export function buildApp(ctx: Context, opts: AppOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: opts.logger ?? { level: ctx.config.logLevel },
    bodyLimit: opts.bodyLimit ?? 16 * 1024,
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  const auth = new Authenticator(ctx.config.auth);
  const metrics = ctx.metrics;

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unknown';
    metrics?.requests.inc({ route, method: req.method, status: String(reply.statusCode) });
    metrics?.latency.observe({ route, method: req.method }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 500) req.log.error({ route, status: reply.statusCode }, 'request failed');
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    const e = err as { statusCode?: number; code?: string; validation?: unknown; message?: string };
    if (err instanceof BiostoreError) {
      const status = statusOf(err);
      if (status >= 500) req.log.error({ err: err.message }, 'request failed');
      return reply.status(status).send(errorBody(err.code, err.message));
    }
    if (e.validation) return reply.status(400).send(errorBody('invalid_body', `request body ${e.message ?? 'is invalid'}`));
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.status(413).send(errorBody('body_too_large', 'request body is too large'));
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(415).send(errorBody('unsupported_media_type', 'send the body as application/json'));
    }
    if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e.statusCode === 400 && /JSON/i.test(e.message ?? ''))) {
      return reply.status(400).send(errorBody('invalid_json', 'request body is not valid JSON'));
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.status(e.statusCode).send(errorBody('bad_request', (e.message ?? 'bad request').split('\n')[0]!));
    }
    req.log.error({ err: e.message }, 'unexpected error');
    return reply.status(500).send(errorBody('internal', 'internal error'));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`));
  });

  const authenticate = async (req: FastifyRequest) => {
    req.principal = await auth.verify(req.headers.authorization);
  };

  // ---- probes and metrics ----
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const s = await collectStatus(ctx, 3000);
    const body = { ready: s.dependencies.mongodb.ok && s.dependencies.s3.ok, mongodb: s.dependencies.mongodb.ok, s3: s.dependencies.s3.ok };
    return reply.status(body.ready ? 200 : 503).send(body);
  });
  app.get('/metrics', async (_req, reply) => {
    if (!metrics) return reply.status(404).send(errorBody('not_found', 'metrics are disabled'));
    try {
      const pending = await ctx.registry.count({ status: { $in: ['pending', 'uploaded', 'processing'] } });
      metrics.queueDepth.set({ state: 'waiting' }, pending);
    } catch {
      // metrics stay available when MongoDB is down
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  // ---- uploads ----
  app.post<{ Body: SignBody }>('/api/v1/upload/sign', { schema: { body: signSchema }, preHandler: authenticate }, async (req, reply) => {
    const b = req.body;
    const result = await signUpload(ctx, {
      userId: actingUser(req.principal!, b.user_id),
      filename: b.filename,
      contentType: b.content_type,
      useCase: b.use_case,
      sizeBytes: b.size_bytes,
      checksumSha256: b.checksum_sha256,
      mode: b.mode,
    });
    metrics?.signs.inc();
    return reply.status(201).send(result);
  });

  app.get<{ Params: { id: string }; Querystring: { variant?: string; user_id?: string } }>(
    '/api/v1/files/:id/download-url',
    {
      preHandler: authenticate,
      schema: {
        querystring: {
          type: 'object',
          properties: { variant: { type: 'string', enum: ['gallery', 'thumbnail', 'original'] }, user_id: { type: 'string' } },
        },
      },
    },
    async (req) => {
      const user = ownerScope(req.principal!, req.query.user_id);
      const rec = await getOwnedFile(ctx, req.params.id, user);
      return { file_id: rec._id, ...(await downloadUrl(ctx, rec, (req.query.variant as 'gallery' | undefined) ?? 'gallery')) };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { user_id?: string } }>('/api/v1/files/:id', { preHandler: authenticate }, async (req) => {
    const rec = await getOwnedFile(ctx, req.params.id, ownerScope(req.principal!, req.query.user_id));
    return publicFile(rec);
  });

  app.delete<{ Params: { id: string }; Querystring: { user_id?: string } }>('/api/v1/files/:id', { preHandler: authenticate }, async (req, reply) => {
    let rec;
    try {
      rec = await getOwnedFile(ctx, req.params.id, ownerScope(req.principal!, req.query.user_id));
    } catch (err) {
      // Deleting twice is harmless: a file that is already gone answers 204 too.
      if (err instanceof NotFoundError) return reply.status(204).send();
      throw err;
    }
    await deleteFile(ctx, rec);
    return reply.status(204).send();
  });

  registerSearchRoutes(app, ctx, authenticate);
  registerArchiveRoutes(app, ctx, authenticate);

  // ---- S3 event notifications (AWS Records format) ----
  app.post<{ Body: { Records?: S3EventRecord[] } | unknown; Querystring: { token?: string } }>(
    '/api/v1/webhooks/s3',
    { bodyLimit: 1024 * 1024 },
    async (req, reply) => {
      checkWebhookSecret(ctx.config.auth.webhookSecret, req, req.query.token);
      const records = (req.body as { Records?: unknown })?.Records;
      if (!Array.isArray(records)) {
        // versitygw sends a test event at start-up; anything without Records is acknowledged and ignored.
        return reply.status(200).send({ accepted: 0 });
      }
      const results: Record<string, number> = {};
      for (const r of records as S3EventRecord[]) {
        const bucket = r.s3?.bucket?.name;
        const rawKey = r.s3?.object?.key;
        if (!r.eventName?.startsWith('ObjectCreated') && !r.eventName?.startsWith('s3:ObjectCreated')) continue;
        if (bucket !== ctx.config.s3.bucketHot || !rawKey) continue;
        const key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
        if (!key.startsWith('raw/')) continue;
        const { outcome } = await registerUpload(ctx, key);
        results[outcome] = (results[outcome] ?? 0) + 1;
      }
      return reply.status(200).send({ accepted: records.length, results });
    },
  );

  return app;
}

/** For reads and deletes: a user sees their own files; a service token may name a user or see all. */
function ownerScope(p: Principal, requested: string | undefined): string | null {
  if (p.isService) return requested ?? null;
  return actingUser(p, requested);
}

function checkWebhookSecret(secret: string | undefined, req: FastifyRequest, queryToken: string | undefined): void {
  if (!secret) throw new UnauthorizedError('the S3 webhook is disabled: set WEBHOOK_SECRET');
  const header = req.headers['x-biostore-webhook-secret'];
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const given = (Array.isArray(header) ? header[0] : header) ?? bearer ?? queryToken;
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(secret);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new UnauthorizedError('bad or missing webhook secret');
}
