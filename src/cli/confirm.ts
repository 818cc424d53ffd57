/**
 * The one gate every destructive command goes through: on a terminal it shows
 * what will happen and asks; without a terminal it refuses unless `--yes`.
 */
import { confirm } from '@inquirer/prompts';
import { UsageError } from '../core/errors.js';
import type { Io } from './io.js';

export async function confirmDestructive(io: Io, opts: { yes?: boolean; command: string; summary: string }): Promise<boolean> {
  if (opts.yes) return true;
  if (!io.interactive) {
    throw new UsageError(`${opts.command} changes data: --yes required when not running interactively (nothing was changed)`);
  }
  io.stderr.write(`${opts.summary}\n`);
  return confirm({ message: `Proceed with ${opts.command}?`, default: false });
}
