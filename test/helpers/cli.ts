/** Runs the CLI in-process with captured output, as a user would call it. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/io.js';
import { ROOT } from './stack.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

const emptyDir = mkdtempSync(join(tmpdir(), 'biostore-cli-'));

export async function cli(args: string[], env: Record<string, string>, opts: { tty?: boolean } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    isTTY: opts.tty ?? false,
    interactive: opts.tty ?? false,
    env,
    cwd: emptyDir,
    exitCode: 0,
  };
  const t0 = performance.now();
  const code = await main(['node', 'biostore', ...args], io);
  return { code, stdout, stderr, ms: performance.now() - t0 };
}

/** Runs the built executable (bin/biostore.js) in a child process: real exit codes and timing. */
export function cliProcess(args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'biostore.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      cwd: emptyDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}
