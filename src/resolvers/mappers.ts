/** Store rows -> GraphQL objects. Secrets are dropped here, once. */
import type { ConnectionRow } from '../store/connection.repo.ts';
import type { JobRow, TaskRow } from '../store/job.repo.ts';
import type { DbConnection, DbKindEnum, Job, Task } from './job.types.ts';
import { toMetrics, toProgress } from '../domain/job-views.ts';

export function toDbConnection(r: ConnectionRow): DbConnection {
  return {
    id: r.id, name: r.name, kind: r.kind as DbKindEnum, host: r.host, port: r.port, user: r.username, database: r.database,
    tls: r.tls ? { enabled: r.tls.enabled, rejectUnauthorized: r.tls.rejectUnauthorized, caSet: !!r.tls.ca } : null,
    password: '***', environmentId: r.environment_id, createdAt: r.created_at.toISOString(),
  };
}

export function toJob(r: JobRow): Job {
  return {
    id: r.id, index: Number(r.seq), name: r.name, type: r.type, status: r.status,
    statusReason: r.status_reason, error: r.error, spec: r.spec, feedName: r.feed_name,
    progress: toProgress(r), metrics: toMetrics(r), startPosition: r.state?.startPosition ?? null,
    createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(),
    startedAt: r.started_at?.toISOString() ?? null, finishedAt: r.finished_at?.toISOString() ?? null,
    createIndex: String(r.create_index), modifyIndex: String(r.modify_index),
    sourceConnectionId: r.source_connection_id, destConnectionId: r.dest_connection_id,
  };
}

export function toTask(t: TaskRow): Task {
  return {
    id: t.id, kind: t.kind, name: t.name, status: t.status, nodeId: t.node_id, nodeHint: t.node_hint, placement: t.placement,
    queue: t.queue, position: t.position, progress: t.progress, error: t.error, attempts: t.attempts,
  };
}
