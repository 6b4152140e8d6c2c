/**
 * Token bucket for Udup's MsgsLimit / MsgBytesLimit / BytesLimit: capture
 * waits before appending when the bucket is empty. One-second burst.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class RateLimiter {
  private tokens: number;
  private last = Date.now();
  constructor(private readonly perSecond: number) { this.tokens = perSecond; }

  /** Wait until `amount` may pass. No-op when the limit is 0 (off). */
  async take(amount: number, signal?: AbortSignal): Promise<void> {
    if (this.perSecond <= 0) return;
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
      if (this.tokens >= Math.min(amount, this.perSecond)) { this.tokens -= amount; return; }
      if (signal?.aborted) return;
      const wait = ((Math.min(amount, this.perSecond) - this.tokens) / this.perSecond) * 1000;
      await sleep(Math.max(5, Math.min(wait, 500)));
    }
  }
}
