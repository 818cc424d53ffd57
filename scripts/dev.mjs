#!/usr/bin/env node
// `npm run dev`: bring the local stack up, initialise MongoDB and the buckets,
// and show `biostore status`, so a newcomer sees the whole system alive.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function step(title, cmd, args, env = process.env) {
  process.stderr.write(`\n== ${title}: ${[cmd, ...args].join(' ')}\n`);
  const res = spawnSync(cmd, args, { cwd: ROOT, env, stdio: 'inherit' });
  if (res.status !== 0) {
    process.stderr.write(`dev: "${title}" failed (exit ${res.status ?? res.signal})\n`);
    process.exit(res.status ?? 1);
  }
}

step('build', 'npx', ['tsc', '-p', 'tsconfig.build.json']);
step('local stack', process.execPath, ['scripts/stack.mjs', 'up', '--quiet']);

const stackEnv = Object.fromEntries(
  readFileSync(join(ROOT, '.stack', 'env'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const env = { ...process.env, ...stackEnv };
const biostore = (title, ...args) => step(title, process.execPath, ['bin/biostore.js', ...args], env);

biostore('init-mongo', 'init-mongo');
biostore('init-buckets', 'init-buckets');
biostore('status', 'status');
process.stderr.write('\nThe stack is up. In another shell:  set -a; . .stack/env; set +a; npx biostore --help\n');
