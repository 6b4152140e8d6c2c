/**
 * Resolves a bearer token to a Principal. With no active token defined the
 * gateway is in open mode (loopback only, enforced at start) and every caller
 * is an admin. Lookups are cached briefly so the hot path does not hit the
 * database per request; a revoked token stops working within `cacheMs`.
 */
import { Role, type Principal } from './roles.ts';
import type { TokenRepo } from '../store/token.repo.ts';

export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(message: string, readonly kind: 'unauthenticated' | 'forbidden') { super(message); }
}

export interface AuthenticatorOptions {
  /** Cache lifetime for token lookups and the open-mode check. Default 2000 ms. */
  cacheMs?: number;
}

export class Authenticator {
  private readonly cacheMs: number;
  private readonly cache = new Map<string, { at: number; principal: Principal | null }>();
  private openCache?: { at: number; open: boolean };

  constructor(private readonly tokens: TokenRepo, opts: AuthenticatorOptions = {}) {
    this.cacheMs = opts.cacheMs ?? 2000;
  }

  async isOpen(): Promise<boolean> {
    const now = Date.now();
    if (this.openCache && now - this.openCache.at < this.cacheMs) return this.openCache.open;
    const open = (await this.tokens.countActive()) === 0;
    this.openCache = { at: now, open };
    return open;
  }

  /** `header` is the Authorization header value (or a raw token). Throws AuthError. */
  async authenticate(header: string | undefined | null): Promise<Principal> {
    const token = header?.replace(/^Bearer\s+/i, '').trim();
    if (!token) {
      if (await this.isOpen()) return { role: Role.Admin, name: 'open-mode', open: true };
      throw new AuthError('a bearer token is required', 'unauthenticated');
    }
    const now = Date.now();
    const hit = this.cache.get(token);
    let principal = hit && now - hit.at < this.cacheMs ? hit.principal : undefined;
    if (principal === undefined) {
      const row = await this.tokens.findActive(token);
      principal = row ? { role: row.role, tokenId: row.id, name: row.name, open: false } : null;
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(token, { at: now, principal });
    }
    if (!principal) {
      if (await this.isOpen()) return { role: Role.Admin, name: 'open-mode', open: true };
      throw new AuthError('the token is invalid or revoked', 'unauthenticated');
    }
    return principal;
  }

  invalidate(): void {
    this.cache.clear();
    this.openCache = undefined;
  }
}
