/**
 * Snapshot chunk tasks (children of one BullMQ flow) copy a primary-key range
 * each, straight to the destination; a chunk already marked done there is
 * skipped, so a retried or duplicated chunk costs nothing. The parent runs
 * when every chunk completed and marks the snapshot done.
 */
import type { Row } from '../../replication/change-event.ts';
import type { ChunkBounds, TableInfo } from '../../replication/table-info.ts';
import { CopyTextFallback, type CopyTextBatch } from '../../replication/snapshot/snapshot-reader.ts';
import { createApplier, createSnapshotReader } from '../../replication/factory.ts';
import type { Applier } from '../../replication/apply/applier.ts';
import type { JobTaskPayload } from '../task-payloads.ts';
import type { TaskProcessor } from '../worker-host.ts';
import { TaskRun, type ReplicationDeps } from './task-run.ts';
import { TaskState } from '../../domain/task-model.ts';
import { jobControls } from './job-controls.ts';
import { SharedAppliers } from './shared-appliers.ts';
import type { Logger } from '../../replication/logger.ts';

const BATCH_ROWS = 5000;
/** Batch loads of one chunk in flight at a time. */
const LOADS_IN_FLIGHT = 2;
/** Connections of a shared applier: one per chunk task of the job running in this process at a time (the pool grows on demand). */
const SHARED_POOL_SIZE = 8;

/**
 * A chunk's batch loads, each in its own transaction, up to `depth` in
 * flight while the next batch is read (the source's rows parsed here while
 * the destination takes the previous ones). Batches of a chunk are disjoint
 * key ranges, so their order does not matter; the final load (it marks the
 * chunk done) runs after drain(), so it is always the last.
 */
class LoadQueue {
  private readonly inFlight = new Set<Promise<void>>();
  private failed?: { err: unknown };

  constructor(private readonly depth: number) {}

