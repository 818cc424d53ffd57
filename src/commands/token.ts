/** `biostore token`: mint an HS256 bearer token from JWT_SECRET, for operators and local development. */
import type { Command } from 'commander';
import { line, printJson } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { UsageError } from '../core/errors.js';

export function registerToken(program: Command, rt: Runtime): void {
  program
    .command('token')
    .description('mint a bearer token (HS256, from JWT_SECRET) for the daemon')
    .requiredOption('--user <id>', 'the token subject (the user id)')
    .option('--ttl <duration>', 'lifetime: 90s, 15m, 1h, 7d', '1h')
    .option('--scope <scopes...>', 'scopes; "service" may act for any user_id')
    .option('--json', 'print {token, expires_at}')
    .addHelpText(
      'after',
      `
Examples:
  $ TOKEN=$(biostore token --user u1)
  $ biostore token --user backend --scope service --ttl 7d --json`,
    )
    .action(async (opts: { user: string; ttl: string; scope?: string[]; json?: boolean }, cmd: Command) => {
      const { mintToken, parseDuration } = await import('../core/auth.js');
      const ttl = parseDuration(opts.ttl);
      if (!ttl || ttl > 366 * 86400) throw new UsageError(`--ttl ${opts.ttl} is not a duration like 90s, 15m, 1h or 7d (at most 366d)`);
      const cfg = rt.config(cmd);
      const t = await mintToken(cfg.auth, { userId: opts.user, ttlSeconds: ttl, scopes: opts.scope ?? [], now: new Date() });
      if (opts.json) printJson(rt.io, t);
      else line(rt.io, t.token);
    });
}
