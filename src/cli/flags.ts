/** Parsers for flag values; each throws a one-line UsageError naming the flag. */
import { UsageError } from '../core/errors.js';

export function parseCount(flag: string, v: string | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${flag} ${v} must be a whole number >= ${min}`);
  return Number(v);
}

export function parseDate(flag: string, v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag} ${v} is not a date; use ISO 8601 such as 2026-11-01 or 2026-11-01T12:00:00Z`);
  return d;
}

export function parseChoice<T extends string>(flag: string, v: string | undefined, choices: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!choices.includes(v as T)) throw new UsageError(`${flag} ${v} is not one of ${choices.join(', ')}`);
  return v as T;
}
