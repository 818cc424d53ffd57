/**
 * The health and registry summary behind `biostore status` (and, later,
 * the daemon's /readyz): each dependency checked in parallel, each bounded
 * in time, so the answer comes within seconds even when something is down.
 */
import { publicConfig } from './config.js';
import type { Context } from './context.js';
import { describeError, UnavailableError } from './errors.js';
import type { RegistryStats } from './files.js';
import { s3Health } from '../storage/s3.js';

export interface DependencyStatus {
  ok: boolean;
  rtt_ms: number | null;
  server: string | null;
  version: string | null;
  error: string | null;
  [extra: string]: unknown;
}

export interface StatusReport {
  ok: boolean;
  checked_at: string;
  dependencies: { mongodb: DependencyStatus; s3: DependencyStatus; redis?: DependencyStatus };
  registry: RegistryStats | null;
  config: Record<string, unknown>;
}

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new UnavailableError(what, `no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const down = (err: unknown): DependencyStatus => ({ ok: false, rtt_ms: null, server: null, version: null, error: describeError(err) });
const round = (ms: number) => Math.round(ms * 10) / 10;

export async function collectStatus(ctx: Context, timeoutMs = 8000): Promise<StatusReport> {
  const cfg = ctx.config;
  const mongo = within(timeoutMs, 'MongoDB', (async (): Promise<DependencyStatus> => {
    const rtt = await ctx.mongo.ping();
    const info = await ctx.mongo.serverInfo();
    return {
      ok: true,
      rtt_ms: round(rtt),
      server: info.kind === 'ferretdb' ? `FerretDB ${info.ferretdbVersion ?? ''}`.trim() : info.kind === 'atlas' ? 'MongoDB Atlas' : 'MongoDB',
      version: info.version,
      error: null,
      database: cfg.mongo.dbName,
    };
  })()).catch(down);

  const s3 = within(timeoutMs, 'S3', (async (): Promise<DependencyStatus> => {
    const h = await s3Health(ctx.s3, cfg.s3.endpoint, [cfg.s3.bucketHot, cfg.s3.bucketArchive]);
    const missing = Object.entries(h.buckets).filter(([, ok]) => !ok).map(([b]) => b);
    return {
      ok: true,
      rtt_ms: round(h.rttMs),
      server: h.server ?? null,
      version: null,
      error: missing.length ? `missing bucket(s): ${missing.join(', ')}; run \`biostore init-buckets\`` : null,
      endpoint: cfg.s3.endpoint ?? 'AWS',
      buckets: h.buckets,
    };
  })()).catch(down);

  const redis = ctx.redis
    ? within(timeoutMs, 'Redis', (async (): Promise<DependencyStatus> => {
        const h = await ctx.redis!.health();
        return { ok: true, rtt_ms: round(h.rttMs), server: 'Redis', version: h.version, error: null };
      })()).catch(down)
    : undefined;

  const [m, s, r] = await Promise.all([mongo, s3, redis]);
  let registry: RegistryStats | null = null;
  if (m.ok) {
    registry = await within(timeoutMs, 'MongoDB', ctx.registry.stats(ctx.clock.now(), cfg.lifecycle.archiveThresholdDays)).catch(
      (err: unknown) => {
        m.ok = false;
        m.error = describeError(err);
        return null;
      },
    );
  }
  const dependencies: StatusReport['dependencies'] = { mongodb: m, s3: s };
  if (r) dependencies.redis = r;
  return {
    ok: m.ok && s.ok && (r?.ok ?? true),
    checked_at: ctx.clock.now().toISOString(),
    dependencies,
    registry,
    config: publicConfig(cfg),
  };
}
