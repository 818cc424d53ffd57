/**
 * What a command may touch of the outside world: its output streams, whether
 * it runs on a terminal, and the environment. Tests pass their own.
 */
import Table from 'cli-table3';

export interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** stdout is a terminal: tables, colours and spinners are fine. */
  isTTY: boolean;
  /** stdin is a terminal: prompting is possible. */
  interactive: boolean;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Set by a command that finished but wants a non-zero exit (e.g. a dependency is down). */
  exitCode: number;
}

export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    isTTY: Boolean(process.stdout.isTTY),
    interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
    env: process.env,
    cwd: process.cwd(),
    exitCode: 0,
  };
}

export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function line(io: Io, text = ''): void {
  io.stdout.write(`${text}\n`);
}

/** A cli-table3 table; plain borders when not on a terminal so logs stay readable. */
export function table(io: Io, head: string[], rows: Array<Array<string | number>>): string {
  const t = new Table({
    head,
    style: io.isTTY ? { head: ['cyan'] } : { head: [], border: [] },
  });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
