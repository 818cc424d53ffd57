/**
 * Scheduled jobs inside the daemon (cron expressions from the configuration).
 * A job never overlaps itself: a tick that finds the previous run still going
 * is skipped and logged.
 */
import { CronJob } from 'cron';
import type { Logger } from 'pino';

export interface ScheduledTask {
  name: string;
  /** A cron expression, or `off`. */
  cron: string;
  run: (signal: AbortSignal) => Promise<unknown>;
}

export class Scheduler {
  private readonly jobs: CronJob[] = [];
  private readonly running = new Map<string, Promise<unknown>>();
  private readonly abort = new AbortController();

  constructor(private readonly logger: Logger) {}

  add(task: ScheduledTask): void {
    if (task.cron === 'off') return;
    const job = CronJob.from({
      cronTime: task.cron,
      start: true,
      onTick: () => void this.trigger(task),
    });
    this.jobs.push(job);
  }

  /** Runs a task now unless it is already running. */
  async trigger(task: ScheduledTask): Promise<void> {
    if (this.abort.signal.aborted) return;
    if (this.running.has(task.name)) {
      this.logger.info({ task: task.name }, 'previous run still going; skipped');
      return;
    }
    const t0 = Date.now();
    const p = task
      .run(this.abort.signal)
      .then((report) => this.logger.info({ task: task.name, ms: Date.now() - t0, report }, 'scheduled run finished'))
      .catch((err: unknown) => this.logger.error({ task: task.name, err: (err as Error).message }, 'scheduled run failed'))
      .finally(() => this.running.delete(task.name));
    this.running.set(task.name, p);
    await p;
  }

  /** Stops ticking, asks running tasks to stop, and waits for them. */
  async stop(): Promise<void> {
    for (const j of this.jobs) void j.stop();
    this.abort.abort();
    await Promise.allSettled([...this.running.values()]);
  }
}
