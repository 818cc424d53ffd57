#!/usr/bin/env node
/**
 * Image-pipeline throughput, run by hand (never by the tests):
 *
 *   npx tsc -p tsconfig.build.json && node bench/optimize.mjs [--n 16] [--rounds 3] [--inflight 2]
 *        [--effort E] [--tool-effort E] [--tool-threads T] [--tools sharp,imagemagick,vips] [--file photo.jpg]
 *
 * The same job, two images in flight, for: biostore's optimizeImage (sharp, in
 * this process), ImageMagick `convert` and the libvips CLI (two processes per
 * image). One job = the upload decoded, auto-oriented, a WebP q80 gallery
 * image bounded by 1920x1080 in the photo's own orientation, a 320 px WebP
 * thumbnail, metadata stripped. Rounds interleave the tools so that load from
 * other processes on the machine hits all of them alike; medians are printed.
 *
 * Besides images/s (wall clock) it prints CPU ms per image (user+system of
 * this process for sharp, of the reaped children for the CLIs), which is less
 * sensitive to a busy machine. The encoders run at the same libwebp effort
 * (biostore's setting unless --tool-effort says otherwise), so the ratios
 * compare pipelines, not encoder presets, and each CLI image gets as many
 * worker threads as a sharp image (VIPS_CONCURRENCY / MAGICK_THREAD_LIMIT), so
 * a busy machine does not favour the tool that starts more threads. The
 * outputs are checked (size, metadata chunks) and listed before timing: the
 * libvips CLI of Debian 12 (8.14.1) ignores `strip` for WebP and keeps the
 * EXIF, GPS included. Peak RSS is this process's VmHWM,
 * which only sharp's work raises (the CLIs run in child processes).
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setInterval, clearInterval } from 'node:timers';

const args = parseArgs(process.argv.slice(2));
const FILE = args.file ?? '/work/shared/fixtures/images/coffee-phone-4032x3024.jpg';
const N = Number(args.n ?? 16);
const ROUNDS = Number(args.rounds ?? 3);
const INFLIGHT = Number(args.inflight ?? 2);

let media;
try {
  media = await import('../dist/media/images.js');
} catch (err) {
  console.error(`cannot load dist/media/images.js (${err.message.split('\n')[0]}): run \`npx tsc -p tsconfig.build.json\` first`);
  process.exit(2);
}
const { DEFAULT_OPTIMIZE_SETTINGS, configureSharp, optimizeImage, probeImage } = media;

const settings = { ...DEFAULT_OPTIMIZE_SETTINGS };
if (args.effort !== undefined) settings.effort = Number(args.effort);
const toolEffort = Number(args['tool-effort'] ?? settings.effort);
// What the daemon's composition root does: one libvips thread per image (images run in parallel), no cache.
const tuning = configureSharp({ concurrency: 1, cache: false });

// Each CLI image gets the same number of worker threads as a sharp image (libvips concurrency).
const TOOL_THREADS = String(args['tool-threads'] ?? tuning.concurrency);
const childEnv = { ...process.env, VIPS_CONCURRENCY: TOOL_THREADS, MAGICK_THREAD_LIMIT: TOOL_THREADS, OMP_NUM_THREADS: TOOL_THREADS };
const input = readFileSync(FILE);
const probe = await probeImage(input);
const first = await optimizeImage(input, settings);
const G = first.gallery;
const T = settings.thumbSize;
const swapped = probe.orientedWidth !== probe.width;
const storedTarget = swapped ? `${G.height}x${G.width}` : `${G.width}x${G.height}`;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const work = mkdtempSync(join(tmpdir(), 'biostore-bench-'));

console.error(
  `input ${FILE}: ${probe.format} ${probe.width}x${probe.height}, displayed ${probe.orientedWidth}x${probe.orientedHeight}, ${input.length} bytes`,
);
console.error(
  `job: gallery ${G.width}x${G.height} WebP q${settings.quality} + thumbnail ${T} px; effort: sharp ${settings.effort}, tools ${toolEffort}; ` +
    `${N} images x ${ROUNDS} rounds, ${INFLIGHT} in flight; sharp concurrency ${tuning.concurrency}, cache ${tuning.cache}`,
);
console.error(
  `threads per image: sharp ${tuning.concurrency}, CLIs ${TOOL_THREADS} (VIPS_CONCURRENCY, MAGICK_THREAD_LIMIT; --tool-threads to change)`,
);

// --- the competitors -------------------------------------------------------

const magick = findImageMagick();
const vipsthumbnail = which('vipsthumbnail');

const ONLY = args.tools ? new Set(args.tools.split(',')) : undefined;
const want = (key) => !ONLY || ONLY.has(key);

const tools = [
  {
    name: 'sharp (biostore)',
    inProcess: true,
    run: async () => {
      const r = await optimizeImage(input, settings);
      return { gallery: r.gallery.data, thumb: r.thumb.data };
    },
  },
];
if (magick && want('imagemagick')) {
  tools.push({
    name: `ImageMagick (${magick.label})`,
    run: async (i) => {
      const g = join(work, `im-${i}.webp`);
      const t = join(work, `im-${i}.thumb.webp`);
      // One process, one decode: the JPEG size hint lets libjpeg scale on load (IM's shrink-on-load).
      await exec(magick.cmd, [
        ...magick.pre,
        FILE,
        '-define', `jpeg:size=${storedTarget}`,
        '-auto-orient', '-strip',
        '-resize', `${G.width}x${G.height}>`,
        '-quality', String(settings.quality),
        '-define', `webp:method=${toolEffort}`,
        '-write', g,
        '-resize', `${T}x${T}>`,
        t,
      ]);
      return { gallery: g, thumb: t };
    },
  });
} else if (want('imagemagick')) {
  console.error('ImageMagick not found (apt-get install -y imagemagick): skipped');
}
if (vipsthumbnail && want('vips')) {
  const opts = `[Q=${settings.quality},effort=${toolEffort},strip]`;
  tools.push({
    name: 'vips CLI, both from the original',
    run: async (i) => {
      const g = join(work, `va-${i}.webp`);
      const t = join(work, `va-${i}.thumb.webp`);
      await exec(vipsthumbnail, [FILE, '-s', `${G.width}x${G.height}`, '-o', g + opts]);
      await exec(vipsthumbnail, [FILE, '-s', `${T}x${T}`, '-o', t + opts]);
      return { gallery: g, thumb: t };
    },
  });
  tools.push({
    name: 'vips CLI, thumbnail from the gallery',
    run: async (i) => {
      const g = join(work, `vb-${i}.webp`);
      const t = join(work, `vb-${i}.thumb.webp`);
      await exec(vipsthumbnail, [FILE, '-s', `${G.width}x${G.height}`, '-o', g + opts]);
      await exec(vipsthumbnail, [g, '-s', `${T}x${T}`, '-o', t + opts]);
      return { gallery: g, thumb: t };
    },
  });
} else if (want('vips')) {
  console.error('vipsthumbnail not found (apt-get install -y libvips-tools): skipped');
}

// --- check that everyone makes the same two outputs --------------------------

console.error('\noutputs (first job of each):');
for (const tool of tools) {
  const out = await tool.run('check');
  const g = describeWebp(out.gallery);
  const t = describeWebp(out.thumb);
  console.error(
    `  ${tool.name.padEnd(38)} gallery ${g.size} ${g.bytes} B, thumb ${t.size} ${t.bytes} B, ` +
      `metadata chunks: ${[...new Set([...g.meta, ...t.meta])].join(',') || 'none'}`,
  );
}

// --- measure ---------------------------------------------------------------

const results = Object.fromEntries(tools.map((t) => [t.name, { ips: [], cpu: [] }]));
let peakSampled = 0;
const sampler = setInterval(() => {
  peakSampled = Math.max(peakSampled, process.memoryUsage.rss());
}, 20);

for (let round = 1; round <= ROUNDS; round++) {
  const order = round % 2 ? tools : [...tools].reverse();
  for (const tool of order) {
    const cpu0 = cpuMs();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: INFLIGHT }, async () => {
        while (next < N) await tool.run(next++);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuMs();
    const cpuPerImage = tool.inProcess ? (cpu.self - cpu0.self) / N : (cpu.children - cpu0.children) / N;
    results[tool.name].ips.push(N / seconds);
    results[tool.name].cpu.push(cpuPerImage);
    console.error(`  round ${round}: ${tool.name.padEnd(38)} ${(N / seconds).toFixed(2)} images/s, ${cpuPerImage.toFixed(0)} CPU ms/image`);
  }
}
clearInterval(sampler);
rmSync(work, { recursive: true, force: true });

// --- report (stdout) ---------------------------------------------------------

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = tools.map((t) => ({ name: t.name, ips: med(results[t.name].ips), cpu: med(results[t.name].cpu) }));
const sharpRow = summary[0];
console.log(`\nmedians over ${ROUNDS} rounds of ${N} images, ${INFLIGHT} in flight, libwebp effort sharp ${settings.effort} / tools ${toolEffort}`);
console.log(`${'tool'.padEnd(38)} ${'images/s'.padStart(9)} ${'CPU ms/img'.padStart(11)} ${'sharp x (wall)'.padStart(15)} ${'sharp x (CPU)'.padStart(14)}`);
for (const row of summary) {
  const wall = row === sharpRow ? '' : `${(sharpRow.ips / row.ips).toFixed(2)}x`;
  const cpu = row === sharpRow ? '' : `${(row.cpu / sharpRow.cpu).toFixed(2)}x`;
  console.log(`${row.name.padEnd(38)} ${row.ips.toFixed(2).padStart(9)} ${row.cpu.toFixed(0).padStart(11)} ${wall.padStart(15)} ${cpu.padStart(14)}`);
}
const ratio = (pred) => {
  const rows = summary.filter((r) => r !== sharpRow && pred(r.name));
  if (rows.length === 0) return 'n/a';
  const best = rows.reduce((a, b) => (a.ips >= b.ips ? a : b));
  return `${(sharpRow.ips / best.ips).toFixed(2)}x (vs ${best.name})`;
};
console.log(`sharp/imagemagick: ${ratio((n) => n.startsWith('ImageMagick'))}`);
console.log(`sharp/vips:        ${ratio((n) => n.startsWith('vips'))}  (against the faster vips variant)`);
console.log(`peak RSS (this process, sharp only): VmHWM ${vmHwmMb()} MB, sampled max ${(peakSampled / 2 ** 20).toFixed(0)} MB`);

// --- helpers -----------------------------------------------------------------

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unknown argument ${argv[i]}`);
    out[m[1]] = m[2] ?? argv[++i];
  }
  return out;
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * ImageMagick itself, not a wrapper: `magick` (IM7), else IM6's real binary.
 * A `convert` earlier on PATH may be a script standing in for it.
 */
