/**
 * Similarity search over HTTP: `POST /api/v1/files/search/vector`, a thin
 * route over core/search.ts. Same auth as the other routes: a user searches
 * their own files; a service token names the user.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actingUser } from '../core/auth.js';
import type { Context } from '../core/context.js';
import { embeddingSettings } from '../core/embeddings.js';
import { InvalidInputError } from '../core/errors.js';
import { searchSimilar } from '../core/search.js';

interface SearchBody {
  user_id?: string;
  query_embedding?: unknown;
  file_id?: string;
  top_k?: number;
  min_similarity?: number;
  orientation_tolerant?: boolean;
}

// Types only: ranges and vector contents are checked by the core, so the CLI and the API say the same thing.
const searchSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    user_id: { type: 'string', minLength: 1, maxLength: 64 },
    query_embedding: { type: 'array', maxItems: 8192 },
    file_id: { type: 'string', minLength: 1, maxLength: 64 },
    top_k: { type: 'integer' },
    min_similarity: { type: 'number' },
    orientation_tolerant: { type: 'boolean' },
  },
} as const;

/**
 * Registers the search route. Exists so app.ts gains one line; it also checks
 * the embedding configuration, so a daemon with a mismatched
 * VECTOR_EMBEDDING_DIM refuses to start instead of failing every search.
 */
export function registerSearchRoutes(app: FastifyInstance, ctx: Context, authenticate: (req: FastifyRequest) => Promise<void>): void {
  const { dim } = embeddingSettings(ctx.config);
  app.post<{ Body: SearchBody }>(
    '/api/v1/files/search/vector',
    // A JSON vector of `dim` floats takes up to ~25 bytes a value.
    { schema: { body: searchSchema }, preHandler: authenticate, bodyLimit: 4096 + dim * 32 },
    async (req) => {
      const b = req.body;
      const p = req.principal!;
      if (p.isService && !b.user_id) throw new InvalidInputError('a service token must name the user_id to search', 'invalid_query', 400);
      return searchSimilar(ctx, {
        userId: actingUser(p, b.user_id),
        vector: b.query_embedding,
        fileId: b.file_id,
        topK: b.top_k,
        minSimilarity: b.min_similarity,
        orientationTolerant: b.orientation_tolerant,
      });
    },
  );
}
