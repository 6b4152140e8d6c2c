/**
 * Running Tributary processes, from heartbeats in Redis. Each process writes
 * its record every `intervalMs` with a TTL of three intervals, so a process
 * that dies disappears from `nodes` within the TTL.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Redis } from 'ioredis';
import { masters } from '../store/redis-client.ts';

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

  /**
   * Every live heartbeat. SCANs each master (on Redis Cluster the heartbeat
   * keys spread over every node), then GETs the keys one by one: their slots
   * differ, so one MGET would fail with CROSSSLOT on a cluster.
   */
  async list(): Promise<NodeRecord[]> {
    const keys = new Set<string>();
    for (const node of masters(this.opts.redis)) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', `${this.opts.prefix}:node:*`, 'COUNT', 200);
        cursor = next;
        for (const k of found) keys.add(k);
      } while (cursor !== '0');
    }
    const values = await Promise.all([...keys].map((k) => this.opts.redis.get(k)));
    const out = values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as NodeRecord);
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
