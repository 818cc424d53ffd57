#!/usr/bin/env node
// The local stack of real servers for development, tests and CI:
//   FerretDB (MongoDB wire protocol, SQLite backend), versitygw (S3, posix
//   backend), moto server (S3 storage classes and Glacier restore) and Redis.
//
//   node scripts/stack.mjs up [--quiet]   install what is missing, start, wait, write .stack/env
//   node scripts/stack.mjs down           stop what `up` started
//   node scripts/stack.mjs status         which servers answer
//
// Binaries are built once into a cache outside the work tree
// ($BIOSTORE_STACK_CACHE, default ~/.cache/biostore-stack) so a second `up`,
// or a fresh clone on the same machine, takes seconds. Data, logs and pids
// live under .stack/ (git-ignored). Ports move together with STACK_PORT_OFFSET.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STACK = join(ROOT, '.stack');
const CACHE = process.env.BIOSTORE_STACK_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'biostore-stack');
const OFFSET = Number(process.env.STACK_PORT_OFFSET ?? 0);
const HOST = '127.0.0.1';

const FERRETDB_VERSION = 'v1.24.2';
const VERSITYGW_VERSION = 'v1.8.0';
const MOTO_VERSION = '5.2.5';

// Local-only credentials for servers bound to loopback; never used elsewhere.
const S3_KEY = 'biostore-local';
const S3_SECRET = 'biostore-local-secret-key-0123456789';
const JWT_SECRET = 'biostore-local-jwt-secret-0123456789';
const WEBHOOK_SECRET = 'biostore-local-webhook-secret-0123';

const PORTS = {
  ferretdb: 27018 + OFFSET,
  versitygw: 7070 + OFFSET,
  moto: 5055 + OFFSET,
  redis: 6390 + OFFSET,
};

const args = process.argv.slice(2);
const cmd = args[0] ?? 'up';
const quiet = args.includes('--quiet');
const log = (msg) => process.stderr.write(`${msg}\n`);
const info = (msg) => {
  if (!quiet) log(msg);
};

function run(command, argv, opts = {}) {
  return new Promise((res, rej) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', rej);
    child.on('close', (code, signal) => {
      if (code === 0) return res(out);
      const tail = out.trim().split('\n').slice(-15).join('\n');
      rej(new Error(`${command} ${argv.join(' ')} failed (exit ${code ?? signal}):\n${tail}`));
    });
  });
}

function which(name) {
  const res = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return res.status === 0 ? res.stdout.trim() : null;
}

function hashFiles(files) {
  const h = createHash('sha256');
  for (const f of files) h.update(readFileSync(f));
  return h.digest('hex').slice(0, 12);
}

// ---- installers: each returns the path of what it installed, cached ----

async function installFerretDB() {
  const src = join(ROOT, 'stack', 'ferretdb');
  const tag = hashFiles([join(src, 'main.go'), join(src, 'go.mod'), join(src, 'go.sum')]);
  const bin = join(CACHE, `ferretdb-${FERRETDB_VERSION}-${tag}`);
  if (existsSync(bin)) return bin;
  if (!which('go')) throw new Error('Go is needed to build FerretDB; install Go 1.22+ and re-run');
  log(`stack: building FerretDB ${FERRETDB_VERSION} (first run only, a few minutes)...`);
  mkdirSync(CACHE, { recursive: true });
  await run('go', ['build', '-trimpath', '-o', `${bin}.tmp`, '.'], { cwd: src, env: { ...process.env, CGO_ENABLED: '0' } });
  await run('mv', [`${bin}.tmp`, bin]);
  return bin;
}

async function installVersityGW() {
  const dir = join(CACHE, `versitygw-${VERSITYGW_VERSION}`);
  const bin = join(dir, 'versitygw');
  if (existsSync(bin)) return bin;
  if (!which('go')) throw new Error('Go is needed to build versitygw; install Go 1.22+ and re-run');
  log(`stack: building versitygw ${VERSITYGW_VERSION} (first run only, a few minutes)...`);
  mkdirSync(dir, { recursive: true });
  await run('go', ['install', `github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}`], {
    env: { ...process.env, GOBIN: dir, CGO_ENABLED: '0' },
  });
  return bin;
}

