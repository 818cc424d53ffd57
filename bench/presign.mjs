#!/usr/bin/env node
/**
 * Presigning throughput, run by hand: `npx tsc -p tsconfig.build.json && node bench/presign.mjs [sdk|signer|fast ...]`.
 *
 * Signs the same upload (PUT with signed Content-Type, Content-Length and
 * x-amz-checksum-sha256) with (a) the SDK's getSignedUrl, (b) biostore's fast
 * Presigner, and for reference (c) @smithy/signature-v4 called directly.
 * Each is run 5 times for ~2 s; the median URLs/s is printed, then peak RSS.
 * No server is contacted: presigning is pure CPU.
 */
import { S3Client, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { Presigner, hexToBase64 } from '../dist/storage/presign.js';

const RUNS = 5;
const RUN_MS = 2000;
const opts = { region: 'us-east-1', endpoint: 'http://127.0.0.1:7070', forcePathStyle: true, accessKeyId: 'bench-key', secretAccessKey: 'bench-secret' };
const bucket = 'bench-hot';
const sha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
let seq = 0;
const nextKey = () => `raw/user-${seq % 1000}/${(seq++).toString(36)}.jpg`;

async function sdkOne(client) {
  return getSignedUrl(
    client,
    new PutObjectCommand({ Bucket: bucket, Key: nextKey(), ContentType: 'image/jpeg', ContentLength: 3_500_000, ChecksumSHA256: hexToBase64(sha) }),
    { expiresIn: 60, signableHeaders: new Set(['content-type', 'content-length']), unhoistableHeaders: new Set(['x-amz-checksum-sha256']) },
  );
}

const cases = {
  sdk: () => {
    const client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return { label: '(a) SDK getSignedUrl', async: true, one: () => sdkOne(client) };
  },
  fast: () => {
    const p = new Presigner(opts);
    return {
      label: '(b) biostore Presigner',
      async: false,
      one: () => p.presignPut({ bucket, key: nextKey(), contentType: 'image/jpeg', contentLength: 3_500_000, checksumSha256Hex: sha, expiresInSeconds: 60 }),
    };
  },
  signer: () => {
    const signer = new SignatureV4({ service: 's3', region: opts.region, sha256: Sha256, uriEscapePath: false, applyChecksum: false, credentials: opts });
    const b64 = hexToBase64(sha);
    return {
      label: '(c) SignatureV4.presign (ref)',
      async: true,
      one: () =>
        signer.presign(
          {
            method: 'PUT',
            protocol: 'http:',
            hostname: '127.0.0.1',
            port: 7070,
            path: `/${bucket}/${nextKey()}`,
            query: { 'x-id': 'PutObject' },
            headers: { host: '127.0.0.1:7070', 'content-type': 'image/jpeg', 'content-length': '3500000', 'x-amz-checksum-sha256': b64, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
          },
          { expiresIn: 60, unhoistableHeaders: new Set(['x-amz-checksum-sha256']) },
        ),
    };
  },
};

async function run(c) {
  // Warm up the JIT and the day-key caches.
  for (let i = 0; i < 2000; i++) await c.one();
  const rates = [];
  for (let r = 0; r < RUNS; r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < RUN_MS) {
      if (c.async) for (let i = 0; i < 100; i++) await c.one();
      else for (let i = 0; i < 1000; i++) c.one();
      n += c.async ? 100 : 1000;
      t = performance.now();
    }
    rates.push((n * 1000) / (t - t0));
  }
  rates.sort((x, y) => x - y);
  return rates;
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const which = process.argv.slice(2).length ? process.argv.slice(2) : ['sdk', 'fast', 'signer'];
console.log(`node ${process.version}, ${RUNS} runs x ~${RUN_MS / 1000} s each, PUT with signed type+length+checksum`);
for (const name of which) {
  if (!cases[name]) throw new Error(`unknown case ${name}; use: ${Object.keys(cases).join(' ')}`);
  const c = cases[name]();
  const rates = await run(c);
  console.log(
    `${c.label.padEnd(30)} median ${fmt(rates[Math.floor(RUNS / 2)]).padStart(8)} URLs/s  (min ${fmt(rates[0])}, max ${fmt(rates[RUNS - 1])})  peak RSS so far ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
  );
}
console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
