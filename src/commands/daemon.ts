/** `biostore daemon`: the long-running HTTP signing endpoint plus scheduled jobs. */
import type { Command } from 'commander';
import type { Runtime } from '../cli/main.js';
import { UsageError } from '../core/errors.js';

export function registerDaemon(program: Command, rt: Runtime): void {
  program
    .command('daemon')
    .description('run the HTTP API (signing, downloads, deletes, S3 webhook, health, metrics) and the scheduled jobs')
    .option('--host <host>', 'address to listen on', '0.0.0.0')
    .option('--port <port>', 'port to listen on (default: PORT)')
    .addHelpText(
      'after',
      `
Routes: POST /api/v1/upload/sign, GET /api/v1/files/:id, GET /api/v1/files/:id/download-url,
DELETE /api/v1/files/:id, POST /api/v1/files/search/vector, POST /api/v1/archive/rehydrate,
GET /api/v1/archive/status, POST /api/v1/webhooks/s3, GET /healthz, /readyz, /metrics.
Requests carry "Authorization: Bearer <JWT>" (see \`biostore token\`). Stops cleanly on SIGTERM.

Examples:
  $ biostore daemon
  $ PORT=9000 LOG_LEVEL=debug biostore daemon --host 127.0.0.1`,
    )
    .action(async (opts: { host: string; port?: string }, cmd: Command) => {
      await rt.withContext(cmd, async (ctx) => {
        const port = opts.port === undefined ? ctx.config.port : Number(opts.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new UsageError(`--port ${opts.port} is not a TCP port (0-65535)`);
        }
        const { runDaemon } = await import('../daemon/server.js');
        await runDaemon(ctx, { host: opts.host, port });
      });
    });
}
