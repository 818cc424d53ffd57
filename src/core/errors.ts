/**
 * The project's typed errors. Storage modules turn SDK errors into these at
 * their boundary; the CLI turns them into exit codes in exactly one place
 * (src/cli/main.ts) and the daemon into HTTP statuses.
 */

/** Exit codes, documented in the README's exit-code table. */
export const EXIT = {
  OK: 0,
  /** A job ran but at least one item failed, or an unexpected error. */
  FAILURE: 1,
  /** Bad flags or arguments, or a destructive command refused without --yes. */
  USAGE: 2,
  /** A configuration value is missing or invalid. Nothing was contacted. */
  CONFIG: 3,
  /** A dependency (MongoDB, S3, Redis) is unreachable or refused us. */
  UNAVAILABLE: 4,
  /** The thing asked for does not exist (or belongs to someone else). */
  NOT_FOUND: 5,
  /** Another run holds the lock; nothing was done. */
  CONFLICT: 6,
  /** Interrupted by SIGINT/SIGTERM before finishing (work done so far is safe). */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Base class: a message fit to print on one line, and an exit code. */
export class BiostoreError extends Error {
  readonly exitCode: ExitCode;
  readonly code: string;
  constructor(message: string, code: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

export class UsageError extends BiostoreError {
  constructor(message: string) {
    super(message, 'usage', EXIT.USAGE);
  }
}

export class ConfigError extends BiostoreError {
  constructor(message: string) {
    super(message, 'config', EXIT.CONFIG);
  }
}

/** A dependency could not be reached or answered with a server-side failure. */
export class UnavailableError extends BiostoreError {
  readonly dependency: string;
  constructor(dependency: string, message: string, options?: { cause?: unknown }) {
    super(`${dependency}: ${message}`, 'unavailable', EXIT.UNAVAILABLE, options);
    this.dependency = dependency;
  }
}

export class NotFoundError extends BiostoreError {
  constructor(message: string) {
    super(message, 'not_found', EXIT.NOT_FOUND);
  }
}

export class ConflictError extends BiostoreError {
  constructor(message: string) {
    super(message, 'conflict', EXIT.CONFLICT);
  }
}

/** Input the caller sent is wrong (HTTP 400/413/415/422); a usage error on the CLI. */
export class InvalidInputError extends BiostoreError {
  readonly status: number;
  constructor(message: string, code = 'invalid_input', status = 400) {
    super(message, code, EXIT.USAGE);
    this.status = status;
  }
}

/** Quota or size limit reached (HTTP 413/429 class); a usage error on the CLI. */
export class QuotaExceededError extends BiostoreError {
  constructor(message: string) {
    super(message, 'quota_exceeded', EXIT.USAGE);
  }
}

/** One line for a user: the message of a BiostoreError, or a generic line for anything else. */
export function describeError(err: unknown): string {
  if (err instanceof BiostoreError) return err.message;
  if (err instanceof Error) return `unexpected error: ${err.message.split('\n')[0]}`;
  return `unexpected error: ${String(err)}`;
}

export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof BiostoreError ? err.exitCode : EXIT.FAILURE;
}
