/**
 * `biostore daemon`: the HTTP API plus scheduled jobs, sharing one context.
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, stop jobs, close clients.
 */
import type { Context } from '../core/context.js';
import { Metrics } from '../core/metrics.js';
import { ConflictError } from '../core/errors.js';
import { archiveRun } from '../jobs/archive.js';
import { purgeRun } from '../jobs/purge.js';
import { reconcile } from '../jobs/reconcile.js';
import { rehydratePending } from '../jobs/rehydrate.js';
import { configureSharp } from '../media/images.js';
import { buildApp } from './app.js';
import { OptimizerPool } from './optimizer-pool.js';
import { Scheduler } from './scheduler.js';

export interface DaemonOptions {
  host: string;
  port: number;
  /** Resolves when the daemon should shut down (default: SIGTERM or SIGINT). */
  stopSignal?: Promise<string>;
  onListening?: (address: string) => void;
}

export async function runDaemon(ctx: Context, opts: DaemonOptions): Promise<void> {
  ctx.metrics ??= new Metrics();
  // Fail fast on configuration the routes need (JWT secret, presigning keys).
  void ctx.presigner;
  // Several images in flight, one libvips thread each; no cache: inputs never repeat.
  configureSharp({ concurrency: 1, cache: false });
  const pool = new OptimizerPool(ctx, { concurrency: ctx.config.optimizer.concurrency });
  ctx.onRegistered = () => pool.kick();
  const app = buildApp(ctx);
  const scheduler = new Scheduler(ctx.logger);
  scheduler.add({
    name: 'reconcile',
    cron: ctx.config.schedule.reconcile,
    run: (signal) => reconcile(ctx, { signal }),
  });
  // The lifecycle jobs take their run locks, so a CronJob and this scheduler never overlap.
  const skipIfLocked = (p: Promise<unknown>) => p.catch((err: unknown) => (err instanceof ConflictError ? { skipped: err.message } : Promise.reject(err)));
  scheduler.add({ name: 'archive', cron: ctx.config.schedule.archive, run: (signal) => skipIfLocked(archiveRun(ctx, { signal })) });
  scheduler.add({ name: 'purge', cron: ctx.config.schedule.purge, run: (signal) => skipIfLocked(purgeRun(ctx, { signal })) });
  scheduler.add({ name: 'rehydrate', cron: ctx.config.schedule.rehydrate, run: (signal) => skipIfLocked(rehydratePending(ctx, { signal })) });

  const address = await app.listen({ host: opts.host, port: opts.port });
  pool.start();
  ctx.logger.info({ address }, 'biostore daemon listening');
  opts.onListening?.(address);

  const stop =
    opts.stopSignal ??
    new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
  const why = await stop;
  ctx.logger.info({ signal: why }, 'shutting down: no new requests, finishing in-flight ones');
  await app.close();
  await Promise.all([scheduler.stop(), pool.stop()]);
  ctx.logger.info('biostore daemon stopped');
}
