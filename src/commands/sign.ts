/** `biostore sign`: a presigned upload for a user, from a terminal or a script. */
import type { Command } from 'commander';
import { line, printJson } from '../cli/io.js';
import type { Runtime } from '../cli/main.js';
import { UsageError } from '../core/errors.js';

interface SignOpts {
  user: string;
  filename: string;
  contentType: string;
  useCase?: string;
  size?: string;
  sha256?: string;
  post?: boolean;
  expires?: string;
  json?: boolean;
}

const wholeNumber = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} ${v} is not a whole number`);
  return Number(v);
};

export function registerSign(program: Command, rt: Runtime): void {
  program
    .command('sign')
    .description('presign an upload for a user and record it as pending')
    .requiredOption('--user <id>', 'the owner (1-64 letters, digits, _ or -)')
    .requiredOption('--filename <name>', "the client's file name (a label only; keys are made from ids)")
    .requiredOption('--content-type <type>', 'image/jpeg, image/png or image/webp')
    .option('--use-case <name>', 'what the upload is for, e.g. vision_scan', 'gallery')
    .option('--size <bytes>', 'exact size; S3 then refuses any other length')
    .option('--sha256 <hex>', 'SHA-256 of the file; S3 then refuses other bytes')
    .option('--post', 'a presigned POST form instead of a PUT (for clients that cannot declare the size)')
    .option('--expires <seconds>', 'URL lifetime (default UPLOAD_URL_TTL_SECONDS)')
    .option('--json', 'print the JSON response')
    .addHelpText(
      'after',
      `
Examples:
  $ biostore sign --user u1 --filename steak.jpg --content-type image/jpeg --size 48213 --json
  $ biostore sign --user u1 --filename steak.jpg --content-type image/jpeg --post`,
    )
    .action(async (opts: SignOpts, cmd: Command) => {
      const sizeBytes = wholeNumber('--size', opts.size);
      const expiresInSeconds = wholeNumber('--expires', opts.expires);
      await rt.withContext(cmd, async (ctx) => {
        const { signUpload } = await import('../core/uploads.js');
        const r = await signUpload(ctx, {
          userId: opts.user,
          filename: opts.filename,
          contentType: opts.contentType,
          useCase: opts.useCase,
          sizeBytes,
          checksumSha256: opts.sha256,
          mode: opts.post ? 'post' : 'put',
          expiresInSeconds,
        });
        if (opts.json) return printJson(rt.io, r);
        line(rt.io, `file_id:    ${r.file_id}`);
        line(rt.io, `key:        ${r.key}`);
        line(rt.io, `method:     ${r.method}`);
        line(rt.io, `expires_at: ${r.expires_at}`);
        line(rt.io, `upload_url: ${r.upload_url}`);
        for (const [k, v] of Object.entries(r.headers)) line(rt.io, `header:     ${k}: ${v}`);
        for (const [k, v] of Object.entries(r.fields ?? {})) line(rt.io, `field:      ${k}=${v}`);
      });
    });
}
