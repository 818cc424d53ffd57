/** Starts the daemon's app on a free loopback port against a test file's own database and buckets. */
import type { FastifyInstance } from 'fastify';
import { mintToken } from '../../src/core/auth.js';
import { Context, type Clock } from '../../src/core/context.js';
import { Metrics } from '../../src/core/metrics.js';
import { buildApp } from '../../src/daemon/app.js';
import { initMongo } from '../../src/storage/mongo-schema.js';
import { initBuckets } from '../../src/storage/s3.js';
import { cleanup, testConfig } from './stack.js';

export interface TestDaemon {
  ctx: Context;
  app: FastifyInstance;
  url: string;
  token(user: string, scopes?: string[], ttlSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

/** Initialises the registry and buckets of `env`, then listens on 127.0.0.1:0. */
export async function startDaemon(env: Record<string, string>, clock?: Clock, opts: { init?: boolean } = {}): Promise<TestDaemon> {
  const ctx = new Context(testConfig(env), { clock });
  ctx.metrics = new Metrics(false);
  if (opts.init !== false) await initStores(ctx);
  const app = buildApp(ctx, { logger: false });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    ctx,
    app,
    url,
    token: async (user, scopes = [], ttlSeconds = 600) =>
      (await mintToken(ctx.config.auth, { userId: user, scopes, ttlSeconds, now: new Date() })).token,
    close: async () => {
      await app.close();
      await ctx.close();
    },
  };
}

/** fetch with a bearer token and a JSON body. */
export async function api(
  d: TestDaemon,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers['content-type'] ??= 'application/json';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${d.url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON (e.g. /metrics)
  }
  return { status: res.status, body: parsed };
}

/** init-mongo and init-buckets for a context. */
export async function initStores(ctx: Context): Promise<void> {
  await initMongo(ctx.mongo, { vectorDim: ctx.config.vector.dim });
  const c = ctx.config.s3;
  await initBuckets(ctx.s3, c.endpoint, { hot: c.bucketHot, archive: c.bucketArchive, corsOrigins: c.corsOrigins, region: c.region });
}

/** A context on a test file's own database and buckets, initialised (init-mongo, init-buckets). */
export async function openStores(env: Record<string, string>): Promise<Context> {
  const ctx = new Context(testConfig(env));
  await initStores(ctx);
  return ctx;
}

/** Closes a context from `openStores` and drops its database and buckets. */
export async function closeStores(ctx: Context | undefined, env: Record<string, string>): Promise<void> {
  await ctx?.close();
  await cleanup(env);
}
