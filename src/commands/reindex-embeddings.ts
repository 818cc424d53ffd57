/** `biostore reindex-embeddings`: give ready files a vector of the configured model. */
import type { Command } from 'commander';
import { line, printJson, table } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { interruptSignal, progress } from '../cli/progress.js';
import { embeddingSettings } from '../core/embeddings.js';
import { EXIT, UsageError } from '../core/errors.js';

interface Opts {
  user?: string;
  model?: string;
  stale?: boolean;
  limit?: string;
  concurrency: string;
  dryRun?: boolean;
  json?: boolean;
}

function count(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${flag} ${v} must be a whole number >= 1`);
  return Number(v);
}

/** Registers the command. Exists as the operator's way to backfill or migrate vectors. */
export function registerReindexEmbeddings(program: Command, rt: Runtime): void {
  program
    .command('reindex-embeddings')
    .description('embed ready files that have no vector (or, with --stale, one from another model or dimension)')
    .option('--user <id>', 'only this user')
    .option('--model <name>', 'embed with this model instead of EMBEDDING_MODEL (http provider)')
    .option('--stale', 'also re-embed vectors made by another model or with another dimension')
    .option('--limit <n>', 'at most this many files')
    .option('--concurrency <n>', 'batches in flight (local: images; http: requests of up to 16 images)', '4')
    .option('--dry-run', 'list what would be embedded, change nothing')
    .option('--json', 'print a JSON report')
    .addHelpText(
      'after',
      `
Embeds each file's thumbnail with EMBEDDING_PROVIDER (local: the built-in near-duplicate
descriptor; http: EMBEDDING_URL). Files are claimed one by one with a lease, so it is safe
to interrupt (Ctrl-C finishes the files in flight), to re-run, to run twice at once and
beside the daemon (which embeds new files itself). Exit code 1 when any file failed,
3 on a configuration mismatch (e.g. VECTOR_EMBEDDING_DIM), 4 when the provider is down, 130 when interrupted.

Examples:
  $ biostore reindex-embeddings --dry-run
  $ biostore reindex-embeddings --user u1 --json
  $ EMBEDDING_PROVIDER=http EMBEDDING_URL=http://inference:8080/v1/embeddings \\
      EMBEDDING_MODEL=food-clip-2 VECTOR_EMBEDDING_DIM=512 biostore reindex-embeddings --stale --concurrency 8`,
    )
    .action(async (o: Opts, cmd: Command) => {
      const opts = { user: o.user, model: o.model, stale: o.stale, limit: count('--limit', o.limit), concurrency: count('--concurrency', o.concurrency), dryRun: o.dryRun };
      // Before connecting to anything: a provider/dimension mismatch is a configuration error (exit 3).
      embeddingSettings(rt.config(cmd), { model: o.model });
      await rt.withContext(cmd, async (ctx) => {
        const { reindexEmbeddings } = await import('../jobs/reindex-embeddings.js');
        const { configureSharp } = await import('../media/images.js');
        configureSharp({ concurrency: 1, cache: false }); // one libvips thread per image in flight; only JPEG/PNG/WebP decoders
        const bar = progress(rt.io, 'reindex-embeddings', !o.json);
        const stop = interruptSignal();
        try {
          const r = await reindexEmbeddings(ctx, { ...opts, signal: stop.signal, onProgress: (d, t) => bar.update(d, t) });
          bar.stop();
          if (r.failed) rt.io.exitCode = EXIT.FAILURE;
          if (r.interrupted) rt.io.exitCode = EXIT.INTERRUPTED;
          if (o.json) return printJson(rt.io, r);
          line(rt.io, `model ${r.model} (${r.provider}, ${r.dim} dimensions)${r.stale ? ', including stale vectors' : ''}`);
          line(rt.io, table(rt.io, ['reindex-embeddings', 'files'], [
            ['selected', r.selected],
            [o.dryRun ? 'would embed' : 'embedded', o.dryRun ? r.selected : r.embedded],
            ['failed', r.failed],
            ['skipped (taken by another run)', r.skipped],
          ]));
          for (const i of r.items.filter((x) => x.outcome === 'failed')) line(rt.io, `${i.file_id}: failed (${i.reason})`);
          if (r.interrupted) rt.io.stderr.write('biostore: interrupted; files in flight were finished, re-run to continue\n');
        } finally {
          bar.stop();
          stop.dispose();
        }
      });
    });
}
