/**
 * Presigned S3 URLs for Direct-to-Cloud uploads and downloads: phones PUT (or
 * POST a form) straight to S3, so the daemon only ever signs, never proxies.
 *
 * Signing is done here with node:crypto rather than through the SDK's
 * `getSignedUrl`: that one runs the whole command middleware stack and endpoint
 * resolution for every URL (about 2,300 URLs/s on one core), while a sign
 * request is pure CPU that needs two hashes once the day's signing key is known
 * (tens of thousands of URLs/s). The output is byte-for-byte what the SDK
 * produces for the same input and time (the integration tests check it against
 * `getSignedUrl` and against a real S3 server), so S3 checks it the same way.
 *
 * Reference: AWS SigV4 query-string authentication and POST policy signing,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
 */
import { createHash, createHmac } from 'node:crypto';
import { InvalidInputError } from '../core/errors.js';

/** Where and as whom to sign; the same fields as the S3 client's options, so one config feeds both. */
export interface PresignerOptions {
  region: string;
  /** A custom S3-compatible endpoint (`http(s)://host[:port][/base]`); undefined means AWS S3. */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** A presigned request: the client sends exactly `method`, `url` and `headers` (plus the body). */
export interface PresignedRequest {
  url: string;
  method: 'PUT' | 'GET';
  /**
   * Headers the client must send, exactly as given: they are part of the
   * signature. `Content-Length` is set from the body by every HTTP client
   * (fetch, OkHttp, URLSession); the body must have exactly that length.
   */
  headers: Record<string, string>;
  /** When S3 stops accepting the URL (signing second + expiry). */
  expiresAt: Date;
}

/** Inputs of a presigned upload. */
export interface PresignPutParams {
  bucket: string;
  key: string;
  contentType: string;
  /** When known, S3 refuses a body of any other length. */
  contentLength?: number;
  /** The SHA-256 of the body as the client declared it (hex); S3 refuses a body with another hash. */
  checksumSha256Hex?: string;
  /** Default 60; at most 7 days (the SigV4 limit). */
  expiresInSeconds?: number;
}

/** Inputs of a presigned download. */
export interface PresignGetParams {
  bucket: string;
  key: string;
  /** Default 60; at most 7 days. */
  expiresInSeconds?: number;
  /** Overrides the Content-Type S3 answers with. */
  responseContentType?: string;
  /** Overrides the Content-Disposition S3 answers with (e.g. `attachment; filename="x.webp"`). */
  responseContentDisposition?: string;
}

/** Inputs of a presigned browser-form (POST policy) upload. */
export interface PresignPostParams {
  bucket: string;
  key: string;
  contentType: string;
  /** Largest accepted body, in bytes; the policy allows 1..maxBytes. */
  maxBytes: number;
  /** Default 60; at most 7 days. */
  expiresInSeconds?: number;
}

/** A presigned POST: the client sends a multipart/form-data POST to `url` with `fields`, then the `file` part last. */
export interface PresignedPost {
  url: string;
  fields: Record<string, string>;
  expiresAt: Date;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const SERVICE = 's3';
const DEFAULT_EXPIRES = 60;
const MAX_EXPIRES = 7 * 24 * 3600;
const MAX_KEY_BYTES = 1024;
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;
const SHA256_HEX_RE = /^[0-9a-fA-F]{64}$/;
// Bucket names that can be a DNS label under the endpoint's host (no dots: TLS wildcard certs cover one label).
const VIRTUAL_HOSTABLE_BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
// With the u flag a surrogate class matches only unpaired halves, which UTF-8 (and so S3) cannot carry.
const LONE_SURROGATE = /[\ud800-\udfff]/u;
const IP_HOST = /^(?:\d{1,3}\.){3}\d{1,3}$|^\[/;
// Header values are signed after trimming and collapsing blanks; control characters cannot be sent at all.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/**
 * Base64 of the bytes a hex string spells: clients declare SHA-256 digests in
 * hex, S3's `x-amz-checksum-sha256` wants base64. Throws on malformed hex
 * rather than silently truncating like `Buffer.from(hex, 'hex')`.
 */
export function hexToBase64(hex: string): string {
  if (!HEX_RE.test(hex)) throw new InvalidInputError(`not a hex string: "${hex.slice(0, 80)}"`);
  return Buffer.from(hex, 'hex').toString('base64');
}

/** RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9 - . _ ~ (UTF-8 first). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An S3 key as a URL path: each segment encoded, `/` kept (S3 does not normalise or double-encode). */
function encodeKey(key: string): string {
  let out = '';
  let start = 0;
  for (;;) {
    const slash = key.indexOf('/', start);
    if (slash === -1) return out + uriEncode(key.slice(start));
    out += `${uriEncode(key.slice(start, slash))}/`;
    start = slash + 1;
  }
}

/** Trim and collapse blanks, as SigV4 canonicalises header values; so the value sent is the value signed. */
function headerValue(name: string, v: string): string {
  if (CONTROL_CHARS.test(v)) throw new InvalidInputError(`${name} contains control characters`);
  const out = v.replace(/[ \t]+/g, ' ').trim();
  if (!out) throw new InvalidInputError(`${name} is empty`);
  return out;
}

function expiresOf(v: number | undefined): number {
  const e = v ?? DEFAULT_EXPIRES;
  if (!Number.isInteger(e) || e < 1 || e > MAX_EXPIRES) {
    throw new InvalidInputError(`expiry must be a whole number of seconds from 1 to ${MAX_EXPIRES}, got ${e}`);
  }
  return e;
}

function checkKey(key: string): void {
  if (!key) throw new InvalidInputError('object key is empty');
  if (key.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(key) > MAX_KEY_BYTES) throw new InvalidInputError(`object key is longer than ${MAX_KEY_BYTES} bytes`);
  // HTTP clients resolve "." and ".." path segments before sending, so such a key would reach another object.
  if (/(?:^|\/)\.\.?(?:\/|$)/.test(key)) throw new InvalidInputError(`object key has a "." or ".." segment: ${key}`);
  if (LONE_SURROGATE.test(key)) {
    throw new InvalidInputError('object key is not valid Unicode (lone surrogate)');
  }
}

interface Target {
  /** `scheme://host` */
  origin: string;
  /** Canonical `host` header: hostname[:port], default ports left out. */
  host: string;
  /** Encoded path, starting with `/`. */
  path: string;
}

interface Stamp {
  second: number;
  longDate: string;
  shortDate: string;
}

/**
 * Signs S3 PUT/GET URLs and POST policies fast enough to sit on the daemon's
 * hot path: endpoint parsed once, the SigV4 day key cached per UTC day, and
 * each URL two node:crypto calls. One per process (per credentials).
 */
export class Presigner {
  readonly #region: string;
  readonly #secret: string;
  readonly #accessKeyId: string;
  readonly #sessionToken: string | undefined;
  readonly #forcePathStyle: boolean;
  readonly #clock: () => Date;
  readonly #scheme: string;
  readonly #hostname: string;
  /** `:port` or '' */
  readonly #port: string;
  /** Endpoint base path without trailing slash ('' for none). */
  readonly #basePath: string;
  readonly #hostIsIp: boolean;
  /** `X-Amz-Credential` value up to the date, already URI-encoded. */
  readonly #credentialPrefix: string;
  readonly #scopeSuffix: string;
  /** Encoded `X-Amz-Security-Token=...&` or ''. */
  readonly #tokenParam: string;
  #dayKey: { shortDate: string; key: Buffer } | undefined;
  #stamp: Stamp = { second: Number.NaN, longDate: '', shortDate: '' };

  constructor(opts: PresignerOptions, clock: () => Date = () => new Date()) {
    if (!opts.accessKeyId || !opts.secretAccessKey) throw new InvalidInputError('presigning needs an access key id and a secret access key');
    if (!opts.region) throw new InvalidInputError('presigning needs a region');
    this.#region = opts.region;
    this.#accessKeyId = opts.accessKeyId;
    this.#secret = opts.secretAccessKey;
    this.#sessionToken = opts.sessionToken || undefined;
    this.#forcePathStyle = opts.forcePathStyle;
    this.#clock = clock;
    if (opts.endpoint) {
      const u = new URL(opts.endpoint);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidInputError(`S3 endpoint must be http(s): ${opts.endpoint}`);
      this.#scheme = u.protocol;
      this.#hostname = u.hostname;
      this.#port = u.port ? `:${u.port}` : '';
      this.#basePath = u.pathname.replace(/\/+$/, '');
    } else {
      this.#scheme = 'https:';
      this.#hostname = `s3.${opts.region}.amazonaws.com${opts.region.startsWith('cn-') ? '.cn' : ''}`;
      this.#port = '';
      this.#basePath = '';
    }
    this.#hostIsIp = IP_HOST.test(this.#hostname);
    this.#scopeSuffix = `/${opts.region}/${SERVICE}/aws4_request`;
    this.#credentialPrefix = `${uriEncode(opts.accessKeyId)}%2F`;
    this.#tokenParam = this.#sessionToken ? `X-Amz-Security-Token=${uriEncode(this.#sessionToken)}&` : '';
  }

  /**
   * A URL the phone PUTs the original to. Content-Type, and when given
   * Content-Length and `x-amz-checksum-sha256`, are signed headers (not query
   * parameters), so S3 itself refuses another type, size or body.
   */
  presignPut(p: PresignPutParams): PresignedRequest {
    const expires = expiresOf(p.expiresInSeconds);
    const contentType = headerValue('Content-Type', p.contentType);
    const headers: Record<string, string> = { 'Content-Type': contentType };
    const t = this.#target(p.bucket, p.key);
    // Canonical headers, in sorted order: content-length, content-type, host, x-amz-checksum-sha256.
    let canonical = '';
    let signed = '';
    if (p.contentLength !== undefined) {
      if (!Number.isSafeInteger(p.contentLength) || p.contentLength < 0) {
        throw new InvalidInputError(`Content-Length must be a whole number of bytes, got ${p.contentLength}`);
      }
      headers['Content-Length'] = String(p.contentLength);
      canonical += `content-length:${p.contentLength}\n`;
      signed += 'content-length;';
    }
    canonical += `content-type:${contentType}\nhost:${t.host}\n`;
    signed += 'content-type;host';
    if (p.checksumSha256Hex !== undefined) {
      if (!SHA256_HEX_RE.test(p.checksumSha256Hex)) throw new InvalidInputError('checksum must be a SHA-256 digest in hex (64 hex digits)');
      const b64 = hexToBase64(p.checksumSha256Hex);
      headers['x-amz-checksum-sha256'] = b64;
      canonical += `x-amz-checksum-sha256:${b64}\n`;
      signed += ';x-amz-checksum-sha256';
    }
    return this.#sign('PUT', t, expires, canonical, signed, '', 'x-id=PutObject', headers);
  }

  /** A short-lived download URL, so clients fetch images from S3 (or its CDN origin) without credentials. */
  presignGet(p: PresignGetParams): PresignedRequest {
    const expires = expiresOf(p.expiresInSeconds);
    const t = this.#target(p.bucket, p.key);
    let tail = '';
    if (p.responseContentDisposition !== undefined) {
      tail += `response-content-disposition=${uriEncode(headerValue('response-content-disposition', p.responseContentDisposition))}&`;
    }
    if (p.responseContentType !== undefined) {
      tail += `response-content-type=${uriEncode(headerValue('response-content-type', p.responseContentType))}&`;
    }
    return this.#sign('GET', t, expires, `host:${t.host}\n`, 'host', tail, 'x-id=GetObject', {});
  }

  /**
   * A browser-form upload (POST policy): for clients that can only send
   * multipart forms. The policy pins the exact key and Content-Type and a body
   * of 1..maxBytes, which S3 enforces. Signed here (not with the SDK's
   * `createPresignedPost`) so it follows the injected clock like PUT/GET;
   * async only to keep the door open for credentials that need a refresh.
   */
  async presignPost(p: PresignPostParams): Promise<PresignedPost> {
    const expires = expiresOf(p.expiresInSeconds);
    const contentType = headerValue('Content-Type', p.contentType);
    if (!Number.isSafeInteger(p.maxBytes) || p.maxBytes < 1) throw new InvalidInputError(`maxBytes must be a positive whole number, got ${p.maxBytes}`);
    checkKey(p.key);
    const t = this.#bucketTarget(p.bucket);
    const stamp = this.#now();
    const credential = `${this.#accessKeyId}/${stamp.shortDate}${this.#scopeSuffix}`;
    const expiresAt = new Date((stamp.second + expires) * 1000);
    const conditions: unknown[] = [
      { bucket: p.bucket },
      ['eq', '$key', p.key],
      ['eq', '$Content-Type', contentType],
      ['content-length-range', 1, p.maxBytes],
      { 'x-amz-algorithm': ALGORITHM },
      { 'x-amz-credential': credential },
      { 'x-amz-date': stamp.longDate },
    ];
    if (this.#sessionToken) conditions.push({ 'x-amz-security-token': this.#sessionToken });
    const policy = Buffer.from(
      JSON.stringify({ expiration: expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'), conditions }),
      'utf8',
    ).toString('base64');
    const fields: Record<string, string> = {
      key: p.key,
      'Content-Type': contentType,
      'X-Amz-Algorithm': ALGORITHM,
      'X-Amz-Credential': credential,
      'X-Amz-Date': stamp.longDate,
    };
    if (this.#sessionToken) fields['X-Amz-Security-Token'] = this.#sessionToken;
    fields.Policy = policy;
    fields['X-Amz-Signature'] = createHmac('sha256', this.#signingKey(stamp.shortDate)).update(policy).digest('hex');
    return { url: `${t.origin}${t.path}`, fields, expiresAt };
  }

  #sign(
    method: 'PUT' | 'GET',
    t: Target,
    expires: number,
    canonicalHeaders: string,
    signedHeaders: string,
    // Sorted query parameters after X-Amz-SignedHeaders and before x-id, each ending in '&'.
    lowerParams: string,
    xId: string,
    headers: Record<string, string>,
  ): PresignedRequest {
    const stamp = this.#now();
    // Parameters in canonical (byte) order; X-Amz-Signature sorts between X-Amz-Security-Token and X-Amz-SignedHeaders.
    const head =
      `X-Amz-Algorithm=${ALGORITHM}&X-Amz-Content-Sha256=${UNSIGNED_PAYLOAD}` +
      `&X-Amz-Credential=${this.#credentialPrefix}${stamp.shortDate}%2F${uriEncode(this.#region)}%2F${SERVICE}%2Faws4_request` +
      `&X-Amz-Date=${stamp.longDate}&X-Amz-Expires=${expires}&${this.#tokenParam}`;
    const tail = `X-Amz-SignedHeaders=${uriEncode(signedHeaders)}&${lowerParams}${xId}`;
    const canonicalRequest = `${method}\n${t.path}\n${head}${tail}\n${canonicalHeaders}\n${signedHeaders}\n${UNSIGNED_PAYLOAD}`;
    const stringToSign = `${ALGORITHM}\n${stamp.longDate}\n${stamp.shortDate}${this.#scopeSuffix}\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
    const signature = createHmac('sha256', this.#signingKey(stamp.shortDate)).update(stringToSign).digest('hex');
    return {
      url: `${t.origin}${t.path}?${head}X-Amz-Signature=${signature}&${tail}`,
      method,
      headers,
      expiresAt: new Date((stamp.second + expires) * 1000),
    };
  }

  /** The signing time, formatted once per second rather than per URL. */
  #now(): Stamp {
    const ms = this.#clock().getTime();
    if (!Number.isFinite(ms)) throw new InvalidInputError('presigner clock returned an invalid date');
    const second = Math.floor(ms / 1000);
    if (second !== this.#stamp.second) {
      const longDate = new Date(second * 1000).toISOString().replace(/[-:]|\.\d{3}/g, '');
      this.#stamp = { second, longDate, shortDate: longDate.slice(0, 8) };
    }
    return this.#stamp;
  }

  /** The SigV4 day key (four chained HMACs), derived once per UTC day. */
  #signingKey(shortDate: string): Buffer {
    if (this.#dayKey?.shortDate !== shortDate) {
      let k = createHmac('sha256', `AWS4${this.#secret}`).update(shortDate).digest();
      k = createHmac('sha256', k).update(this.#region).digest();
      k = createHmac('sha256', k).update(SERVICE).digest();
      k = createHmac('sha256', k).update('aws4_request').digest();
      this.#dayKey = { shortDate, key: k };
    }
    return this.#dayKey.key;
  }

  #virtualHosted(bucket: string): boolean {
    return !this.#forcePathStyle && !this.#hostIsIp && VIRTUAL_HOSTABLE_BUCKET.test(bucket);
  }

  /** Scheme, host and path of the bucket itself (POST target): virtual-hosted where S3's rules allow, else path-style. */
  #bucketTarget(bucket: string): Target {
    if (!bucket) throw new InvalidInputError('bucket name is empty');
    if (this.#virtualHosted(bucket)) {
      const host = `${bucket}.${this.#hostname}${this.#port}`;
      return { origin: `${this.#scheme}//${host}`, host, path: `${this.#basePath}/` };
    }
    const host = `${this.#hostname}${this.#port}`;
    return { origin: `${this.#scheme}//${host}`, host, path: `${this.#basePath}/${uriEncode(bucket)}` };
  }

  #target(bucket: string, key: string): Target {
    checkKey(key);
    const b = this.#bucketTarget(bucket);
    const sep = b.path.endsWith('/') ? '' : '/';
    return { origin: b.origin, host: b.host, path: `${b.path}${sep}${encodeKey(key)}` };
  }
}