function findImageMagick() {
  const im7 = which('magick');
  if (im7) return { cmd: im7, pre: [], label: 'magick' };
  for (const p of [which('convert-im6.q16'), '/usr/bin/convert-im6.q16', '/usr/bin/convert']) {
    if (p && existsSync(p)) return { cmd: p, pre: [], label: p.split('/').pop() };
  }
  return undefined;
}

function exec(cmd, argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${stderr.trim()}`))));
  });
}

/** CPU ms of this process (all threads) and of its reaped children, from /proc. */
function cpuMs() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = (i) => Number(f[i]) * (1000 / CLK_TCK);
  return { self: ticks(11) + ticks(12), children: ticks(13) + ticks(14) };
}

function vmHwmMb() {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? (Number(m[1]) / 1024).toFixed(0) : '?';
}

/** Size and metadata chunks of a WebP (Buffer or path), read from its RIFF container. */
function describeWebp(fileOrBuffer) {
  const b = Buffer.isBuffer(fileOrBuffer) ? fileOrBuffer : readFileSync(fileOrBuffer);
  const meta = [];
  let size = '?';
  for (let at = 12; at + 8 <= b.length; ) {
    const type = b.toString('latin1', at, at + 4);
    const len = b.readUInt32LE(at + 4);
    const d = at + 8;
    if (type === 'VP8X') size = `${1 + b.readUIntLE(d + 4, 3)}x${1 + b.readUIntLE(d + 7, 3)}`;
    else if (type === 'VP8 ' && size === '?') size = `${b.readUInt16LE(d + 6) & 0x3fff}x${b.readUInt16LE(d + 8) & 0x3fff}`;
    else if (type === 'VP8L' && size === '?') {
      const v = b.readUInt32LE(d + 1);
      size = `${(v & 0x3fff) + 1}x${((v >> 14) & 0x3fff) + 1}`;
    }
    if (type === 'EXIF' || type === 'XMP ' || type === 'ICCP') meta.push(type.trim());
    at = d + len + (len & 1);
  }
  return { size, bytes: b.length, meta };
}
