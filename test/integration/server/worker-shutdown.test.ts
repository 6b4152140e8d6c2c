/**
 * A worker's close() is bounded: a task that ignores its abort must not keep
 * the process from stopping (a hung close held a suite's afterAll for three
 * minutes in CI). After shutdownGraceMs the workers stop anyway, the task is
 * named in the log, and another worker takes it once its lock expires, as
 * after a crash.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Job, Queue } from 'bullmq';
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

  it('stops a task that starts after close() began (fetched just before it), instead of waiting out the grace period', async () => {
    const seen: boolean[] = [];
    const h = new WorkerHost({
      queues: ['late'], prefix, concurrency: 1, nodeId: 'c', logger: createLogger('silent'), newConnection: conn, publishTaskEvent: () => undefined,
      lockDurationMs: 2000, shutdownGraceMs: 30_000,
    }).register('noop', async (_p, ctx) => {
      // Like a capture or an apply: runs until its signal aborts.
      seen.push(ctx.signal.aborted);
      if (!ctx.signal.aborted) await new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }));
      return { stopped: true };
    });
    const queue = new Queue('late', { connection: conn(), prefix });
    try {
      await queue.add('noop', { kind: 'noop', taskId: 'late1' } as never, { jobId: 'late1' });
      const job = (await Job.fromId(queue, 'late1'))!;
      const closing = h.close();
      // What BullMQ does with a job it fetched before close(): hands it to the processor.
      const started = (h as unknown as { process(j: Job): Promise<unknown> }).process(job).catch(() => 'handed back');
      const outcome = await Promise.race([started, new Promise((r) => setTimeout(() => r('still running'), 3000))]);
      expect(outcome).not.toBe('still running');
      expect(seen).toEqual([true]);
      await closing;
    } finally {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  }, 30_000);
});
