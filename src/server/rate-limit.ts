/**
 * Per-token request rate limit, counted in Redis (rate-limiter-flexible) so
 * it holds across every gateway sharing the Redis: `perSecond` requests per
 * one-second window for each bearer token, or for each client address when
 * a request carries no token (open mode, or a caller about to be refused).
 * Keys hold a hash of the token, never the token.
 *
 * When Redis does not answer, requests pass (the limit protects the
 * gateway; it must not take it down with Redis) and the failure is logged.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Logger } from '../observability/logger.ts';

export interface RateLimitOptions {
  redis: Redis;
  /** Key prefix (the app's queue prefix). */
  prefix: string;
  /** Requests per second per token / client address; 0 = off. */
  perSecond: number;
  logger?: Logger;
}

export interface RateLimitVerdict {
  /** Milliseconds until the window frees a request. */
  retryAfterMs: number;
  message: string;
}

/** Checks one request; undefined = allowed. */
export type RequestRateLimiter = (authorization: string | undefined, address: string | undefined) => Promise<RateLimitVerdict | undefined>;

export function rateLimitKey(authorization: string | undefined, address: string | undefined): string {
  const token = authorization?.replace(/^Bearer\s+/i, '').trim();
  return token ? `t:${createHash('sha256').update(token).digest('hex').slice(0, 32)}` : `a:${(address ?? 'unknown').replace(/^::ffff:/, '')}`;
}

export function requestRateLimiter(opts: RateLimitOptions): RequestRateLimiter | undefined {
  if (!opts.perSecond) return undefined;
  const limiter = new RateLimiterRedis({
    storeClient: opts.redis, keyPrefix: `${opts.prefix}:ratelimit`, points: opts.perSecond, duration: 1, rejectIfRedisNotReady: true,
  });
  let lastWarn = 0;
  return async (authorization, address) => {
    try {
      await limiter.consume(rateLimitKey(authorization, address));
      return undefined;
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        const retryAfterMs = Math.max(1, Math.ceil(err.msBeforeNext));
        return { retryAfterMs, message: `rate limit exceeded: at most ${opts.perSecond} requests per second per token (per client address without one); retry after ${retryAfterMs} ms` };
      }
      if (Date.now() - lastWarn > 10_000) { lastWarn = Date.now(); opts.logger?.warn({ err }, 'rate limiter unavailable: requests pass unlimited'); }
      return undefined;
    }
  };
}
