/**
 * The cached-query upkeep task: one long-running BullMQ task per cached
 * query, on any worker. It waits until the connection's capture is prepared
 * (everything after that point reaches the feed), then runs the upkeep loop
 * (replication/cached-query/upkeep.ts) and pushes every new result through
 * Redis pub/sub. It resumes from the stored position after a crash
 * (stalled-job recovery) and ends quietly when the cached query is deleted.
 */
import { UnrecoverableError } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { Topic, topicFor } from '../../events/pubsub.ts';
import { maskSecrets } from '../../observability/logger.ts';
import type { CachedQueryRepo } from '../../store/cached-query.repo.ts';
import { openFeed } from '../../replication/feed/feed-registry.ts';
import { analyze, validateSelect, type SqlDialect } from '../../replication/cached-query/query-plan.ts';
import { IncrementalEngine } from '../../replication/cached-query/incremental-engine.ts';
import { openSourceSession, SourceQueryError } from '../../replication/cached-query/source-session.ts';
import { runUpkeep, type CachedResult, type UpkeepState } from '../../replication/cached-query/upkeep.ts';
import type { JobTaskPayload } from '../task-payloads.ts';
import type { TaskProcessor } from '../worker-host.ts';
import type { ReplicationDeps } from './task-run.ts';

/** What the createCachedQuery service stores in `plan`. */
export interface CachedQueryPlan {
  dialect: SqlDialect;
  /** Resolved source tables the query reads. */
  tables: { schema: string; table: string }[];
}

/** What subscribers of Topic.CachedQueryResult receive. */
export interface CachedQueryResultEvent {
  id: string;
  version: number;
  refreshedAt: string;
  columns: string[];
  rows: Record<string, unknown>[];
  changedRows: Record<string, unknown>[];
  removedRows: Record<string, unknown>[];
}

export interface CachedQueryTaskOptions {
  /** Statement timeout for every query on the source. Default 30000 ms. */
  statementTimeoutMs?: number;
  /** Quiet time before a re-run. Default 250 ms. */
  debounceMs?: number;
}

export function cachedQueryProcessor(deps: ReplicationDeps, repo: CachedQueryRepo, opts: CachedQueryTaskOptions = {}): TaskProcessor {
  return async (payload, ctx) => {
    const p = payload as JobTaskPayload;
    const id = String(p.detail?.cachedQueryId ?? '');
    const row = await repo.get(id);
    if (!row) return { skipped: 'cached query deleted' };
    const controller = new AbortController();
    ctx.signal.addEventListener('abort', () => controller.abort(), { once: true });
    const watch = setInterval(() => {
      repo.exists(id).then((ok) => { if (!ok) controller.abort(); }).catch(() => undefined);
    }, 2000);
    const feedName = (await deps.jobs.get(row.job_id ?? ''))?.feed_name;
    const feed = feedName ? openFeed(deps.redis, feedName, { prefix: deps.feedPrefix }) : undefined;
    const source = openSourceSession(await deps.connections.config(row.connection_id), opts.statementTimeoutMs ?? 30_000);
    try {
      if (!feed) throw new UnrecoverableError(`cached query ${id} has no capture feed`);
      // Wait for the capture to be prepared: changes after that point are in the feed.
      for (;;) {
        if (controller.signal.aborted) break;
        const job = await deps.jobs.get(row.job_id!);
        if (!job) { controller.abort(); break; }
        if (job.state.startPosition) break;
        await repo.setStatus(id, 'waiting', null);
        await sleep(500, undefined, { signal: controller.signal }).catch(() => undefined);
      }
      if (controller.signal.aborted) return await ended(id, repo);
      await repo.setStatus(id, 'starting', null);
      const plan = row.plan as unknown as CachedQueryPlan;
      const ast = validateSelect(row.sql, plan.dialect);
      let engine: IncrementalEngine | undefined;
      if (row.mode === 'incremental') {
        const analyzed = analyze(row.sql, plan.dialect, ast);
        const table = await source.resolveTable(plan.tables[0]!.schema, plan.tables[0]!.table);
        if (!analyzed.shape || !table) throw new SourceQueryError(`table ${plan.tables[0]!.schema}.${plan.tables[0]!.table} is gone from the source`);
        engine = new IncrementalEngine(analyzed.shape, table, ast, plan.dialect, source);
      }
      const result: CachedResult | null = row.rows && row.row_keys ? { columns: row.columns, rows: row.rows as CachedResult['rows'], keys: row.row_keys } : null;
      await runUpkeep({
        mode: row.mode, engine, sql: row.sql, source, tables: plan.tables, feed,
        checkpoint: { lastSequence: row.last_sequence, version: Number(row.version), result, state: (row.state as UpkeepState | null) ?? null },
        signal: controller.signal,
        debounceMs: opts.debounceMs,
        save: async (u) => {
          const at = await repo.saveResult(id, { columns: u.result.columns, rows: u.result.rows, keys: u.result.keys, version: u.version, lastSequence: u.lastSequence, state: u.state, refreshed: !!u.changed });
          if (u.changed) {
            const event: CachedQueryResultEvent = {
              id, version: u.version, refreshedAt: (at ?? new Date()).toISOString(), columns: u.result.columns, rows: u.result.rows,
              changedRows: u.changed.upserted, removedRows: u.changed.removed,
            };
            deps.publish(topicFor(Topic.CachedQueryResult, id), event);
          }
        },
      });
      return await ended(id, repo);
    } catch (err) {
      if (controller.signal.aborted && !(err instanceof SourceQueryError)) return await ended(id, repo);
      const message = maskSecrets((err as Error).message);
      if (err instanceof SourceQueryError || err instanceof UnrecoverableError) {
        await repo.setStatus(id, 'failed', message).catch(() => undefined);
        throw new UnrecoverableError(message);
      }
      await repo.setStatus(id, 'retrying', message).catch(() => undefined);
      ctx.logger.warn({ cachedQuery: id, err: message }, 'cached query upkeep interrupted; retrying');
      throw err;
    } finally {
      clearInterval(watch);
      await source.close().catch(() => undefined);
      await (feed as unknown as { close?: () => Promise<void> } | undefined)?.close?.();
    }
  };
}

/** After an abort: deleted -> done; otherwise (worker shutdown, job paused) BullMQ retries it later. */
async function ended(id: string, repo: CachedQueryRepo): Promise<{ stopped: string }> {
  if (!(await repo.exists(id))) return { stopped: 'deleted' };
  await repo.setStatus(id, 'queued', null).catch(() => undefined);
  throw new Error('cached query upkeep stopped (worker shutdown or capture paused); it resumes from its stored position');
}
