#!/usr/bin/env node
/**
 * Signing-endpoint benchmark, run by hand (never by the tests):
 *
 *   npx tsc -p tsconfig.build.json && node bench/sign.mjs [--no-profile] [--profile]
 *
 * Against the local stack (.stack/env: FerretDB, versitygw), with a database
 * and buckets of its own that it drops/deletes at the end:
 *   1. POST /api/v1/upload/sign through HTTP, the server in a child process
 *      (this script forked with --server) so autocannon and Fastify do not
 *      share an event loop: (a) fixed 1,000 req/s for 10 s, checked against
 *      the target "1,000 req/s with p99 < 25 ms"; (b) max throughput, 10 s.
 *      100 users, one HS256 token each, a random one per request.
 *   2. signUpload() in-process (no HTTP): quota reservation + MongoDB insert
 *      + presign, 50 concurrent callers for ~5 s.
 *   3. Presigner.presignPut alone: 5 runs of ~2 s, median URLs/s.
 * If (a) misses the target (or with --profile), phase (a) is run again
 * against a child started with `node --cpu-prof` and the top self-time
 * functions are printed (--no-profile skips that).
 *
 * Caveats: autocannon's rate mode is closed-loop (each connection waits for
 * its response), so latencies are not corrected for coordinated omission; and
 * client, server and the database share this machine's cores.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseDotenv } from 'dotenv';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = (p) => pathToFileURL(join(ROOT, 'dist', p)).href;
const PROF_DIR = '/tmp/biostore-prof';

const TARGET_RATE = 1000;
const TARGET_P99_MS = 25;
const PHASE_SECONDS = 10;
const CONNECTIONS = 50;
const USERS = 100;
const BODY = JSON.stringify({ filename: 'steak.jpg', content_type: 'image/jpeg', size_bytes: 48213 });
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const { loadConfig } = await import(DIST('core/config.js'));
const { Context } = await import(DIST('core/context.js'));
const { buildApp } = await import(DIST('daemon/app.js'));
const { Metrics } = await import(DIST('core/metrics.js'));

/** VmHWM / VmRSS of this process, in MB. */
function memStatus() {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { hwmMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
}

// ---------------------------------------------------------------- server child

async function serverMain() {
  const env = JSON.parse(process.env.BENCH_SIGN_ENV ?? '{}');
  const ctx = new Context(loadConfig({ env, envFile: '/dev/null' }));
  ctx.metrics = new Metrics(false);
  // Connect and probe the server kind (doc locks or not) before the first request.
  await ctx.mongo.connect();
  await ctx.mongo.serverInfo();
  const app = buildApp(ctx, { logger: false });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  console.log(`[server ${process.pid}] listening on ${url}`);
  process.send({ type: 'ready', url });
  process.on('message', async (m) => {
    if (m?.type === 'stats') {
      process.send({ type: 'stats', id: m.id, cpu: process.cpuUsage(), ...memStatus() });
    } else if (m?.type === 'exit') {
      await app.close();
      await ctx.close();
      const { hwmMb } = memStatus();
      console.log(`[server ${process.pid}] exiting, peak RSS (VmHWM) ${hwmMb.toFixed(0)} MB`);
      process.send({ type: 'bye', hwmMb }, () => process.exit(0));
    }
  });
}

/** Forks this script as the server; resolves once it listens. */
async function startServer(env, { profile = false } = {}) {
  const execArgv = profile ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [];
  const child = fork(fileURLToPath(import.meta.url), ['--server'], {
    execArgv,
    env: { ...process.env, BENCH_SIGN_ENV: JSON.stringify(env) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let seq = 0;
  const waiters = new Map();
  child.on('message', (m) => {
    const w = waiters.get(m.type === 'stats' ? `stats:${m.id}` : m.type);
    if (w) {
      waiters.delete(m.type === 'stats' ? `stats:${m.id}` : m.type);
      w(m);
    }
  });
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  const wait = (key) => new Promise((r) => waiters.set(key, r));
  const ready = await Promise.race([wait('ready'), exited.then((code) => Promise.reject(new Error(`server child exited with ${code}`)))]);
  return {
    pid: child.pid,
    url: ready.url,
    stats: () => {
      const id = ++seq;
      const p = wait(`stats:${id}`);
      child.send({ type: 'stats', id });
      return p;
    },
    stop: async () => {
      if (child.exitCode !== null) return { hwmMb: NaN };
      const bye = wait('bye');
      child.send({ type: 'exit' });
      const res = await Promise.race([bye, sleep(15_000).then(() => ({ hwmMb: NaN }))]);
      await Promise.race([exited, sleep(15_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
      return res;
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

// ---------------------------------------------------------------- helpers

const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : 'n/a');
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

function cpuTimes() {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

/** Runs fn while measuring machine CPU busy % and the server child's CPU %. */
async function measured(server, fn) {
  const m0 = cpuTimes();
  const s0 = server ? await server.stats() : null;
  const t0 = performance.now();
  const result = await fn();
  const wallMs = performance.now() - t0;
  const m1 = cpuTimes();
  const s1 = server ? await server.stats() : null;
  const machineBusy = (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total);
  const serverCpuMs = s0 && s1 ? (s1.cpu.user - s0.cpu.user + s1.cpu.system - s0.cpu.system) / 1000 : NaN;
  return { result, machineBusy, serverCpu: (100 * serverCpuMs) / wallMs, serverCpuMs, serverHwm: s1?.hwmMb ?? NaN };
}

async function loadTest(autocannon, url, tokens, { rate, seconds }) {
  const opts = {
    url: `${url}/api/v1/upload/sign`,
    connections: CONNECTIONS,
    duration: seconds,
    timeout: 10,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[0]}` },
        body: BODY,
        // A random user per request, so no user is hit in lockstep by all connections.
        setupRequest: (req) => ({
          ...req,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[Math.floor(Math.random() * tokens.length)]}` },
        }),
      },
    ],
  };
  if (rate) opts.overallRate = rate;
  const r = await autocannon(opts);
  return {
    rate: r['2xx'] / r.duration,
    total: r.requests.total,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    statusCodes: r.statusCodeStats,
  };
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** signUpload() in this process, `concurrency` callers for `ms`. */
async function inProcessSign(ctx, signUpload, { concurrency, ms }) {
  const lat = [];
  let errors = 0;
  let firstError;
  const deadline = performance.now() + ms;
  const t0 = performance.now();
  const worker = async () => {
    while (performance.now() < deadline) {
      const userId = `bench-user-${Math.floor(Math.random() * USERS)}`;
      const s = performance.now();
      try {
        await signUpload(ctx, { userId, filename: 'steak.jpg', contentType: 'image/jpeg', sizeBytes: 48213 });
        lat.push(performance.now() - s);
      } catch (err) {
        errors++;
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - t0;
  lat.sort((a, b) => a - b);
  return { opsPerSec: (lat.length * 1000) / elapsed, ok: lat.length, errors, firstError, p50: pct(lat, 50), p99: pct(lat, 99) };
}

/** Presigner.presignPut alone: 5 runs of ~2 s, URLs/s each (sorted). */
function barePresign(presigner, bucket) {
  let seq = 0;
  const one = () =>
    presigner.presignPut({
      bucket,
      key: `raw/bench-user-${seq % USERS}/${(seq++).toString(36)}-0000-4000-8000-000000000000.jpg`,
      contentType: 'image/jpeg',
      contentLength: 48213,
      checksumSha256Hex: SHA,
      expiresInSeconds: 60,
    });
  for (let i = 0; i < 5000; i++) one();
  const rates = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < 2000) {
      for (let i = 0; i < 1000; i++) one();
      n += 1000;
      t = performance.now();
    }
    rates.push((n * 1000) / (t - t0));
  }
  return rates.sort((a, b) => a - b);
}

/** Self time per function from a .cpuprofile, top `n`. */
function summariseProfile(file, n = 15) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((nd) => [nd.id, nd]));
  const selfUs = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const short = (u) => u.replace(pathToFileURL(ROOT).href + '/', '').replace(/^.*node_modules\//, '~/').replace(/^file:\/\//, '');
  const fns = new Map();
  const groups = new Map();
  let idle = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id).callFrame;
    if (cf.functionName === '(idle)') idle += us;
    const where = cf.url ? `${short(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}\t${where}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const group = !cf.url
      ? cf.functionName.startsWith('(') ? cf.functionName : 'native/builtin'
      : cf.url.startsWith('node:')
        ? 'node: internals'
        : /node_modules\//.test(cf.url)
          ? `~/${/node_modules\/((@[^/]+\/)?[^/]+)/.exec(cf.url)[1]}`
          : short(cf.url);
    groups.set(group, (groups.get(group) ?? 0) + us);
  }
  const busy = total - idle;
  console.log(`\nCPU profile ${file}: ${fmt(total / 1e6, 1)} s sampled, ${fmt(busy / 1e6, 1)} s busy (not idle)`);
  console.log('(samples are taken on the main thread by wall clock: time spent descheduled inside a call, e.g. a socket write, counts as its self time)');
  console.log(`Top ${n} functions by self time (% of busy time):`);
  const top = [...fns].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, n);
  for (const [k, us] of top) {
    const [name, where] = k.split('\t');
    console.log(`  ${fmt((100 * us) / busy, 1).padStart(5)}%  ${fmt(us / 1000).padStart(6)} ms  ${name.slice(0, 40).padEnd(40)} ${where}`);
  }
  console.log('Self time by module (% of busy time), top 12:');
  for (const [g, us] of [...groups].filter(([g]) => g !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`  ${fmt((100 * us) / busy, 1).padStart(5)}%  ${g}`);
  }
}

async function cleanupStores(ctx, env) {
  const { S3Client, ListObjectsV2Command, DeleteObjectsCommand, DeleteBucketCommand } = await import('@aws-sdk/client-s3');
  const problems = [];
  try {
    await ctx.mongo.connect();
    await ctx.mongo.db.dropDatabase();
  } catch (err) {
    problems.push(`drop database ${env.MONGO_DB_NAME}: ${err.message}`);
  }
  const s3 = new S3Client({
    region: env.AWS_REGION,
    endpoint: env.S3_ENDPOINT_URL,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  for (const bucket of [env.BUCKET_HOT, env.BUCKET_ARCHIVE]) {
    try {
      for (;;) {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
        if (!keys.length) break;
        await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
      }
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    } catch (err) {
      if (err?.name !== 'NoSuchBucket') problems.push(`delete bucket ${bucket}: ${err.message}`);
    }
  }
  s3.destroy();
  return problems;
}

// ---------------------------------------------------------------- main

async function main() {
  const args = new Set(process.argv.slice(2));
  const loadStart = load();
  const { default: autocannon } = await import('autocannon');
  const { mintToken } = await import(DIST('core/auth.js'));
  const { signUpload } = await import(DIST('core/uploads.js'));
  const { initMongo } = await import(DIST('storage/mongo-schema.js'));
  const { initBuckets } = await import(DIST('storage/s3.js'));

  const id = randomBytes(4).toString('hex');
  const env = {
    ...parseDotenv(readFileSync(join(ROOT, '.stack', 'env'))),
    MONGO_DB_NAME: `bench_sign_${id}`,
    BUCKET_HOT: `bench-sign-${id}-hot`,
    BUCKET_ARCHIVE: `bench-sign-${id}-arc`,
    QUOTA_FILES_PER_USER: '0',
    QUOTA_BYTES_PER_USER: '0',
    LOG_LEVEL: 'warn',
  };
  const config = loadConfig({ env, envFile: '/dev/null' });
  const ctx = new Context(config);
  const servers = [];
  const rows = [];
  let exitCode = 0;
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error('\ninterrupted: stopping the server and cleaning up (Ctrl-C again to quit now)');
    for (const s of servers) s.kill();
    cleanupStores(ctx, env).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);

  console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average at start: ${loadStart}`);
  console.log(`database ${env.MONGO_DB_NAME}, buckets ${env.BUCKET_HOT} / ${env.BUCKET_ARCHIVE}`);
  try {
    await initMongo(ctx.mongo, { vectorDim: config.vector.dim });
    const c = config.s3;
    await initBuckets(ctx.s3, c.endpoint, { hot: c.bucketHot, archive: c.bucketArchive, corsOrigins: c.corsOrigins, region: c.region });
    const info = await ctx.mongo.serverInfo();
    console.log(`MongoDB: ${info.kind} ${info.ferretdbVersion ?? info.version} (doc locks: ${await ctx.mongo.needsDocLocks()})`);

    const now = new Date();
    const tokens = [];
    for (let i = 0; i < USERS; i++) {
      tokens.push((await mintToken(config.auth, { userId: `bench-user-${i}`, scopes: [], ttlSeconds: 3600, now })).token);
    }

    const endpointRow = (name, m) => {
      const r = m.result;
      const codes = Object.entries(r.statusCodes ?? {}).map(([k, v]) => `${k}:${v.count}`).join(' ');
      return [
        name,
        `${fmt(r.rate)} req/s`,
        `p50 ${r.p50} / p90 ${r.p90} / p99 ${r.p99} / max ${r.max} ms`,
        `non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts} [${codes}]; ` +
          `server CPU ${fmt(m.serverCpu)}% (${fmt(m.serverCpuMs / Math.max(1, r.total), 2)} ms/req), machine busy ${fmt(m.machineBusy)}%`,
      ];
    };

    // ---- 1. endpoint load, server in a child process
    const server = await startServer(env);
    servers.push(server);
    // The warm-up is the first request of each (fresh) user: it shows errors on first use, e.g. racing upserts.
    console.log('warm-up: 3 s at 300 req/s (fresh users)');
    const warm = await measured(server, () => loadTest(autocannon, server.url, tokens, { rate: 300, seconds: 3 }));
    console.log(`  -> ${fmt(warm.result.rate)} req/s, non-2xx ${warm.result.non2xx}, errors ${warm.result.errors}`);
    rows.push(endpointRow('warm-up @ 300 (fresh users)', warm));

    console.log(`phase (a): ${TARGET_RATE} req/s for ${PHASE_SECONDS} s, ${CONNECTIONS} connections`);
    const a = await measured(server, () => loadTest(autocannon, server.url, tokens, { rate: TARGET_RATE, seconds: PHASE_SECONDS }));
    const ar = a.result;
    const holds = ar.rate >= TARGET_RATE * 0.99 && ar.p99 < TARGET_P99_MS && ar.non2xx === 0 && ar.errors === 0;
    console.log(`  -> ${fmt(ar.rate)} req/s, p50 ${ar.p50} ms, p99 ${ar.p99} ms, non-2xx ${ar.non2xx}, errors ${ar.errors}`);

    console.log(`phase (b): max throughput for ${PHASE_SECONDS} s, ${CONNECTIONS} connections`);
    const b = await measured(server, () => loadTest(autocannon, server.url, tokens, { rate: 0, seconds: PHASE_SECONDS }));
    const br = b.result;
    console.log(`  -> ${fmt(br.rate)} req/s, p50 ${br.p50} ms, p99 ${br.p99} ms, non-2xx ${br.non2xx}, errors ${br.errors}`);
    const bye = await server.stop();
    const peakRss = Number.isFinite(bye.hwmMb) ? bye.hwmMb : b.serverHwm;

    rows.push(endpointRow(`HTTP sign @ ${TARGET_RATE} req/s`, a));
    rows.push(endpointRow('HTTP sign, max', b));
    rows.push(['server peak RSS', `${fmt(peakRss)} MB`, 'VmHWM of the server child', '']);
    const verdict = `target ${TARGET_RATE} req/s with p99 < ${TARGET_P99_MS} ms: ${holds ? 'HOLDS' : 'MISSED'}`;
    console.log(verdict);

    // ---- 5. profile when the target is missed
    let profileFile;
    if ((!holds || args.has('--profile')) && !args.has('--no-profile')) {
      mkdirSync(PROF_DIR, { recursive: true });
      const before = new Set(readdirSync(PROF_DIR));
      const ps = await startServer(env, { profile: true });
      servers.push(ps);
      console.log(`profiling: phase (a) again against a --cpu-prof server (pid ${ps.pid})`);
      await loadTest(autocannon, ps.url, tokens, { rate: 300, seconds: 2 });
      const pa = await measured(ps, () => loadTest(autocannon, ps.url, tokens, { rate: TARGET_RATE, seconds: PHASE_SECONDS }));
      await ps.stop();
      rows.push(endpointRow(`(profiled) @ ${TARGET_RATE}`, pa));
      const fresh = readdirSync(PROF_DIR).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
      profileFile = fresh.length ? join(PROF_DIR, fresh.sort().at(-1)) : undefined;
      if (!profileFile) console.log(`no new .cpuprofile in ${PROF_DIR}`);
    }

    // ---- 3a. signUpload in-process
    console.log('signUpload() in-process: 50 concurrent for 5 s');
    // A context of its own, with command monitoring on from the start (it cannot be turned on after connecting).
    const ictx = new Context(config);
    ictx.mongo.client.monitorCommands = true;
    const commands = new Map();
    let writeErrors = 0;
    ictx.mongo.client.on('commandStarted', (e) => commands.set(e.commandName, (commands.get(e.commandName) ?? 0) + 1));
    ictx.mongo.client.on('commandSucceeded', (e) => {
      if (e.reply?.writeErrors?.length) writeErrors++;
    });
    let s;
    try {
      await inProcessSign(ictx, signUpload, { concurrency: 10, ms: 1000 });
      commands.clear();
      writeErrors = 0;
      const c0 = process.cpuUsage();
      s = await measured(null, () => inProcessSign(ictx, signUpload, { concurrency: 50, ms: 5000 }));
      const c1 = process.cpuUsage(c0);
      s.cpuMsPerOp = (c1.user + c1.system) / 1000 / Math.max(1, s.result.ok + s.result.errors);
    } finally {
      await ictx.close();
    }
    const sr = s.result;
    const n = Math.max(1, sr.ok + sr.errors);
    const perSign = [...commands].filter(([k]) => k !== 'buildInfo' && k !== 'endSessions').map(([k, v]) => `${k} ${fmt(v / n, 2)}`).join(', ');
    if (sr.firstError) console.log(`  first error: ${sr.firstError.message}`);
    rows.push([
      'signUpload() in-process',
      `${fmt(sr.opsPerSec)} ops/s`,
      `p50 ${fmt(sr.p50, 2)} / p99 ${fmt(sr.p99, 2)} ms`,
      `concurrency 50, ${sr.ok} ok, ${sr.errors} errors; ${fmt(s.cpuMsPerOp, 2)} ms CPU/op, machine busy ${fmt(s.machineBusy)}%`,
    ]);
    rows.push(['  MongoDB commands per sign', '', perSign, `+ ${fmt(writeErrors / n, 2)} duplicate-key write errors/sign (lock contention)`]);

    // ---- 3b. bare presign
    console.log('Presigner.presignPut: 5 x 2 s');
    const rates = barePresign(ctx.presigner, config.s3.bucketHot);
    rows.push(['presignPut (bare)', `${fmt(rates[2])} URLs/s`, `min ${fmt(rates[0])}, max ${fmt(rates[4])}`, 'median of 5 x 2 s; type+length+checksum signed']);

    const loadEnd = load();
    rows.push(['load average (1/5/15 min)', '', `start ${loadStart}`, `end ${loadEnd}; ${os.cpus().length} CPUs shared with other work: expect noise`]);

    console.log('\n=== summary ===');
    const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) console.log(`${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}`);
    console.log(verdict);
    if (profileFile) summariseProfile(profileFile);
  } catch (err) {
    console.error(`bench failed: ${err.stack ?? err}`);
    exitCode = 1;
  } finally {
    for (const sv of servers) sv.kill();
    const problems = await cleanupStores(ctx, env);
    await ctx.close();
    if (problems.length) {
      console.error(`cleanup problems:\n  ${problems.join('\n  ')}`);
      exitCode = 1;
    } else {
      console.log(`cleaned up: dropped ${env.MONGO_DB_NAME}, deleted ${env.BUCKET_HOT} and ${env.BUCKET_ARCHIVE}`);
    }
  }
  process.off('SIGINT', onSignal);
  process.exit(exitCode);
}

if (process.argv.includes('--server')) {
  await serverMain();
} else {
  await main();
}
