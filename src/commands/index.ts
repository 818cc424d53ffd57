/** Every command, in the order `--help` lists them. */
import type { Command } from 'commander';
import type { Runtime } from '../cli/main.js';
import { registerArchiveRun } from './archive-run.js';
import { registerDaemon } from './daemon.js';
import { registerInitBuckets } from './init-buckets.js';
import { registerInitMongo } from './init-mongo.js';
import { registerPurgeRun } from './purge-run.js';
import { registerReconcile } from './reconcile.js';
import { registerRehydrate } from './rehydrate.js';
import { registerReindexEmbeddings } from './reindex-embeddings.js';
import { registerReprocess } from './reprocess.js';
import { registerSearch } from './search.js';
import { registerSign } from './sign.js';
import { registerStatus } from './status.js';
import { registerToken } from './token.js';

export type Register = (program: Command, rt: Runtime) => void;

export const COMMANDS: Register[] = [
  registerInitMongo,
  registerInitBuckets,
  registerSign,
  registerToken,
  registerArchiveRun,
  registerPurgeRun,
  registerRehydrate,
  registerReconcile,
  registerReprocess,
  registerReindexEmbeddings,
  registerSearch,
  registerDaemon,
  registerStatus,
];
