/** `biostore search`: similar photos of one user, or groups of near-duplicates. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { line, printJson, table } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { embeddingSettings } from '../core/embeddings.js';
import { UsageError } from '../core/errors.js';

interface Opts {
  user?: string;
  fileId?: string;
  image?: string;
  duplicates?: boolean;
  topK?: string;
  minSimilarity?: string;
  anyOrientation?: boolean;
  json?: boolean;
}

function similarity(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d*(\.\d+)?$/.test(v.trim()) || !Number.isFinite(n) || n < -1 || n > 1) {
    throw new UsageError(`--min-similarity ${v} must be a number from -1 to 1 (e.g. 0.8)`);
  }
  return n;
}

function topK(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--top-k ${v} must be a whole number from 1 to 100`);
  return Number(v);
}

/** Registers the command. Exists so operators can check what the app's "similar photos" would show. */
export function registerSearch(program: Command, rt: Runtime): void {
  program
    .command('search')
    .description("find a user's photos similar to one of their files or to an image, or groups of near-duplicates")
    .option('--user <id>', 'whose files to search (required)')
    .option('--file-id <id>', 'more like this file (the file itself is left out)')
    .option('--image <path>', 'more like this image file (JPEG, PNG or WebP)')
    .option('--duplicates', 'list groups of near-duplicates instead')
    .option('--top-k <k>', 'at most this many results, 1-100', '10')
    .option('--min-similarity <s>', 'cosine similarity cut-off, -1..1 (default: VECTOR_SIMILARITY_THRESHOLD)')
    .option('--any-orientation', 'also match copies turned or mirrored in their pixels (local model; 8x the work)')
    .option('--json', 'print JSON (the same shape as POST /api/v1/files/search/vector)')
    .addHelpText(
      'after',
      `
Compares the vectors stored by the embedding pipeline (see reindex-embeddings); files without
one are not found. Scores are cosine similarities: with the local model, 0.75+ means the same
photo (re-encoded, resized, cropped, brightened), unrelated photos score near 0.
Exit code 5 when the file is not the user's, 2 on bad flags.

Examples:
  $ biostore search --user u1 --file-id 3f0c9e1a-2b4d-4c6e-8f10-123456789abc
  $ biostore search --user u1 --image ./lunch.jpg --top-k 5 --min-similarity 0.8
  $ biostore search --duplicates --user u1 --json`,
    )
    .action(async (o: Opts, cmd: Command) => {
      if (!o.user) throw new UsageError('--user is required: search looks at one user\'s files');
      const modes = [o.fileId !== undefined, o.image !== undefined, Boolean(o.duplicates)].filter(Boolean).length;
      if (modes !== 1) throw new UsageError('give exactly one of --file-id, --image or --duplicates');
      const minSimilarity = similarity(o.minSimilarity);
      const k = topK(o.topK);
      embeddingSettings(rt.config(cmd)); // a configuration mismatch is exit 3, before connecting
      let image: Buffer | undefined;
      if (o.image !== undefined) {
        try {
          image = await readFile(resolve(rt.io.cwd, o.image));
        } catch (err) {
          throw new UsageError(`cannot read --image ${o.image}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
        }
      }
      await rt.withContext(cmd, async (ctx) => {
        const { findDuplicates, searchSimilar } = await import('../core/search.js');
        if (o.duplicates) {
          const r = await findDuplicates(ctx, { userId: o.user!, minSimilarity, orientationTolerant: o.anyOrientation });
          if (o.json) return printJson(rt.io, r);
          r.groups.forEach((g, i) => line(rt.io, `group ${i + 1} (${g.size} files): ${g.file_ids.join(' ')}`));
          line(rt.io, `${r.groups.length} group(s) of near-duplicates among ${r.files_compared} files (similarity >= ${r.min_similarity}, ${r.model})`);
          return;
        }
        let vector: Float32Array | undefined;
        if (image) {
          const { embedQueryImage, providerFor } = await import('../jobs/embed.js');
          vector = await embedQueryImage(ctx, providerFor(ctx), image);
        }
        const r = await searchSimilar(ctx, {
          userId: o.user!,
          fileId: o.fileId,
          vector: vector ? Array.from(vector) : undefined,
          topK: k,
          minSimilarity,
          orientationTolerant: o.anyOrientation,
          urls: Boolean(o.json),
        });
        if (o.json) return printJson(rt.io, r);
        if (r.results.length) {
          line(rt.io, table(rt.io, ['#', 'score', 'file_id', 'status', 'uploaded'], r.results.map((h, i) => [
            i + 1,
            h.score.toFixed(3),
            h.file_id,
            h.status,
            h.upload_timestamp ?? '',
          ])));
        }
        const how = r.method === 'exact' ? `exact scan of ${r.scanned} vectors` : 'vector index';
        line(rt.io, `${r.results.length} match(es) with similarity >= ${r.min_similarity} (${r.model}, ${how}, ${r.took_ms} ms)`);
      });
    });
}
