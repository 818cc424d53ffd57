/**
 * `biostore daemon`: the HTTP API plus scheduled jobs, sharing one context.
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, stop jobs, close clients.
 */
import type { Context } from '../core/context.js';
import { Metrics } from '../core/metrics.js';
import { reconcile } from '../jobs/reconcile.js';
import { buildApp } from './app.js';
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
  const app = buildApp(ctx);
  const scheduler = new Scheduler(ctx.logger);
  scheduler.add({
    name: 'reconcile',
    cron: ctx.config.schedule.reconcile,
    run: (signal) => reconcile(ctx, { signal }),
  });

  const address = await app.listen({ host: opts.host, port: opts.port });
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
  await scheduler.stop();
  ctx.logger.info('biostore daemon stopped');
}
