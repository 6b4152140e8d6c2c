import { afterEach, describe, expect, it, vi } from 'vitest';
import { SHARED_IDLE_MS, SharedAppliers } from '../../../../src/queues/processors/shared-appliers.ts';
import type { Applier } from '../../../../src/replication/apply/applier.ts';
import type { Logger } from '../../../../src/replication/logger.ts';

/** A logger that records its bindings, so a test sees which context a child logs under. */
function recordingLogger(bindings: Record<string, unknown> = {}): Logger & { bindings: Record<string, unknown> } {
  const noop = () => undefined;
  return { bindings, debug: noop, info: noop, warn: noop, error: noop, child: (b) => recordingLogger({ ...bindings, ...b }) };
}

const fakeApplier = () => ({ close: vi.fn(async () => undefined) }) as unknown as Applier & { close: ReturnType<typeof vi.fn> };

describe('SharedAppliers', () => {
  afterEach(() => { vi.useRealTimers(); });

  it('makes one applier per key for every chunk task, logging under the job context given, not a task\'s', () => {
    const base = recordingLogger({ node: 'n1' });
    const shared = new SharedAppliers(base);
    const made: Logger[] = [];
    const make = (logger: Logger) => { made.push(logger); return fakeApplier(); };
    const job = { jobId: 'j1', job: 'orders', runId: 3, kind: 'snapshot-chunk' };
    const a = shared.acquire('j1/3', job, make);
    const b = shared.acquire('j1/3', job, make);
    expect(b.applier).toBe(a.applier);
    expect(made).toHaveLength(1);
    expect((made[0] as ReturnType<typeof recordingLogger>).bindings).toEqual({ node: 'n1', jobId: 'j1', job: 'orders', runId: 3, kind: 'snapshot-chunk' });
    expect((made[0] as ReturnType<typeof recordingLogger>).bindings).not.toHaveProperty('task');
    a.release(); b.release();
  });

  it('closes an applier once unused for SHARED_IDLE_MS; a chunk that comes within it reuses it', async () => {
    vi.useFakeTimers();
    const shared = new SharedAppliers(recordingLogger());
    const first = fakeApplier();
    const a = shared.acquire('k', {}, () => first);
    a.release();
    a.release(); // idempotent
    await vi.advanceTimersByTimeAsync(SHARED_IDLE_MS - 1);
    const b = shared.acquire('k', {}, () => fakeApplier());
    expect(b.applier).toBe(first);
    b.release();
    await vi.advanceTimersByTimeAsync(SHARED_IDLE_MS);
    expect(first.close).toHaveBeenCalledTimes(1);
    const c = shared.acquire('k', {}, () => fakeApplier());
    expect(c.applier).not.toBe(first);
    c.release();
  });
});