  /** Waits until fewer than `depth` loads run (a failed one's error comes up here), then starts `load`. */
  async push(load: () => Promise<void>): Promise<void> {
    while (this.inFlight.size >= this.depth) await Promise.race(this.inFlight);
    if (this.failed) throw this.failed.err;
    const p = load().catch((err: unknown) => { this.failed ??= { err }; });
    const tracked = p.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  async drain(): Promise<void> {
    await this.settle();
    if (this.failed) throw this.failed.err;
  }

  /** Waits for every load in flight, whatever its outcome (before the connections close). */
  async settle(): Promise<void> {
    while (this.inFlight.size) await Promise.all(this.inFlight);
  }
}

export function snapshotChunkProcessor(deps: ReplicationDeps): TaskProcessor {
  const shared = new SharedAppliers(deps.logger);
  return async (payload, ctx) => {
    const p = payload as JobTaskPayload;
    const run = await TaskRun.begin(p, ctx, deps);
    if (!run) return { skipped: 'job not running in this run' };
    const job = run.job;
    const { table, chunk, chunkId, snapshotName } = p.detail as { table: TableInfo; chunk: ChunkBounds; chunkId: string; snapshotName?: string };
    const source = await deps.connections.config(job.source_connection_id!);
    const dest = await deps.connections.config(job.dest_connection_id!);
    const make = (poolSize: number, logger: Logger): Applier => createApplier(dest, { jobId: job.id, rename: job.spec.rename, logger, poolSize });
    // A shared applier outlives the chunk task that made it: it logs as the job's, not as that task's.
    const { applier, release } = table.key.length > 0
      ? shared.acquire(`${job.id}\u0000${p.runId}\u0000${job.dest_connection_id}\u0000${JSON.stringify(job.spec.rename ?? null)}`,
        { jobId: job.id, job: job.name, runId: p.runId, kind: p.kind }, (logger) => make(SHARED_POOL_SIZE, logger))
      : { applier: make(1, run.logger), release: undefined };
    const reader = createSnapshotReader(source, run.logger);
    // Batch loads in their own transactions, up to LOADS_IN_FLIGHT while the next batch is read.
    const loads = new LoadQueue(LOADS_IN_FLIGHT);
    try {
      if (await applier.isChunkDone(chunkId)) {
        await deps.jobs.updateTask(p.taskId, { status: TaskState.Complete });
        return { chunkId, skipped: 'already done' };
      }
      // Column and row controls: rows outside the filter are not copied, the others shaped like the destination table.
      const control = (await jobControls(deps, job, source))?.forTable(table);
      const shaped = control ? control.shapeTable(table) : table;
      const controlled = (batch: Row[]): Row[] => (control ? batch.filter((r) => control.passes(r) !== false).map((r) => control.row(r)) : batch);
      let rows: number | undefined;
      // Keyless tables: what the copy holds of the stream, stored with the chunk (apply skips those changes).
      let cover: string | undefined;

      // The source writes the destination's bulk text itself where every column allows (no controls, keyed table).
      const safe = applier.copyTextSafe?.bind(applier);
      const loadText = applier.loadChunkCopyText?.bind(applier);
      const textBatches = !control && safe && loadText ? reader.readChunkCopyText?.(table, chunk, BATCH_ROWS, safe) : undefined;
      if (textBatches && loadText) {
        try {
          let pending: CopyTextBatch | undefined;
          let n = 0;
          for await (const batch of textBatches) {
            if (run.signal.aborted) break;
            if (pending) {
              const b = pending;
              await loads.push(() => loadText(shaped, b.text, b.rows, chunkId, false));
            }
            pending = batch;
            n += batch.rows;
          }
          await loads.drain();
          if (run.signal.aborted) return await run.endAborted();
          await loadText(shaped, pending?.text ?? Buffer.alloc(0), pending?.rows ?? 0, chunkId, true);
          rows = n;
        } catch (err) {
          if (!(err instanceof CopyTextFallback)) throw err;
          await loads.settle();
          // Batches loaded so far are upserted again by the row path (a re-run chunk), which also fails on the value if it must.
          run.logger.info({ chunkId, reason: err.message }, 'snapshot chunk read again by rows');
        }
      }

      if (rows === undefined) {
        rows = 0;
        let pending: Row[] | undefined;
        for await (const batch of reader.readChunk(table, chunk, BATCH_ROWS, { snapshotName, onCover: (c) => { cover = c; } })) {
          if (run.signal.aborted) break;
          if (pending) {
            const b = pending;
            await loads.push(() => applier.loadChunk(shaped, b, chunkId, false));
          }
          pending = controlled(batch);
          rows += pending.length;
        }
        await loads.drain();
        if (run.signal.aborted) return await run.endAborted();
        await applier.loadChunk(shaped, pending ?? [], chunkId, true, cover);
      }
      if (cover) run.logger.info({ chunkId, cover, rows }, 'keyless chunk loaded with its snapshot cover');
      await deps.jobs.updateTask(p.taskId, { status: TaskState.Complete, progress: { rows } });
      const totals = await deps.jobs.chunkTotals(job.id);
      await deps.jobs.mergeProgress(job.id, { rowsDone: totals.rows, chunksDone: totals.done });
      run.job = (await deps.jobs.get(job.id)) ?? job;
      run.publishJob('progress');
      run.finish();
      return { chunkId, rows };
    } catch (err) {
      if (run.signal.aborted) return await run.endAborted();
      return await run.fail(err);
    } finally {
      run.finish();
      await loads.settle();
      await reader.close().catch(() => undefined);
      if (release) release();
      else await applier.close().catch(() => undefined);
    }
  };
}

export function snapshotDoneProcessor(deps: ReplicationDeps): TaskProcessor {
  return async (payload, ctx) => {
    const p = payload as JobTaskPayload;
    const run = await TaskRun.begin(p, ctx, deps);
    if (!run) return { skipped: 'job not running in this run' };
    const totals = await deps.jobs.chunkTotals(p.jobId);
    await deps.jobs.mergeState(p.jobId, p.runId, { snapshotDone: true });
    await deps.jobs.mergeProgress(p.jobId, { rowsDone: totals.rows, chunksDone: totals.done, phase: 'streaming', rowsEstimated: Math.max(totals.rows, run.job.progress.rowsEstimated ?? 0) });
    await deps.jobs.updateTask(p.taskId, { status: TaskState.Complete, progress: { rows: totals.rows, chunks: totals.done } });
    await run.log('info', `snapshot done: ${totals.rows} rows in ${totals.done} chunks`);
    run.job = (await deps.jobs.get(p.jobId)) ?? run.job;
    run.publishJob('progress', 'snapshot done');
    run.finish();
    return { rows: totals.rows };
  };
}
