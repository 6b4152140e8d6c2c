import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { feedGeneration } from '../../../src/queues/processors/apply.processor.ts';
import type { TaskRun } from '../../../src/queues/processors/task-run.ts';
import { feedKeys } from '../../../src/replication/feed/feed-keys.ts';

/** A feed's meta createdAt as Redis holds it, and whether the task's job is still its run. */
function setup() {
  const state = { createdAt: null as string | null, ours: true, checks: 0 };
  const meta = feedKeys('p', 'orders').meta;
  const redis = { hget: async (key: string, field: string) => (key === meta && field === 'createdAt' ? state.createdAt : null) } as unknown as Redis;
  const run = { check: async () => { state.checks++; return state.ours ? {} : undefined; } } as unknown as TaskRun;
  return { state, gen: feedGeneration(redis, 'p', 'orders', run) };
}

describe('feedGeneration: a task touches only the feed it started on', () => {
  it('adopts the feed once it exists, and stops when the job was deleted and a new feed of the same name appeared', async () => {
    const { state, gen } = setup();
    expect(await gen.stillOurs()).toBe(true); // no append yet
    state.createdAt = '1000';
    expect(await gen.stillOurs()).toBe(true); // first append: adopted
    expect(await gen.stillOurs()).toBe(true);
    expect(state.checks).toBe(0);
    state.ours = false; state.createdAt = '2000'; // deleteJob + createJob with the same name
    expect(await gen.stillOurs()).toBe(false);
    state.createdAt = null; // deleted, not re-created yet
    expect(await gen.stillOurs()).toBe(false);
  });

  it('keeps going when the job is still its run (Redis lost the first appends in a crash and the feed was rebuilt)', async () => {
    const { state, gen } = setup();
    state.createdAt = '1000';
    expect(await gen.stillOurs()).toBe(true);
    state.createdAt = null;
    expect(await gen.stillOurs()).toBe(true);
    state.createdAt = '1500';
    expect(await gen.stillOurs()).toBe(true);
    expect(await gen.stillOurs()).toBe(true);
    expect(state.checks).toBe(1);
  });
});
