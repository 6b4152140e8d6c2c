/**
 * A worker's close() is bounded: a task that ignores its abort must not keep
 * the process from stopping (a hung close held a suite's afterAll for three
 * minutes in CI). After shutdownGraceMs the workers stop anyway, the task is
 * named in the log, and another worker takes it once its lock expires, as
 * after a crash.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { WorkerHost } from '../../../src/queues/worker-host.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { waitFor } from '../../support/databases.ts';

describe('worker shutdown', () => {
  const prefix = `ws${randomBytes(3).toString('hex')}`;
  const conns: Redis[] = [];
  const conn = () => { const c = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null }); conns.push(c); return c; };
  afterAll(() => { for (const c of conns) c.disconnect(); });

  it('stops within its grace period when a task ignores the abort, and the task moves on to another worker', async () => {
    const warnings: string[] = [];
    const logger = createLogger('silent');
    const spy = Object.assign(Object.create(logger), { warn: (o: unknown, m?: string) => { warnings.push(`${m ?? ''} ${JSON.stringify(o)}`); } });
    const runs: string[] = [];
    let release!: () => void;
    const stuck = new Promise<void>((r) => { release = r; });
    const host = (nodeId: string, hang: boolean) => new WorkerHost({
      queues: ['tasks'], prefix, concurrency: 1, nodeId, logger: spy, newConnection: conn, publishTaskEvent: () => undefined,
      lockDurationMs: 2000, shutdownGraceMs: 1000,
    }).register('noop', async () => {
      runs.push(nodeId);
      if (hang) await stuck; // ignores its signal
      return { by: nodeId };
    });
    const a = host('a', true);
    a.start();
    const queue = new Queue('tasks', { connection: conn(), prefix });
    try {
      const job = await queue.add('noop', { kind: 'noop', taskId: 't1' } as never, { jobId: 't1' });
      await waitFor(async () => runs, (r) => r.length === 1, 10_000, 'task started');
      const t0 = Date.now();
      await a.close();
      const took = Date.now() - t0;
      expect(took).toBeLessThan(8000);
      expect(warnings.some((w) => w.includes('did not return in time') && w.includes('t1'))).toBe(true);

      const b = host('b', false);
      b.start();
      try {
        const done = await waitFor(() => queue.getJob(job.id!), (j) => j?.finishedOn != null, 30_000, 'taken over');
        expect(await done!.getState()).toBe('completed');
        expect(done!.returnvalue).toEqual({ by: 'b' });
        expect(runs).toEqual(['a', 'b']);
      } finally {
        await b.close();
      }
    } finally {
      release();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  }, 60_000);
});
