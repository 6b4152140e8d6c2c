/**
 * Chunk tasks of one job run share a destination applier, and with it its
 * pooled connections, while chunks keep coming: a fresh PostgreSQL backend
 * per chunk (catalog caches built again for the first COPY) cost about as
 * much CPU as COPYing the chunk itself (issue 12). Keyed tables only: a
 * keyless chunk's applier holds its rows until the final call, and a failed
 * attempt must not leave them to the next one. Closed once unused for
 * SHARED_IDLE_MS.
 *
 * A shared applier serves every chunk task of its job in this process and
 * outlives the one that made it, so it logs under the job's context (given
 * to acquire), never under a chunk task's: its lines carried the first
 * chunk task's id, long after that task completed, for work done for others.
 */
import type { Applier } from '../../replication/apply/applier.ts';
import type { Logger } from '../../replication/logger.ts';

/** How long an applier no chunk task uses stays open for the next chunk of its job. */
export const SHARED_IDLE_MS = 2000;

export class SharedAppliers {
  private readonly byKey = new Map<string, { applier: Applier; users: number; timer?: ReturnType<typeof setTimeout> }>();

  /** `logger`: the process logger, which the appliers' loggers are children of. */
  constructor(private readonly logger: Logger) {}

  /**
   * The applier shared under `key`, made by `make` when there is none; `make`
   * gets a logger bound to `context` (the job's, not the calling task's).
   */
  acquire(key: string, context: Record<string, unknown>, make: (logger: Logger) => Applier): { applier: Applier; release(): void } {
    let entry = this.byKey.get(key);
    if (!entry) {
      entry = { applier: make(this.logger.child(context)), users: 0 };
      this.byKey.set(key, entry);
    }
    if (entry.timer) { clearTimeout(entry.timer); entry.timer = undefined; }
    entry.users++;
    const e = entry;
    let released = false;
    return {
      applier: e.applier,
      release: () => {
        if (released) return;
        released = true;
        if (--e.users > 0) return;
        e.timer = setTimeout(() => {
          if (e.users > 0 || this.byKey.get(key) !== e) return;
          this.byKey.delete(key);
          e.applier.close().catch(() => undefined);
        }, SHARED_IDLE_MS);
        e.timer.unref?.();
      },
    };
  }
}
