/**
 * Progress for long jobs: an ora spinner on a terminal (stderr), nothing
 * otherwise, so pipes and logs stay clean.
 */
import ora, { type Ora } from 'ora';
import type { Io } from './io.js';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function progress(io: Io, label: string, enabled: boolean): Progress {
  if (!enabled || !io.isTTY) return { update: () => undefined, stop: () => undefined };
  const spinner: Ora = ora({ text: label, stream: process.stderr }).start();
  return {
    update: (done, total) => {
      spinner.text = `${label} ${done}/${total}`;
    },
    stop: () => spinner.stop(),
  };
}

/** An AbortSignal that fires on the first SIGINT/SIGTERM; `dispose` removes the handlers. */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const on = () => ac.abort();
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}
