import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskProcessor } from '../worker-host.ts';
import type { NoopPayload } from '../task-payloads.ts';

/** A trivial task: reports `steps` progress events and returns a greeting. Proves the queue path end to end. */
export const noopProcessor: TaskProcessor = async (payload, ctx) => {
  const p = payload as NoopPayload;
  for (let i = 1; i <= p.steps; i++) {
    if (ctx.signal.aborted) break;
    await sleep(p.stepMs);
    const progress = Math.round((i / p.steps) * 100);
    await ctx.job.updateProgress(progress);
    ctx.emit({ state: 'progress', progress, message: `step ${i}/${p.steps}` });
  }
  return { message: p.message ?? 'noop done', node: ctx.nodeId, steps: p.steps };
};
