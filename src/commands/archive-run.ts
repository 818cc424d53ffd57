/** `biostore archive-run`: move old gallery images to the archive bucket. */
import type { Command } from 'commander';
import { confirmDestructive } from '../cli/confirm.js';
import { parseChoice, parseCount, parseDate } from '../cli/flags.js';
import { formatBytes, line, printJson, table } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { interruptSignal, progress } from '../cli/progress.js';
import { EXIT } from '../core/errors.js';

const CLASSES = ['GLACIER', 'DEEP_ARCHIVE', 'GLACIER_IR', 'STANDARD_IA'] as const;

interface Opts {
  olderThan?: string;
  user?: string;
  limit?: string;
  concurrency: string;
  storageClass?: string;
  now?: string;
  dryRun?: boolean;
  yes?: boolean;
  json?: boolean;
}

export function registerArchiveRun(program: Command, rt: Runtime): void {
  program
    .command('archive-run')
    .description('move ready files untouched for ARCHIVE_THRESHOLD_DAYS to the archive bucket (server-side copy, verified)')
    .option('--older-than <days>', 'days since last access (default ARCHIVE_THRESHOLD_DAYS)')
    .option('--user <id>', 'only this user')
    .option('--limit <n>', 'at most this many files')
    .option('--concurrency <n>', 'files in flight', '8')
    .option('--storage-class <class>', `archive storage class: ${CLASSES.join(', ')} (default ARCHIVE_STORAGE_CLASS)`)
    .option('--now <date>', 'pretend it is this time (ISO 8601), e.g. to test "30 days later"')
    .option('--dry-run', 'print what would move: count, bytes, estimated monthly saving')
    .option('--yes', 'do not ask for confirmation (required without a terminal)')
    .option('--json', 'print a JSON report')
    .addHelpText(
      'after',
      `
Safe to kill and re-run: the next run finishes what a killed one started. Only one run at
a time (exit 6 when another holds the lock). Exit 1 when a file failed (it stays in place).

Examples:
  $ biostore archive-run --dry-run
  $ biostore archive-run --yes --json
  $ biostore archive-run --now 2027-01-15 --older-than 30 --user u1 --yes`,
    )
    .action(async (o: Opts, cmd: Command) => {
      const olderThanDays = parseCount('--older-than', o.olderThan, 0);
      const limit = parseCount('--limit', o.limit);
      const concurrency = parseCount('--concurrency', o.concurrency);
      const storageClass = parseChoice('--storage-class', o.storageClass, CLASSES);
      const now = parseDate('--now', o.now);
      await rt.withContext(
        cmd,
        async (ctx) => {
          const { archiveRun } = await import('../jobs/archive.js');
          const base = { olderThanDays, user: o.user, limit, concurrency, storageClass };
          if (!o.dryRun) {
            const plan = await archiveRun(ctx, { ...base, dryRun: true });
            const go = await confirmDestructive(rt.io, {
              yes: o.yes,
              command: 'archive-run',
              summary: `archive-run: ${plan.candidates} files, ${formatBytes(plan.bytes)} to ${plan.storage_class}`,
            });
            if (!go) return line(rt.io, 'archive-run: nothing changed');
          }
          const bar = progress(rt.io, 'archive-run', !o.json);
          const stop = interruptSignal();
          try {
            const r = await archiveRun(ctx, { ...base, dryRun: o.dryRun, signal: stop.signal, onProgress: (d, t) => bar.update(d, t) });
            bar.stop();
            if (r.failed) rt.io.exitCode = EXIT.FAILURE;
            if (r.interrupted) rt.io.exitCode = EXIT.INTERRUPTED;
            if (o.json) return printJson(rt.io, r);
            const rows: Array<[string, string | number]> = o.dryRun
              ? [
                  ['would archive', r.candidates],
                  ['bytes', formatBytes(r.bytes)],
                  ['storage class', r.storage_class],
                  ['estimated monthly saving', `$${r.estimated_monthly_saving_usd.toFixed(2)}`],
                ]
              : [
                  ['archived', r.archived],
                  ['resumed from a killed run', r.resumed],
                  ['failed (left in place)', r.failed],
                  ['bytes moved', formatBytes(r.bytes)],
                  ['storage class', r.storage_class],
                  ['estimated monthly saving', `$${r.estimated_monthly_saving_usd.toFixed(2)}`],
                ];
            line(rt.io, table(rt.io, ['archive-run', o.dryRun ? 'plan' : 'result'], rows));
            for (const f of r.failures.slice(0, 20)) rt.io.stderr.write(`biostore: ${f.file_id}: ${f.error}\n`);
            if (r.interrupted) rt.io.stderr.write('biostore: interrupted; files in flight were finished, re-run to continue\n');
          } finally {
            bar.stop();
            stop.dispose();
          }
        },
        { clock: now ? { now: () => new Date(now.getTime()) } : undefined },
      );
    });
}
