/** `biostore init-mongo`: create the registry's collections and indexes, capability-aware. */
import type { Command } from 'commander';
import { line, printJson } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';

export function registerInitMongo(program: Command, rt: Runtime): void {
  program
    .command('init-mongo')
    .description('create the collections and indexes of the file registry (idempotent)')
    .option('--json', 'print a JSON report')
    .addHelpText(
      'after',
      `
Creates files_metadata, archive_log, user_usage and job_locks with their indexes.
Where the server lacks a feature (time-series, TTL, vector search) it creates the
best fallback and says so in one line. A second run changes nothing.

Examples:
  $ biostore init-mongo
  $ biostore init-mongo --json | jq .changed`,
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await rt.withContext(cmd, async (ctx) => {
        const { initMongo } = await import('../storage/mongo-schema.js');
        const report = await initMongo(ctx.mongo, { vectorDim: ctx.config.vector.dim });
        if (opts.json) return printJson(rt.io, report);
        const created = report.steps.filter((s) => s.action === 'created' && !s.target.includes('.'));
        if (created.length) line(rt.io, created.map((s) => s.message).join(', ').replace(/, Created/g, ', created'));
        for (const s of report.steps) {
          if (s.action === 'created' && s.target.includes('.')) line(rt.io, s.message);
          if (s.action === 'fallback' || s.action === 'unsupported' || s.action === 'fallback-exists') line(rt.io, s.message);
        }
        line(rt.io, report.changed ? `init-mongo: database '${report.database}' ready` : `init-mongo: database '${report.database}' already up to date; no change`);
      });
    });
}