async function installMoto() {
  const venv = join(CACHE, `moto-${MOTO_VERSION}`);
  const bin = join(venv, 'bin', 'moto_server');
  if (existsSync(bin)) return bin;
  const py = which('python3');
  if (!py) throw new Error('python3 is needed for moto server; install Python 3.9+ and re-run');
  log(`stack: installing moto[server] ${MOTO_VERSION} (first run only)...`);
  rmSync(venv, { recursive: true, force: true });
  await run(py, ['-m', 'venv', venv]);
  await run(join(venv, 'bin', 'pip'), ['install', '--quiet', `moto[server]==${MOTO_VERSION}`]);
  return bin;
}

async function installRedis() {
  const found = which('redis-server');
  if (found) return found;
  if (process.getuid?.() !== 0 || !which('apt-get')) {
    throw new Error('redis-server is missing; install it (Debian: apt-get install redis-server) and re-run');
  }
  log('stack: installing redis-server with apt-get (first run only)...');
  try {
    await run('apt-get', ['install', '-y', '-qq', 'redis-server'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch {
    await run('apt-get', ['update', '-qq']);
    await run('apt-get', ['install', '-y', '-qq', 'redis-server'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  return which('redis-server');
}

// ---- process management ----

function pidFile(name) {
  return join(STACK, 'pids', `${name}.pid`);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(name) {
  try {
    const pid = Number(readFileSync(pidFile(name), 'utf8'));
    return pid > 0 && alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

function portOpen(port, timeoutMs = 500) {
  return new Promise((res) => {
    const s = connect({ host: HOST, port });
    const done = (ok) => {
      s.destroy();
      res(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Waits until the server answers a real request, not merely accepts TCP. */
async function waitReady(name, port, probe, timeoutMs = 60_000) {
  const start = Date.now();
  for (;;) {
    if (await portOpen(port)) {
      try {
        if (await probe()) return Date.now() - start;
      } catch {
        // not yet
      }
    }
    const exited = readPid(name) === null;
    if (exited || Date.now() - start > timeoutMs) {
      const logFile = join(STACK, 'logs', `${name}.log`);
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-10).join('\n') : '';
      const why = exited ? 'exited at start' : `did not answer on ${HOST}:${port} within ${timeoutMs / 1000}s`;
      throw new Error(`${name} ${why}; log ${logFile}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

const httpProbe = (port) => async () => {
  const res = await fetch(`http://${HOST}:${port}/`, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.status > 0;
};

const redisProbe = (port) => () =>
  new Promise((res) => {
    const s = connect({ host: HOST, port });
    s.setTimeout(1000, () => {
      s.destroy();
      res(false);
    });
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      res(d.toString().startsWith('+PONG'));
    });
    s.once('error', () => res(false));
  });

// FerretDB answers an OP_MSG; a TCP accept plus a short settle is enough for the driver,
// which retries server selection. We still check that the process stays up.
const ferretProbe = (name) => async () => {
  await new Promise((r) => setTimeout(r, 200));
  return readPid(name) !== null;
};

async function startServer(name, bin, argv, port, probe) {
  const existing = readPid(name);
  if (existing && (await portOpen(port))) {
    info(`stack: ${name} already running (pid ${existing}) on ${HOST}:${port}`);
    return;
  }
  if (await portOpen(port)) {
    throw new Error(
      `port ${HOST}:${port} for ${name} is taken by another process; stop it or set STACK_PORT_OFFSET (e.g. STACK_PORT_OFFSET=100)`,
    );
  }
  mkdirSync(join(STACK, 'logs'), { recursive: true });
  mkdirSync(join(STACK, 'pids'), { recursive: true });
  const out = openSync(join(STACK, 'logs', `${name}.log`), 'a');
  const child = spawn(bin, argv, { detached: true, stdio: ['ignore', out, out], cwd: STACK });
  child.unref();
  writeFileSync(pidFile(name), String(child.pid));
  const ms = await waitReady(name, port, probe);
  info(`stack: ${name} started (pid ${child.pid}) on ${HOST}:${port} in ${ms} ms`);
}

function envLines(bins) {
  return {
    MONGODB_URI: `mongodb://${HOST}:${PORTS.ferretdb}/`,
    MONGO_DB_NAME: 'bio_ai',
    STORAGE_TYPE: 's3-compatible',
    S3_ENDPOINT_URL: `http://${HOST}:${PORTS.versitygw}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: S3_KEY,
    AWS_SECRET_ACCESS_KEY: S3_SECRET,
    REDIS_URL: `redis://${HOST}:${PORTS.redis}`,
    JWT_SECRET,
    WEBHOOK_SECRET,
    MOTO_ENDPOINT_URL: `http://${HOST}:${PORTS.moto}`,
    STACK_VERSITYGW_BIN: bins.versitygw,
    STACK_S3_DATA_DIR: join(STACK, 'data', 's3-objects'),
    STACK_S3_SIDECAR_DIR: join(STACK, 'data', 's3-metadata'),
  };
}

async function up() {
  const t0 = Date.now();
  mkdirSync(STACK, { recursive: true });
  const [ferretdb, versitygw, moto, redis] = await Promise.all([
    installFerretDB(),
    installVersityGW(),
    installMoto(),
    installRedis(),
  ]);
  const bins = { ferretdb, versitygw, moto, redis };
  const data = (d) => {
    const p = join(STACK, 'data', d);
    mkdirSync(p, { recursive: true });
    return p;
  };
  const s3Data = data('s3-objects');
  const s3Meta = data('s3-metadata');
  await Promise.all([
    startServer(
      'ferretdb',
      bins.ferretdb,
      ['--listen-addr', `${HOST}:${PORTS.ferretdb}`, '--data-dir', data('ferretdb'), '--log-level', 'warn'],
      PORTS.ferretdb,
      ferretProbe('ferretdb'),
    ),
    startServer(
      'versitygw',
      bins.versitygw,
      ['--access', S3_KEY, '--secret', S3_SECRET, '--port', `${HOST}:${PORTS.versitygw}`, '--quiet', 'posix', '--sidecar', s3Meta, s3Data],
      PORTS.versitygw,
      httpProbe(PORTS.versitygw),
    ),
    startServer('moto', bins.moto, ['-H', HOST, '-p', String(PORTS.moto)], PORTS.moto, httpProbe(PORTS.moto)),
    startServer(
      'redis',
      bins.redis,
      ['--bind', HOST, '--port', String(PORTS.redis), '--save', '', '--appendonly', 'no', '--dir', data('redis')],
      PORTS.redis,
      redisProbe(PORTS.redis),
    ),
  ]);
  const env = envLines(bins);
  const text = Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  writeFileSync(join(STACK, 'env'), `${text}\n`);
  info(`stack: up in ${((Date.now() - t0) / 1000).toFixed(1)} s; environment written to .stack/env:`);
  if (!quiet) {
    for (const [k, v] of Object.entries(env)) {
      const secret = /SECRET/.test(k);
      process.stdout.write(`${k}=${secret ? '(see .stack/env)' : v}\n`);
    }
    info('stack: configure a shell with:  set -a; . .stack/env; set +a');
  }
}

async function down() {
  for (const name of Object.keys(PORTS)) {
    const pid = readPid(name);
    if (!pid) {
      info(`stack: ${name} not running`);
      continue;
    }
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(pidFile(name), { force: true });
    info(`stack: ${name} stopped`);
  }
}

async function status() {
  let ok = true;
  for (const [name, port] of Object.entries(PORTS)) {
    const open = await portOpen(port);
    ok &&= open;
    process.stdout.write(`${name.padEnd(10)} ${HOST}:${port}  ${open ? 'up' : 'down'}  pid ${readPid(name) ?? '-'}\n`);
  }
  process.exitCode = ok ? 0 : 1;
}

const commands = { up, down, status };
if (!commands[cmd]) {
  log(`usage: node scripts/stack.mjs up [--quiet] | down | status`);
  process.exit(2);
}
commands[cmd]().catch((err) => {
  log(`stack: ${err.message}`);
  process.exit(1);
});
