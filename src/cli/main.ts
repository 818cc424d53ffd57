/**
 * The program: global flags, the command list, and the one place where
 * errors become exit codes and one-line messages.
 */
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, type Config, type VarName } from '../core/config.js';
import type { Context, ContextOptions } from '../core/context.js';
import { describeError, EXIT, exitCodeOf } from '../core/errors.js';
import { processIo, type Io } from './io.js';
import { COMMANDS } from '../commands/index.js';

const VERSION = '0.1.0';

/** Global flags and the variables they override. */
const GLOBAL_FLAGS: Array<{ flag: string; env: VarName; help: string }> = [
  { flag: '--mongodb-uri <uri>', env: 'MONGODB_URI', help: 'MongoDB connection string' },
  { flag: '--db-name <name>', env: 'MONGO_DB_NAME', help: 'MongoDB database name' },
  { flag: '--s3-endpoint <url>', env: 'S3_ENDPOINT_URL', help: 'S3 endpoint (omit for AWS)' },
  { flag: '--bucket-hot <name>', env: 'BUCKET_HOT', help: 'hot bucket' },
  { flag: '--bucket-archive <name>', env: 'BUCKET_ARCHIVE', help: 'archive bucket' },
  { flag: '--redis-url <url>', env: 'REDIS_URL', help: 'Redis URL for domain events' },
  { flag: '--log-level <level>', env: 'LOG_LEVEL', help: 'log level for stderr logs' },
];

const camel = (flag: string) =>
  flag
    .replace(/^--/, '')
    .replace(/ .*$/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Shared by every command: builds the config and context from global flags, runs, closes. */
export interface Runtime {
  io: Io;
  config(cmd: Command): Config;
  withContext<T>(cmd: Command, fn: (ctx: Context) => Promise<T>, opts?: ContextOptions): Promise<T>;
}

export function buildProgram(io: Io): Command {
  const program = new Command('biostore')
    .version(VERSION, '-V, --version')
    .description('Direct-to-Cloud image storage: presigned S3 uploads, a MongoDB registry, WebP derivatives, archive and purge.')
    .option('--env-file <path>', 'read configuration from this file (default: .env when present)')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride();
  for (const g of GLOBAL_FLAGS) program.addOption(new Option(g.flag, `${g.help} (${g.env})`));
  program.addHelpText(
    'after',
    `
Configuration comes from environment variables (see README), a .env file, and the flags above.
Exit codes: 0 ok, 1 failure, 2 usage, 3 configuration, 4 dependency unavailable, 5 not found, 6 conflict, 130 interrupted.

Examples:
  $ biostore init-mongo && biostore init-buckets
  $ biostore status --json
  $ biostore --env-file .stack/env status`,
  );

  const rt: Runtime = {
    io,
    config(cmd) {
      const g = cmd.optsWithGlobals() as Record<string, string | undefined>;
      const overrides: Partial<Record<VarName, string>> = {};
      for (const f of GLOBAL_FLAGS) {
        const v = g[camel(f.flag)];
        if (v !== undefined) overrides[f.env] = v;
      }
      return loadConfig({ env: io.env, overrides, envFile: g.envFile, cwd: io.cwd });
    },
    async withContext(cmd, fn, opts) {
      const config = this.config(cmd);
      // Loaded on demand: the SDKs are most of the start-up time, and `--help`
      // or a configuration error should not pay for them.
      const { Context } = await import('../core/context.js');
      const ctx = new Context(config, opts);
      try {
        return await fn(ctx);
      } finally {
        await ctx.close();
      }
    },
  };
  for (const register of COMMANDS) register(program, rt);
  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return io.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.OK;
      // commander has already printed its one-line message
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    io.stderr.write(`biostore: ${describeError(err)}\n`);
    if (io.env.BIOSTORE_DEBUG && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    return exitCodeOf(err);
  }
}
