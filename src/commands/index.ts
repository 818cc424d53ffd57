/** Every command, in the order `--help` lists them. */
import type { Command } from 'commander';
import type { Runtime } from '../cli/main.js';
import { registerInitBuckets } from './init-buckets.js';
import { registerInitMongo } from './init-mongo.js';
import { registerStatus } from './status.js';

export type Register = (program: Command, rt: Runtime) => void;

export const COMMANDS: Register[] = [registerInitMongo, registerInitBuckets, registerStatus];
