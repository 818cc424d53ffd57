/**
 * A bounded pool of optimizer workers inside the daemon. Each worker claims a
 * file (lease), processes it, and claims the next; when there is nothing to
 * do it sleeps until the poll interval or a `kick()` (a new registration).
 * Because work is found in MongoDB, nothing uploaded is lost across restarts.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Context } from '../core/context.js';
import { embedAfterOptimize } from '../jobs/embed.js';
import { claimNext, processClaimed } from '../jobs/optimize.js';

export interface PoolOptions {
  concurrency: number;
  /** How often an idle worker looks for work (ms). */
  pollMs?: number;
}

export class OptimizerPool {
  private stopped = false;
  private readonly workers: Promise<void>[] = [];
  private wake: Array<() => void> = [];
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  processed = 0;

  constructor(
    private readonly ctx: Context,
    private readonly opts: PoolOptions,
  ) {}

  start(): void {
    for (let i = 0; i < this.opts.concurrency; i++) this.workers.push(this.loop(`${this.owner}#${i}`));
  }

  /** Wakes idle workers: new work has arrived. */
  kick(): void {
    const w = this.wake;
    this.wake = [];
    for (const f of w) f();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake.push(done);
    });
  }

  private async loop(owner: string): Promise<void> {
    while (!this.stopped) {
      try {
        const rec = await claimNext(this.ctx, owner);
        if (!rec) {
          await this.sleep(this.opts.pollMs ?? 1000);
          continue;
        }
        const r = await processClaimed(this.ctx, rec, owner);
        if (r.outcome === 'ready' && r.file) await embedAfterOptimize(this.ctx, r.file, owner);
        this.processed++;
        this.ctx.logger.info({ file_id: rec._id, outcome: r.outcome, reason: r.reason }, 'optimizer');
      } catch (err) {
        // MongoDB or S3 down: back off, never crash the daemon.
        this.ctx.logger.error({ err: (err as Error).message }, 'optimizer worker error; backing off');
        await this.sleep(2000);
      }
    }
  }

  /** Stops claiming; waits for files in flight (their leases are then released by completion). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    await Promise.allSettled(this.workers);
  }
}
