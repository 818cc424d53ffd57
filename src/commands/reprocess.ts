/** `biostore reprocess`: re-run the image pipeline for selected files. */
import type { Command } from 'commander';
import { line, printJson, table } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { parseCount, parseDate } from '../cli/flags.js';
import { interruptSignal, progress } from '../cli/progress.js';
import { EXIT, UsageError } from '../core/errors.js';
import { FILE_STATES, type FileState } from '../core/files.js';

interface Opts {
  user?: string;
  since?: string;
  until?: string;
  status?: string;
  stale?: boolean;
  fileId?: string;
  limit?: string;
  concurrency: string;
  fromGallery?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export function registerReprocess(program: Command, rt: Runtime): void {
  program
    .command('reprocess')
    .description('re-run the image pipeline (WebP gallery + thumbnail) for selected files')
    .option('--user <id>', 'only this user')
    .option('--since <date>', 'uploaded at or after')
    .option('--until <date>', 'uploaded before')
    .option('--status <state>', 'only files in this state (default: ready and failed)')
    .option('--stale', 'only files made with other optimizer settings than the current ones')
    .option('--file-id <id>', 'just this file')
    .option('--limit <n>', 'at most this many files')
    .option('--concurrency <n>', 'images in flight', '2')
    .option('--from-gallery', 'when the original has expired, re-encode the gallery image (loses quality)')
    .option('--dry-run', 'list what would be reprocessed, change nothing')
    .option('--json', 'print a JSON report')
    .addHelpText(
      'after',
      `
Safe to interrupt (Ctrl-C finishes the files in flight) and to re-run.
Exit code 1 when any file failed, 130 when interrupted.

Examples:
  $ biostore reprocess --stale --dry-run
  $ biostore reprocess --status failed --user u1 --json
  $ THUMBNAIL_SIZE=400 biostore reprocess --stale --concurrency 4`,
    )
    .action(async (o: Opts, cmd: Command) => {
      if (o.status && !FILE_STATES.includes(o.status as FileState)) {
        throw new UsageError(`--status ${o.status} is not a state; use one of ${FILE_STATES.join(', ')}`);
      }
      const opts = {
        user: o.user,
        since: parseDate('--since', o.since),
        until: parseDate('--until', o.until),
        status: o.status as FileState | undefined,
        stale: o.stale,
        fileId: o.fileId,
        limit: parseCount('--limit', o.limit),
        concurrency: parseCount('--concurrency', o.concurrency),
        fromGallery: o.fromGallery,
        dryRun: o.dryRun,
      };
      await rt.withContext(cmd, async (ctx) => {
        const { reprocess, tuneSharp } = await import('../jobs/reprocess.js');
        tuneSharp();
        const bar = progress(rt.io, 'reprocess', !o.json);
        const stop = interruptSignal();
        try {
          const r = await reprocess(ctx, { ...opts, signal: stop.signal, onProgress: (d, t) => bar.update(d, t) });
          bar.stop();
          if (r.failed) rt.io.exitCode = EXIT.FAILURE;
          if (r.interrupted) rt.io.exitCode = EXIT.INTERRUPTED;
          if (o.json) return printJson(rt.io, r);
          line(rt.io, table(rt.io, ['reprocess', 'files'], [
            ['selected', r.selected],
            [o.dryRun ? 'would reprocess' : 'ready', o.dryRun ? r.items.filter((i) => i.outcome === 'would-reprocess').length : r.ready],
            ['failed', r.failed],
            ['skipped', r.skipped],
          ]));
          for (const i of r.items.filter((x) => x.outcome !== 'ready')) line(rt.io, `${i.file_id}: ${i.outcome}${i.reason ? ` (${i.reason})` : ''}`);
          if (r.interrupted) rt.io.stderr.write('biostore: interrupted; files in flight were finished, re-run to continue\n');
        } finally {
          bar.stop();
          stop.dispose();
        }
      });
    });
}
