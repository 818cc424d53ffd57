/**
 * Archive routes: ask for an archived file back, and the archive summary the
 * app shows. Thin: the work is in src/jobs/rehydrate.ts.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actingUser } from '../core/auth.js';
import type { Context } from '../core/context.js';
import { InvalidInputError } from '../core/errors.js';
import { requestRehydrate } from '../jobs/rehydrate.js';

interface RehydrateBody {
  file_id?: string;
  s3_archive_key?: string;
  user_id?: string;
  tier?: 'Standard' | 'Bulk' | 'Expedited';
}

export function registerArchiveRoutes(app: FastifyInstance, ctx: Context, authenticate: (req: FastifyRequest) => Promise<void>): void {
  app.post<{ Body: RehydrateBody }>(
    '/api/v1/archive/rehydrate',
    {
      preHandler: authenticate,
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            file_id: { type: 'string', maxLength: 64 },
            s3_archive_key: { type: 'string', maxLength: 1024 },
            user_id: { type: 'string', maxLength: 64 },
            tier: { type: 'string', enum: ['Standard', 'Bulk', 'Expedited'] },
          },
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (Boolean(b.file_id) === Boolean(b.s3_archive_key)) {
        throw new InvalidInputError('give either file_id or s3_archive_key', 'invalid_body');
      }
      const user = actingUser(req.principal!, b.user_id);
      const r = await requestRehydrate(ctx, { fileId: b.file_id, archiveKey: b.s3_archive_key, userId: user, tier: b.tier });
      return reply.status(r.status === 'ready' ? 200 : 202).send(r);
    },
  );

  app.get<{ Querystring: { user_id?: string } }>('/api/v1/archive/status', { preHandler: authenticate }, async (req) => {
    const user = actingUser(req.principal!, req.query.user_id);
    const now = ctx.clock.now();
    const cutoff = new Date(now.getTime() - ctx.config.lifecycle.archiveThresholdDays * 24 * 3600 * 1000);
    const [totalArchived, pendingArchive, restoring, next] = await Promise.all([
      ctx.registry.count({ user_id: user, is_archived: true }),
      ctx.registry.count({ user_id: user, status: 'ready', is_archived: { $ne: true }, last_accessed_at: { $lt: cutoff } }),
      ctx.registry.count({ user_id: user, status: 'restoring' }),
      ctx.registry.nextPurge(user),
    ]);
    return { total_archived: totalArchived, pending_archive: pendingArchive, restoring, next_purge_at: next?.toISOString() ?? null };
  });
}
