/**
 * Domain events (`file.uploaded`, `file.rejected`, `file.deleted`, ...) for
 * other services such as the inference service, appended to the Redis Stream
 * `biostore:events` when REDIS_URL is set. Appends are retried; a failure is
 * logged and does not undo the state change that caused it (the reconciler
 * re-announces files whose events may have been lost).
 */
import type { Context } from './context.js';

export const EVENT_STREAM = 'biostore:events';

export type EventType =
  | 'file.uploaded'
  | 'file.rejected'
  | 'file.expired'
  | 'file.deleted'
  | 'file.ready'
  | 'file.failed'
  | 'file.archived'
  | 'file.restoring'
  | 'file.restored'
  | 'file.purged';

export interface DomainEvent {
  type: EventType;
  file_id: string;
  user_id: string;
  key: string;
  [field: string]: string | number | undefined;
}

export async function publish(ctx: Context, event: DomainEvent): Promise<void> {
  const redis = ctx.redis;
  if (!redis) return;
  const fields: Record<string, string> = { at: ctx.clock.now().toISOString() };
  for (const [k, v] of Object.entries(event)) if (v !== undefined) fields[k] = String(v);
  for (let attempt = 1; ; attempt++) {
    try {
      await redis.append(EVENT_STREAM, fields);
      return;
    } catch (err) {
      if (attempt >= 3) {
        ctx.logger.error({ err: (err as Error).message, event: event.type, file_id: event.file_id }, 'domain event not delivered');
        return;
      }
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}
