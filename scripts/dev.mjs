#!/usr/bin/env node
// `npm run dev`: bring the local stack up, initialise MongoDB and the buckets,
// show `biostore status`, then run the daemon in the foreground and print a
// token and a copy-paste upload example, so a newcomer sees the whole system alive.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
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

// The daemon, in the foreground. Presigned URLs point at a second versitygw over
// the same folder whose event webhook calls the daemon, so uploads register at once
// (the reconciler, every 10 s here, is the safety net for lost events).
const offset = Number(process.env.STACK_PORT_OFFSET ?? 0);
const port = Number(process.env.PORT ?? 8004);
const gwPort = 7071 + offset;
const daemonEnv = { ...env, PORT: String(port), S3_ENDPOINT_URL: `http://127.0.0.1:${gwPort}`, SCHEDULE_RECONCILE: '*/10 * * * * *' };
const daemon = spawn(process.execPath, ['bin/biostore.js', 'daemon', '--host', '127.0.0.1'], { cwd: ROOT, env: daemonEnv, stdio: 'inherit' });
let gw;
const stopAll = (code) => {
  gw?.kill('SIGTERM');
  daemon.kill('SIGTERM');
  process.exitCode = code;
};
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));
daemon.on('exit', (code) => {
  gw?.kill('SIGTERM');
  process.exit(code ?? 0);
});

const until = async (probe, what) => {
  for (let i = 0; i < 100; i++) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up`);
};
await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 'the daemon');
const hook = `http://127.0.0.1:${port}/api/v1/webhooks/s3?token=${encodeURIComponent(stackEnv.WEBHOOK_SECRET)}`;
mkdirSync(join(ROOT, '.stack', 'logs'), { recursive: true });
const gwLog = openSync(join(ROOT, '.stack', 'logs', 'versitygw-events.log'), 'a');
gw = spawn(
  stackEnv.STACK_VERSITYGW_BIN,
  ['--access', stackEnv.AWS_ACCESS_KEY_ID, '--secret', stackEnv.AWS_SECRET_ACCESS_KEY, '--port', `127.0.0.1:${gwPort}`, '--quiet',
    '--event-webhook-url', hook, 'posix', '--sidecar', stackEnv.STACK_S3_SIDECAR_DIR, stackEnv.STACK_S3_DATA_DIR],
  { stdio: ['ignore', gwLog, gwLog] },
);
await until(async () => (await fetch(`http://127.0.0.1:${gwPort}/`)).status > 0, 'versitygw (events)');

const token = spawnSync(process.execPath, ['bin/biostore.js', 'token', '--user', 'demo', '--ttl', '12h'], { cwd: ROOT, env, encoding: 'utf8' }).stdout.trim();
const photo = resolve(ROOT, '..', 'shared', 'fixtures', 'images', 'coffee-phone-4032x3024.jpg');
process.stderr.write(`
biostore daemon on http://127.0.0.1:${port} (Ctrl-C stops it). Try, in another shell from ${ROOT}:

TOKEN=${token}
FILE=${photo}
SIGN=$(curl -s -X POST http://127.0.0.1:${port}/api/v1/upload/sign -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
  -d "{\\"filename\\":\\"coffee.jpg\\",\\"content_type\\":\\"image/jpeg\\",\\"size_bytes\\":$(stat -c %s "$FILE")}")
echo "$SIGN"
curl -s -o /dev/null -w 'upload: HTTP %{http_code}\\n' -X PUT "$(node -p 'JSON.parse(process.argv[1]).upload_url' "$SIGN")" -H 'Content-Type: image/jpeg' --data-binary @"$FILE"
sleep 1; set -a; . .stack/env; set +a; npx biostore status

`);
