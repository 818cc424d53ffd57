/** `biostore purge-run`: delete files at the end of retention, stale raw uploads and (optionally) orphans. */
import type { Command } from 'commander';
import { confirmDestructive } from '../cli/confirm.js';
import { parseCount, parseDate } from '../cli/flags.js';
import { formatBytes, line, printJson, table } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { interruptSignal, progress } from '../cli/progress.js';
import { EXIT } from '../core/errors.js';

interface Opts {
  now?: string;
  orphans?: boolean;
  graceHours: string;
  concurrency: string;
  dryRun?: boolean;
  yes?: boolean;
  json?: boolean;
}

export function registerPurgeRun(program: Command, rt: Runtime): void {
  program
    .command('purge-run')
    .description('delete files past RETENTION_DAYS, raw uploads older than 24 h, and with --orphans unreferenced objects')
    .option('--now <date>', 'pretend it is this time (ISO 8601)')
    .option('--orphans', 'also delete objects in either bucket that no record points to')
    .option('--grace-hours <h>', 'objects younger than this are never orphans (in-flight uploads)', '24')
    .option('--concurrency <n>', 'deletions in flight', '8')
    .option('--dry-run', 'list what would be deleted, change nothing')
    .option('--yes', 'do not ask for confirmation (required without a terminal)')
    .option('--json', 'print a JSON report')
    .addHelpText(
      'after',
      `
Destructive: on a terminal it shows counts and bytes and asks; without a terminal it
refuses (exit 2, nothing changed) unless --yes. Safe to kill and re-run.

Examples:
  $ biostore purge-run --dry-run --orphans
  $ biostore purge-run --yes --json
  $ biostore purge-run --now 2027-03-01 --yes`,
    )
    .action(async (o: Opts, cmd: Command) => {
      const now = parseDate('--now', o.now);
      const graceHours = parseCount('--grace-hours', o.graceHours, 0)!;
      const concurrency = parseCount('--concurrency', o.concurrency);
      const opts = { orphans: o.orphans, orphanGraceMs: graceHours * 3600_000, concurrency };
      if (!o.dryRun && !o.yes && !rt.io.interactive) {
        // Refuse before connecting to anything: nothing can change.
        await confirmDestructive(rt.io, { yes: false, command: 'purge-run', summary: '' });
      }
      await rt.withContext(
        cmd,
        async (ctx) => {
          const { planPurge, purgeRun } = await import('../jobs/purge.js');
          const summary = (p: Awaited<ReturnType<typeof planPurge>>) =>
            table(rt.io, ['purge-run', 'count', 'bytes'], [
              ['files past retention', p.expired_files, formatBytes(p.expired_bytes)],
              ['raw uploads older than 24 h', p.raw_uploads, formatBytes(p.raw_bytes)],
              ...(o.orphans ? [['unreferenced objects', p.orphans.length, formatBytes(p.orphan_bytes)] as [string, number, string]] : []),
            ]);
          if (o.dryRun) {
            const plan = await planPurge(ctx, opts);
            if (o.json) return printJson(rt.io, { dry_run: true, ...plan });
            line(rt.io, summary(plan));
            for (const x of plan.orphans.slice(0, 50)) line(rt.io, `orphan: ${x.bucket}/${x.key} (${formatBytes(x.size)})`);
            return;
          }
          if (!o.yes) {
            const plan = await planPurge(ctx, opts);
            if (!(await confirmDestructive(rt.io, { yes: false, command: 'purge-run', summary: summary(plan) }))) {
              return line(rt.io, 'purge-run: nothing changed');
            }
          }
          const bar = progress(rt.io, 'purge-run', !o.json);
          const stop = interruptSignal();
          try {
            const r = await purgeRun(ctx, { ...opts, signal: stop.signal, onProgress: (d) => bar.update(d, d) });
            bar.stop();
            if (r.failed) rt.io.exitCode = EXIT.FAILURE;
            if (r.interrupted) rt.io.exitCode = EXIT.INTERRUPTED;
            if (o.json) return printJson(rt.io, r);
            line(rt.io, table(rt.io, ['purge-run', 'deleted', 'bytes'], [
              ['files past retention', r.purged_files, formatBytes(r.expired_bytes)],
              ['raw uploads older than 24 h', r.deleted_raw, formatBytes(r.raw_bytes)],
              ...(o.orphans ? [['unreferenced objects', r.deleted_orphans, formatBytes(r.orphan_bytes)] as [string, number, string]] : []),
              ['failed', r.failed, ''],
            ]));
            for (const f of r.failures.slice(0, 20)) rt.io.stderr.write(`biostore: ${f.what}: ${f.error}\n`);
          } finally {
            bar.stop();
            stop.dispose();
          }
        },
        { clock: now ? { now: () => new Date(now.getTime()) } : undefined },
      );
    });
}
