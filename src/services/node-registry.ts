/**
 * Running Tributary processes, from heartbeats in Redis. Each process writes
 * its record every `intervalMs` with a TTL of three intervals, so a process
 * that dies disappears from `nodes` within the TTL.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Redis } from 'ioredis';

export interface NodeRecord {
  id: string;
  role: string;
  host: string;
  pid: number;
  startedAt: string;
  lastSeen: string;
  cluster?: string;
  version: string;
}

export interface NodeRegistryOptions {
  redis: Redis;
  prefix: string;
  role: string;
  version: string;
  cluster?: string;
  /** Heartbeat interval. Default 5000 ms. */
  intervalMs?: number;
}

export class NodeRegistry {
  readonly id = randomUUID();
  private readonly startedAt = new Date().toISOString();
  private timer?: NodeJS.Timeout;
  private readonly intervalMs: number;
  private closing?: Promise<void>;

  constructor(private readonly opts: NodeRegistryOptions) {
    this.intervalMs = opts.intervalMs ?? 5000;
  }

  private key(id: string): string { return `${this.opts.prefix}:node:${id}`; }

  record(): NodeRecord {
    return {
      id: this.id, role: this.opts.role, host: os.hostname(), pid: process.pid, startedAt: this.startedAt,
      lastSeen: new Date().toISOString(), cluster: this.opts.cluster, version: this.opts.version,
    };
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => { this.beat().catch(() => undefined); }, this.intervalMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const ttl = Math.ceil((this.intervalMs * 3) / 1000);
    await this.opts.redis.set(this.key(this.id), JSON.stringify(this.record()), 'EX', ttl);
  }

  async list(): Promise<NodeRecord[]> {
    const out: NodeRecord[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.opts.redis.scan(cursor, 'MATCH', `${this.opts.prefix}:node:*`, 'COUNT', 200);
      cursor = next;
      if (keys.length) {
        const values = await this.opts.redis.mget(...keys);
        for (const v of values) if (v) out.push(JSON.parse(v) as NodeRecord);
      }
    } while (cursor !== '0');
    return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  async get(id: string): Promise<NodeRecord | undefined> {
    const v = await this.opts.redis.get(this.key(id));
    return v ? (JSON.parse(v) as NodeRecord) : undefined;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      await this.opts.redis.del(this.key(this.id)).catch(() => undefined);
    })();
    return this.closing;
  }
}
