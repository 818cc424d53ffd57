/** `biostore rehydrate`: bring archived files back to the hot bucket. */
import type { Command } from 'commander';
import { parseChoice } from '../cli/flags.js';
import { line, printJson, table } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { EXIT, UsageError } from '../core/errors.js';

const TIERS = ['Standard', 'Bulk', 'Expedited'] as const;

interface Opts {
  fileId?: string;
  s3ArchiveKey?: string;
  user?: string;
  tier?: string;
  wait?: boolean;
  waitTimeout: string;
  pending?: boolean;
  json?: boolean;
}

export function registerRehydrate(program: Command, rt: Runtime): void {
  program
    .command('rehydrate')
    .description('restore an archived file to the hot bucket (Glacier classes thaw first), or finish pending restores')
    .option('--file-id <id>', 'the file to restore')
    .option('--s3-archive-key <key>', 'the archive key to restore (with --user)')
    .option('--user <id>', 'the owner (required with --s3-archive-key; checked with --file-id)')
    .option('--tier <tier>', `Glacier retrieval tier: ${TIERS.join(', ')}`, 'Standard')
    .option('--wait', 'wait until the file is back (polls every 30 s)')
    .option('--wait-timeout <seconds>', 'give up waiting after this long', '43200')
    .option('--pending', 'finish every restore that S3 has completed (what the daemon runs on a schedule)')
    .option('--json', 'print a JSON report')
    .addHelpText(
      'after',
      `
Exit codes: 0 restored or requested, 1 a pending restore failed, 5 no such archived file.

Examples:
  $ biostore rehydrate --file-id 3f0c...e1 --tier Expedited
  $ biostore rehydrate --s3-archive-key archive/2026-11-02/u1/3f0c...e1.webp --user u1 --wait
  $ biostore rehydrate --pending --json`,
    )
    .action(async (o: Opts, cmd: Command) => {
      const tier = parseChoice('--tier', o.tier, TIERS);
      const modes = [o.fileId, o.s3ArchiveKey, o.pending].filter(Boolean).length;
      if (modes !== 1) throw new UsageError('give exactly one of --file-id, --s3-archive-key (with --user) or --pending');
      if (o.s3ArchiveKey && !o.user) throw new UsageError('--s3-archive-key needs --user (the owner)');
      const timeoutMs = Number(o.waitTimeout) * 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--wait-timeout ${o.waitTimeout} must be a number of seconds`);
      await rt.withContext(cmd, async (ctx) => {
        const { rehydratePending, requestRehydrate } = await import('../jobs/rehydrate.js');
        if (o.pending) {
          const r = await rehydratePending(ctx);
          if (r.failed) rt.io.exitCode = EXIT.FAILURE;
          if (o.json) return printJson(rt.io, r);
          line(rt.io, table(rt.io, ['rehydrate --pending', 'files'], [
            ['restoring, checked', r.checked],
            ['copied back', r.restored],
            ['still thawing', r.still_restoring],
            ['failed', r.failed],
          ]));
          for (const f of r.failures) rt.io.stderr.write(`biostore: ${f.file_id}: ${f.error}\n`);
          return;
        }
        let r = await requestRehydrate(ctx, { fileId: o.fileId, archiveKey: o.s3ArchiveKey, userId: o.user ?? null, tier });
        const deadline = Date.now() + timeoutMs;
        while (o.wait && r.status === 'restoring' && Date.now() < deadline) {
          if (!o.json) rt.io.stderr.write(`biostore: ${r.message}; waiting...\n`);
          await new Promise((res) => setTimeout(res, 30_000));
          await rehydratePending(ctx, { userId: o.user }).catch(() => undefined);
          r = await requestRehydrate(ctx, { fileId: r.file_id, userId: o.user ?? null, tier });
        }
        if (o.json) return printJson(rt.io, r);
        line(rt.io, `${r.file_id}: ${r.status} (${r.message})`);
      });
    });
}
