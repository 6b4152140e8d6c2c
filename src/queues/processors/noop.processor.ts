import { setTimeout as sleep } from 'node:timers/promises';
import { stoppedForShutdown, type TaskProcessor } from '../worker-host.ts';
import type { NoopPayload } from '../task-payloads.ts';

/** Raised when a noop task is canceled before its last step: it did not do its work, so it must not complete. */
export class NoopCanceledError extends Error {
  override readonly name = 'NoopCanceledError';
}

/**
 * A trivial task: reports `steps` progress events and returns a greeting. Proves the queue path end to end,
 * including a graceful stop: each step done is checkpointed in the task's data (`doneSteps`) and in its log,
 * so a task handed back by a closing worker goes on where it stopped on the next worker, and every step runs once.
 */
export const noopProcessor: TaskProcessor = async (payload, ctx) => {
  const p = payload as NoopPayload;
  const from = (ctx.job.data as NoopPayload).doneSteps ?? 0;
  for (let i = from + 1; i <= p.steps; i++) {
    if (ctx.signal.aborted) break;
    await sleep(p.stepMs);
    await ctx.job.log(`step ${i}/${p.steps} on ${ctx.nodeId}`);
    await ctx.job.updateData({ ...(ctx.job.data as NoopPayload), doneSteps: i });
    const progress = Math.round((i / p.steps) * 100);
    await ctx.job.updateProgress(progress);
    ctx.emit({ state: 'progress', progress, message: `step ${i}/${p.steps}` });
  }
  const done = (ctx.job.data as NoopPayload).doneSteps ?? 0;
  if (done < p.steps) {
    // A closing worker hands the task back (worker-host.ts); any other stop is a cancel.
    if (stoppedForShutdown(ctx.signal)) return { handedBackAt: done };
    throw new NoopCanceledError(`noop canceled after ${done} of ${p.steps} steps`);
  }
  return { message: p.message ?? 'noop done', node: ctx.nodeId, steps: p.steps, resumedAfter: from };
};
