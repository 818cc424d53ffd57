/** `biostore init-buckets`: create the hot and archive buckets and apply their settings. */
import type { Command } from 'commander';
import { line, printJson } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';

export function registerInitBuckets(program: Command, rt: Runtime): void {
  program
    .command('init-buckets')
    .description('create BUCKET_HOT and BUCKET_ARCHIVE and apply lifecycle, CORS and encryption (idempotent)')
    .option('--json', 'print a JSON report')
    .addHelpText(
      'after',
      `
Applies: a lifecycle rule expiring raw/ uploads after 1 day (hot bucket), CORS for
PUT/POST/GET from CORS_ORIGINS (hot bucket), default SSE-S3 encryption (both).
A setting the server refuses is reported with what covers for it.

Examples:
  $ biostore init-buckets
  $ CORS_ORIGINS=https://app.example.com biostore init-buckets --json`,
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await rt.withContext(cmd, async (ctx) => {
        const c = ctx.config.s3;
        const { initBuckets } = await import('../storage/s3.js');
        const steps = await initBuckets(ctx.s3, c.endpoint, {
          hot: c.bucketHot,
          archive: c.bucketArchive,
          corsOrigins: c.corsOrigins,
          region: c.region,
        });
        const changed = steps.some((s) => s.action === 'created' || s.action === 'applied');
        if (opts.json) return printJson(rt.io, { changed, steps });
        const created = steps.filter((s) => s.action === 'created');
        if (created.length) line(rt.io, created.map((s) => s.message).join(', '));
        for (const s of steps) if (s.setting !== 'bucket' && s.action !== 'unchanged') line(rt.io, s.message);
        line(rt.io, changed ? 'init-buckets: buckets ready' : 'init-buckets: buckets already up to date; no change');
      });
    });
}
