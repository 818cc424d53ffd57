/** `biostore reconcile`: register uploads whose event was lost, expire unused URLs, report orphans. */
import type { Command } from 'commander';
import { line, printJson, table } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { EXIT } from '../core/errors.js';

export function registerReconcile(program: Command, rt: Runtime): void {
  program
    .command('reconcile')
    .description('register pending uploads whose object exists, expire unused ones, report raw/ objects with no record')
    .option('--dry-run', 'report what would change, change nothing')
    .option('--json', 'print a JSON report')
    .addHelpText(
      'after',
      `
The daemon runs this every minute (SCHEDULE_RECONCILE). Exit 1 when a file could not be checked.

Examples:
  $ biostore reconcile --dry-run
  $ biostore reconcile --json`,
    )
    .action(async (opts: { dryRun?: boolean; json?: boolean }, cmd: Command) => {
      await rt.withContext(cmd, async (ctx) => {
        const { reconcile } = await import('../jobs/reconcile.js');
        const r = await reconcile(ctx, { dryRun: opts.dryRun, orphans: true });
        if (r.errors.length) rt.io.exitCode = EXIT.FAILURE;
        if (opts.json) return printJson(rt.io, r);
        const verb = opts.dryRun ? 'would be ' : '';
        line(
          rt.io,
          table(rt.io, ['reconcile', 'files'], [
            ['pending checked', r.checked],
            [`${verb}registered`, r.registered],
            [`${verb}rejected`, r.rejected],
            [`${verb}expired`, r.expired],
            ['still pending', r.still_pending],
            ['raw/ objects with no record', r.orphans.length],
            ['errors', r.errors.length],
          ]),
        );
        for (const o of r.orphans.slice(0, 20)) line(rt.io, `orphan: ${o.key} (${o.size} bytes)`);
        for (const e of r.errors) rt.io.stderr.write(`biostore: ${e.file_id}: ${e.error}\n`);
      });
    });
}
