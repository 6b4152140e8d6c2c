/**
 * A worker process stopped with SIGTERM in the middle of a noop task (20 of
 * 40 steps) hands the task back instead of storing it as completed; a second
 * worker process goes on from the step it stopped at, and every step runs
 * exactly once (the task's log names each step and the node that ran it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { waitFor } from '../../support/databases.ts';
import { Processes } from '../../chaos/support.ts';
import { QueueSet } from '../../../src/queues/queue-set.ts';

describe('graceful stop: noop task', () => {
  let gw: TestGateway; let procs: Processes; let queues: QueueSet;
  beforeAll(async () => {
    gw = await startTestGateway({}, { worker: false });
    procs = new Processes({ databaseUrl: gw.config.databaseUrl, redisUrl: gw.config.redisUrl, queuePrefix: gw.config.queuePrefix, secretKey: gw.config.secretKey! });
    queues = new QueueSet({ redis: gw.config, prefix: gw.config.queuePrefix });
  });
  afterAll(async () => {
    await procs?.killAll();
    await queues?.close();
    await gw?.close();
  });

  it('is handed back at SIGTERM and finished once by another worker', async () => {
    const a = await procs.worker();
    const r = await gql(gw.url, 'mutation { runNoop(steps: 40, stepMs: 100) { taskId } }');
    expect(r.body.errors).toBeUndefined();
    const taskId = r.body.data.runNoop.taskId as string;
    const queue = queues.get();
    await waitFor(() => queue.getJob(taskId), (j) => (j?.data as { doneSteps?: number })?.doneSteps !== undefined && (j!.data as { doneSteps: number }).doneSteps >= 20, 30_000, '20 steps done');
    await a.kill('SIGTERM');
    expect(a.child.exitCode).toBe(0);

    const stopped = (await queue.getJob(taskId))!;
    const stoppedAt = (stopped.data as { doneSteps: number }).doneSteps;
    expect(stoppedAt).toBeGreaterThanOrEqual(20);
    expect(stoppedAt).toBeLessThan(40);
    expect(await stopped.getState()).toBe('waiting');
    expect(stopped.returnvalue ?? null).toBeNull();
    expect(stopped.finishedOn ?? null).toBeNull();

    await procs.worker();
    const done = await waitFor(() => queue.getJob(taskId), (j) => j?.finishedOn !== undefined && j.finishedOn !== null, 30_000, 'task completed');
    expect(await done!.getState()).toBe('completed');
    expect(done!.returnvalue).toMatchObject({ message: 'noop done', steps: 40, resumedAfter: stoppedAt });
    expect(done!.failedReason ?? null).toBeNull();

    const { logs } = await queue.getJobLogs(taskId, 0, -1, true);
    const steps = logs.map((l) => Number(/^step (\d+)\/40/.exec(l)![1]));
    expect(steps).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const nodes = logs.map((l) => / on (\S+)$/.exec(l)![1]);
    expect(new Set(nodes.slice(0, stoppedAt)).size).toBe(1);
    expect(new Set(nodes.slice(stoppedAt)).size).toBe(1);
    expect(nodes[stoppedAt]).not.toBe(nodes[0]);
  }, 120_000);
});
