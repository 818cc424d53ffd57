/**
 * Bearer tokens for the daemon: HS256 with a shared secret (JWT_SECRET) or
 * keys from a JWKS URL (JWT_JWKS_URL). The user is the token's `sub`; the
 * `service` scope (for the app's backend) may act for any user.
 *
 * Token format: a JWT with `sub` (user id, 1-64 of [A-Za-z0-9_-]), `exp`,
 * optional `scope` (space-separated; `service` grants acting for others),
 * and `iss` / `aud` when JWT_ISSUER / JWT_AUDIENCE are configured.
 */
import { SignJWT, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from './config.js';
import { BiostoreError, ConfigError, EXIT } from './errors.js';

export interface Principal {
  userId: string;
  scopes: Set<string>;
  /** May act for any user_id (the app's backend). */
  isService: boolean;
}

export class UnauthorizedError extends BiostoreError {
  constructor(message: string) {
    super(message, 'unauthorized', EXIT.USAGE);
  }
}

export class ForbiddenError extends BiostoreError {
  constructor(message: string) {
    super(message, 'forbidden', EXIT.USAGE);
  }
}

const USER_RE = /^[A-Za-z0-9_-]{1,64}$/;

export class Authenticator {
  private readonly secret: Uint8Array | undefined;
  private readonly jwks: JWTVerifyGetKey | undefined;

  constructor(private readonly cfg: Config['auth']) {
    if (!cfg.jwtSecret && !cfg.jwksUrl) throw new ConfigError('the daemon needs JWT_SECRET or JWT_JWKS_URL to authenticate requests');
    this.secret = cfg.jwtSecret ? new TextEncoder().encode(cfg.jwtSecret) : undefined;
    this.jwks = cfg.jwksUrl ? createRemoteJWKSet(new URL(cfg.jwksUrl)) : undefined;
  }

  /** Verifies an Authorization header value; throws UnauthorizedError with a reason fit for the client. */
  async verify(header: string | undefined): Promise<Principal> {
    if (!header) throw new UnauthorizedError('missing Authorization: Bearer <token>');
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new UnauthorizedError('Authorization must be "Bearer <token>"');
    let payload: JWTPayload;
    try {
      const opts = { issuer: this.cfg.issuer, audience: this.cfg.audience };
      payload = this.jwks
        ? (await jwtVerify(m[1]!, this.jwks, opts)).payload
        : (await jwtVerify(m[1]!, this.secret!, { ...opts, algorithms: ['HS256'] })).payload;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new UnauthorizedError('token expired');
      throw new UnauthorizedError('invalid token');
    }
    if (typeof payload.sub !== 'string' || !USER_RE.test(payload.sub)) throw new UnauthorizedError('token has no valid sub');
    const scopes = new Set(typeof payload.scope === 'string' ? payload.scope.split(/\s+/).filter(Boolean) : []);
    return { userId: payload.sub, scopes, isService: scopes.has('service') };
  }
}

/** Resolves whom a request acts for: the token's user, or (service scope only) the user_id asked for. */
export function actingUser(p: Principal, requested: string | undefined): string {
  if (!requested || requested === p.userId) return p.userId;
  if (!p.isService) throw new ForbiddenError('only a service token may act for another user_id');
  return requested;
}

/** Mints an HS256 token from the configured secret, for operators and local development. */
export async function mintToken(
  cfg: Config['auth'],
  opts: { userId: string; ttlSeconds: number; scopes: string[]; now: Date },
): Promise<{ token: string; expires_at: string }> {
  if (!cfg.jwtSecret) throw new ConfigError('JWT_SECRET is not set; `biostore token` mints HS256 tokens from it');
  if (!USER_RE.test(opts.userId)) throw new UnauthorizedError('user id must be 1-64 letters, digits, _ or -');
  const iat = Math.floor(opts.now.getTime() / 1000);
  const exp = iat + opts.ttlSeconds;
  let jwt = new SignJWT(opts.scopes.length ? { scope: opts.scopes.join(' ') } : {})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.userId)
    .setIssuedAt(iat)
    .setExpirationTime(exp);
  if (cfg.issuer) jwt = jwt.setIssuer(cfg.issuer);
  if (cfg.audience) jwt = jwt.setAudience(cfg.audience);
  return { token: await jwt.sign(new TextEncoder().encode(cfg.jwtSecret)), expires_at: new Date(exp * 1000).toISOString() };
}

/** Parses "90s", "15m", "1h", "7d" into seconds. */
export function parseDuration(s: string): number | null {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(s.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const mult = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return n * mult;
}
