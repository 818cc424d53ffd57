/** `biostore status`: is everything reachable, and what does the registry hold. */
import type { Command } from 'commander';
import { formatBytes, line, printJson, table } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { EXIT } from '../core/errors.js';
import type { DependencyStatus } from '../core/status.js';

export function registerStatus(program: Command, rt: Runtime): void {
  program
    .command('status')
    .description('health of MongoDB, S3 (and Redis), and a summary of the registry')
    .option('--json', 'print a JSON report')
    .addHelpText(
      'after',
      `
Answers within 10 s even when a dependency is down, and then exits with 4.

Examples:
  $ biostore status
  $ biostore status --json | jq .registry.files_by_state`,
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await rt.withContext(
        cmd,
        async (ctx) => {
          const { collectStatus } = await import('../core/status.js');
          const report = await collectStatus(ctx);
          if (!report.ok) rt.io.exitCode = EXIT.UNAVAILABLE;
          if (opts.json) return printJson(rt.io, report);
          const deps = Object.entries(report.dependencies) as Array<[string, DependencyStatus]>;
          const names: Record<string, string> = { mongodb: 'MongoDB', s3: 'S3', redis: 'Redis' };
          line(
            rt.io,
            table(
              rt.io,
              ['dependency', 'state', 'server', 'version', 'round trip'],
              deps.map(([k, d]) => [
                names[k] ?? k,
                d.ok ? (d.error ? 'degraded' : 'healthy') : 'DOWN',
                d.server ?? '-',
                d.version ?? '-',
                d.rtt_ms === null ? '-' : `${d.rtt_ms} ms`,
              ]),
            ),
          );
          const r = report.registry;
          if (r) {
            const states = Object.entries(r.files_by_state).sort();
            line(
              rt.io,
              table(rt.io, ['registry', 'value'], [
                ['files', r.total_files],
                ...states.map(([s, n]) => [`  ${s}`, n] as [string, number]),
                ['bytes in hot bucket', formatBytes(r.hot_bytes)],
                ['bytes in archive bucket', formatBytes(r.archive_bytes)],
                ['due for archive', r.due_for_archive],
                ['next purge', r.next_purge_at ?? 'none scheduled'],
              ]),
            );
          }
          for (const [k, d] of deps) if (d.error) rt.io.stderr.write(`biostore: ${d.ok ? `${names[k]}: ` : ''}${d.error}\n`);
        },
        { connectTimeoutMs: 4000 },
      );
    });
}
