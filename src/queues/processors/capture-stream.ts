/**
 * The Capture module of pipelines: a streaming DAG
 *
 *   Capture(table at a connection) --> Filter / Map ... --> Writer(table at a connection)
 *
 * Design: the Capture reads the source's log itself with the engine's
 * capture (PgLogicalCapture / MysqlBinlogCapture, replication/factory.ts), on
 * its own slot (PostgreSQL, `tributary_pl_<id>`) or binlog reader (MariaDB),
 * and the components downstream of it run fused into the Capture's task, as
 * an operator chain: every captured transaction goes through each branch's
 * Filter/Map row transforms and is applied by each branch's Writer with the
 * engine's applier (replication/apply), change events with checkpoints, in
 * one destination transaction per captured transaction. No feed, no staging
 * rows in the metadata database, no second hop: changes reach the
 * destination in commit order with one log read.
 *
 * Why not the feed of a SUBSCRIBE job: a pipeline would then own (or share)
 * another job whose retention, lifetime and deletion are not the pipeline's;
 * reading the log directly keeps stop/cleanup local (stop drops the slot).
 *
 * Start position: fixed at submit (prepareStreamCapture creates the slot or
 * reads the binlog position before the job exists), so every change committed
 * after submit answers is streamed even if the task starts later.
 * Resume: the task's `position` follows the last applied transaction; a
 * restarted task (worker crash or shutdown) continues from there, and each
 * Writer's checkpoint (sequence, stored with the rows) skips what was
 * already applied. PostgreSQL is acknowledged only after the Writers
 * committed.
 *
 * Change semantics through a Filter: the before and after images are both
 * tested; an update moving a row into the filter is an insert (upsert) at
 * the destination, out of it a delete, within it an update. Map applies to
 * both images; a Writer needs a key (the source key, kept through Map).
 * DDL is not replayed (logged once per table).
 */
import { Operation, type CapturedTransaction, type ChangeEvent, type ColumnType, type Row, type SourcePosition } from '../../replication/change-event.ts';
import type { CaptureSource } from '../../replication/capture/capture-source.ts';
import { createApplier } from '../../replication/factory.ts';
import { captureFor, type StreamCaptureDetail } from '../../replication/pipeline/stream-capture.ts';
import type { Applier } from '../../replication/apply/applier.ts';
import { classify } from '../../replication/errors.ts';
import { describeTable } from '../../replication/tables/table-io.ts';
import { filterTransform, mapTransform, TransformError, type MapParams, type RowSchema, type RowTransform } from '../../replication/transform/row-transforms.ts';
import { ExpressionError } from '../../replication/transform/expression.ts';
import { tableParam } from '../../domain/pipeline-dsl.ts';
import { JobStatus } from '../../domain/job-model.ts';
import { PipelineModule, SAMPLE_ROWS, componentsBelow, type PlannedComponent } from '../../domain/pipeline-model.ts';
import { ComponentError, METRIC_NAMESPACE, type ComponentRun } from './pipeline-run.ts';
import { OPEN_TASK_STATES, TaskState } from '../../domain/task-model.ts';
import type { TaskRow } from '../../store/job.repo.ts';

interface Stage { component: PlannedComponent; transform: RowTransform; taskId: string; rowsIn: number; rowsOut: number }

interface Branch {
  writer: PlannedComponent;
  taskId: string;
  stages: Stage[];
  schema: RowSchema;
  at: { schema: string; table: string };
  label: string;
  applier: Applier;
  rowsIn: number;
  rowsOut: number;
  sample: Row[];
}

/** A row through a branch's transforms; null when a Filter drops it. */
function through(stages: Stage[], row: Row): Row | null {
  let r: Row = row;
  for (const s of stages) {
    s.rowsIn++;
    const out = s.transform.push([r]);
    if (!out.length) return null;
    s.rowsOut++;
    r = out[0]!;
  }
  return r;
}

/** One source change as the branch's Writer sees it, or undefined when the branch drops it. */
export function changeFor(e: ChangeEvent, stages: Stage[], out: { schema: string; table: string; columns: ColumnType[]; key: string[] }): ChangeEvent | undefined {
  // A key-only before image (no REPLICA IDENTITY FULL) cannot be filtered: delete by key (idempotent).
  const before = e.before ? (e.beforeKeyOnly ? keyThrough(stages, e.before) : through(stages, e.before)) : null;
  const after = e.after ? through(stages, e.after) : null;
  let op: Operation;
  if (e.op === Operation.Insert) { if (!after) return undefined; op = Operation.Insert; }
  else if (e.op === Operation.Delete) { if (!before) return undefined; op = Operation.Delete; }
  else if (e.op === Operation.Update) {
    if (before && after) op = Operation.Update;
    else if (after) op = Operation.Insert;
    else if (before) op = Operation.Delete;
    else return undefined;
  } else return undefined;
  return {
    ...e, op, schema: out.schema, table: out.table, columns: out.columns, key: out.key,
    before: op === Operation.Insert ? null : before, after: op === Operation.Delete ? null : after, beforeKeyOnly: false,
  };
}

/** Key columns only, renamed the way the branch's Maps rename them. */
function keyThrough(stages: Stage[], row: Row): Row {
  let r: Row = { ...row };
  for (const s of stages) {
    if (s.component.module !== PipelineModule.Map) continue;
    const rename = (s.component.parameters.rename ?? {}) as Record<string, string>;
    const next: Row = {};
    for (const [k, v] of Object.entries(r)) next[rename[k] ?? k] = v;
    r = next;
  }
  return r;
}

function transformOf(c: PlannedComponent, schema: RowSchema): RowTransform {
  const p = c.parameters;
  if (c.module === PipelineModule.Filter) return filterTransform(schema, { where: String(p.where ?? p.condition ?? p.expression) });
  if (c.module === PipelineModule.Map) return mapTransform(schema, p as MapParams);
  throw new ComponentError(`module ${c.module} cannot follow a Capture`);
}

async function resolve(cr: ComponentRun, c: PlannedComponent) {
  const t = tableParam(c.parameters, c.name);
  const ns = await cr.deps.pipelines.resolveNamespace(t.namespace);
  if (!ns) throw new ComponentError(`component ${c.name}: namespace "${t.namespace}" is neither a connection nor a database of one`);
  const conn = await cr.deps.connections.config(ns.connection.id);
  return { conn, at: { schema: ns.schema, table: t.name }, label: `${t.namespace}.${t.name}` };
}

/** What a running stream holds, filled as the DAG below the Capture is walked and released when the stream ends. */
interface StreamParts {
  /** Every Writer below the Capture, with the transforms on its path. */
  branches: Branch[];
  stages: Map<string, Stage>;
  appliers: Applier[];
  /** For the component metrics: how far behind the source the last transaction was when it was written (ms). */
  lagAtLastMs?: number;
}

type SourceAt = Awaited<ReturnType<typeof resolve>>;

/** The Capture component's task: streams until the job is stopped (or the worker shuts down). */
export async function runCaptureStream(cr: ComponentRun): Promise<void> {
  const { deps, component: cap } = cr;
  const logger = cr.run.logger;
  const src = await resolve(cr, cap);
  const info = await describeTable(src.conn, src.at, logger);
  if (!info) throw new ComponentError(`table ${src.label} does not exist`);
  const sourceSchema: RowSchema = { columns: info.columns, key: info.key };
  const tasks = await deps.jobs.tasksOf([cr.jobId]);
  const own = tasks.find((t) => t.name === cap.name)!;
  const detail = own.detail as Partial<StreamCaptureDetail>;
  if (!detail.captureId) throw new ComponentError('the Capture was not prepared at submit (resubmit the job)');

  const parts: StreamParts = { branches: [], stages: new Map(), appliers: [] };
  let capture: CaptureSource | undefined;
  let fatal = false;
  try {
    await buildBranches(cr, tasks, parts, sourceSchema);
    const resume = (own.position as SourcePosition | null) ?? detail.startPosition;
    const serverId = cap.parameters.server_id !== undefined ? Number(cap.parameters.server_id) : undefined;
    capture = captureFor(src.conn, detail.captureId, src.at, logger, resume, serverId);
    await capture.prepare();
    const downstream = [...parts.stages.values()].map((s) => s.taskId).concat(parts.branches.map((b) => b.taskId));
    await deps.jobs.moveTasks({ ids: downstream }, [TaskState.Waiting, TaskState.Queued], TaskState.Running, { nodeId: cr.run.ctx.nodeId });
    await cr.progress({ phase: 'streaming', streaming: true, from: resume }, true);
    await cr.run.log('info', `${cap.name} streams ${src.label} from ${JSON.stringify(resume)} into ${parts.branches.map((b) => `${b.writer.name} (${b.label})`).join(', ')}`);
    await streamTransactions(cr, capture, src, parts);
  } catch (err) {
    fatal = endsTheStream(cr, err);
    throw err;
  } finally {
    await settleStream(cr, { src, detail: detail as StreamCaptureDetail, capture, fatal, tasks, parts });
  }
}

/** Walk the DAG below the Capture: a stage per Filter/Map (shared by the branches through it), an applier per Writer. */
async function buildBranches(cr: ComponentRun, tasks: TaskRow[], parts: StreamParts, sourceSchema: RowSchema): Promise<void> {
  const logger = cr.run.logger;
  const byName = new Map(cr.spec.components.map((c) => [c.name, c]));
  const taskOf = (name: string) => tasks.find((t) => t.name === name)!;
  const walk = async (c: PlannedComponent, path: Stage[], schema: RowSchema): Promise<void> => {
    for (const d of c.downstream.map((n) => byName.get(n)!)) {
      if (d.module === PipelineModule.Writer) {
        const dst = await resolve(cr, d);
        const p = d.parameters;
        const key = Array.isArray(p.key) ? p.key.map(String) : schema.key;
        if (!key.length) throw new ComponentError(`component ${d.name}: a Writer after a Capture needs a key to apply updates and deletes (keep the source key through Map, or set parameter key)`);
        for (const k of key) if (!schema.columns.some((col) => col.name === k)) throw new ComponentError(`component ${d.name}: key column "${k}" is not among the input columns (${schema.columns.map((col) => col.name).join(', ')})`);
        const applier = createApplier(dst.conn, { jobId: `${cr.jobId}:${d.name}`, logger });
        parts.appliers.push(applier);
        await applier.ensureTable({ schema: dst.at.schema, table: dst.at.table, columns: schema.columns, key, estimatedRows: 0 });
        if (p.mode === 'replace') logger.warn({ component: d.name }, 'mode "replace" is ignored after a Capture: a stream applies changes');
        parts.branches.push({ writer: d, taskId: taskOf(d.name).id, stages: path, schema: { columns: schema.columns, key }, at: dst.at, label: dst.label, applier, rowsIn: 0, rowsOut: 0, sample: [] });
      } else {
        const stage = parts.stages.get(d.name) ?? { component: d, transform: transformOf(d, schema), taskId: taskOf(d.name).id, rowsIn: 0, rowsOut: 0 };
        parts.stages.set(d.name, stage);
        // Each branch sees the rows its own path produced; a shared stage counts each row once per branch.
        const next = d.module === PipelineModule.Map ? stage.transform.finish().schema : schema;
        await walk(d, [...path, stage], next);
      }
    }
  };
  await walk(cr.component, [], sourceSchema);
}

/**
 * Run the capture until it stops: each committed transaction of the source
 * table goes through every branch and is applied by its Writer (checkpointed
 * with the transaction's last sequence); positions and counters are written
 * every second and once more at the end.
 */
async function streamTransactions(cr: ComponentRun, capture: CaptureSource, src: SourceAt, parts: StreamParts): Promise<void> {
  const { deps, component: cap } = cr;
  const logger = cr.run.logger;
  const stillThisRun = async (): Promise<boolean> => {
    const now = await deps.jobs.statusAndRun(cr.jobId);
    return now?.status === JobStatus.Running && now.run_id === cr.payload.runId;
  };
  let lastPos: SourcePosition | undefined; let dirty = false; let lastCommit = 0;
  const ddlSeen = new Set<string>();
  const flush = async () => {
    if (!dirty) return;
    dirty = false;
    if (lastPos) await deps.jobs.updateTask(cr.payload.taskId, { position: lastPos });
    await cr.progress({ phase: 'streaming', streaming: true, lagMs: lastCommit ? Math.max(0, Date.now() - lastCommit) : null }, true);
    for (const s of parts.stages.values()) await deps.jobs.updateTask(s.taskId, { progress: { rowsIn: s.rowsIn, rowsOut: s.rowsOut } });
    for (const b of parts.branches) {
      await deps.jobs.updateTask(b.taskId, { progress: { rowsIn: b.rowsIn, rowsOut: b.rowsOut } });
      await deps.pipelines.putOutput(cr.jobId, b.writer.name, b.writer.outputs[0] ?? 'data', { columns: b.schema.columns, key: b.schema.key, total: b.rowsOut, sample: b.sample });
    }
  };
  const flusher = setInterval(() => { flush().catch((err) => logger.warn({ err }, 'stream progress update failed')); }, 1000);
  try {
    await capture.run(async (tx: CapturedTransaction) => {
      const mine = tx.events.filter((e) => e.schema === src.at.schema && e.table === src.at.table);
      // The fence: a stop answers once the job row says so, and a change committed after that is read
      // from the log after it, so asking the job here, before anything of this transaction is applied,
      // keeps every such change out, whether or not the stop notice reached this worker. Not applied,
      // not acknowledged (the position stays before it).
      if (mine.some((e) => e.op !== Operation.Ddl) && !(await stillThisRun())) {
        cr.run.abortForJobChange();
        return;
      }
      for (const e of mine) {
        if (e.op === Operation.Ddl) {
          if (!ddlSeen.has(e.table)) { ddlSeen.add(e.table); await cr.run.log('warn', `${cap.name}: DDL on ${src.label} is not replayed by the stream (${e.ddl ?? 'schema change'})`); }
          continue;
        }
        cr.rowsIn++; cr.rowsOut++;
      }
      const last = tx.events.at(-1)?.sequence;
      if (last) for (const b of parts.branches) await applyToBranch(b, mine, last);
      // Lag from the precise commit estimate where the source's stamp is coarse (MariaDB: commit-clock.ts).
      if (!tx.partial) { lastPos = tx.resume; lastCommit = tx.commitEstimate ?? tx.commitTime; parts.lagAtLastMs = Math.max(0, Date.now() - lastCommit); dirty = true; }
    }, cr.signal);
  } finally {
    clearInterval(flusher);
    dirty = true;
    await flush().catch(() => undefined);
  }
}

/** One transaction's row changes through a branch's transforms, applied by its Writer with `last` as checkpoint. */
async function applyToBranch(b: Branch, events: ChangeEvent[], last: string): Promise<void> {
  const out: ChangeEvent[] = [];
  for (const e of events) {
    if (e.op === Operation.Ddl) continue;
    b.rowsIn++;
    const c = changeFor(e, b.stages, { ...b.at, columns: b.schema.columns, key: b.schema.key });
    if (!c) continue;
    out.push(c);
    if (c.after && b.sample.length < SAMPLE_ROWS) b.sample.push(c.after);
  }
  if (out.length) { await b.applier.applyBatch(out, 0, last); b.rowsOut += out.length; }
}

/** Whether a failure ends the stream for good: a data problem, a fatal error, or the last attempt (not a stop). */
function endsTheStream(cr: ComponentRun, err: unknown): boolean {
  const dataProblem = err instanceof ComponentError || err instanceof TransformError || err instanceof ExpressionError;
  const attemptsLeft = (cr.run.ctx.job.opts.attempts ?? 1) - (cr.run.ctx.job.attemptsMade ?? 0) - 1;
  return !cr.signal.aborted && (dataProblem || !classify(err).retriable || attemptsLeft <= 0);
}

/**
 * The stream ended (stopped, shut down or failed). Stopped, deleted or failed
 * for good, nothing resumes this capture, so its slot goes (it would hold WAL
 * forever) and the components fused into its task are canceled; either way
 * its reader and Writers close.
 */
async function settleStream(
  cr: ComponentRun,
  s: { src: SourceAt; detail: StreamCaptureDetail; capture: CaptureSource | undefined; fatal: boolean; tasks: TaskRow[]; parts: StreamParts },
): Promise<void> {
  const { deps, spec, component: cap } = cr;
  const logger = cr.run.logger;
  // Decided on the job itself: a stop reaches the task as the same abort as a worker shutdown.
  let over = s.fatal;
  if (!over && cr.signal.aborted) {
    const j = await deps.jobs.get(cr.jobId).catch(() => null);
    over = j !== null && !(j && j.run_id === cr.payload.runId && j.status === JobStatus.Running);
  }
  if (over) {
    const c = s.capture ?? captureFor(s.src.conn, s.detail.captureId, s.src.at, logger, s.detail.startPosition);
    await c.drop().catch((err) => logger.warn({ err }, 'dropping the stream capture failed'));
    if (c !== s.capture) await c.close().catch(() => undefined);
  }
  await s.capture?.close().catch(() => undefined);
  for (const a of s.parts.appliers) await a.close().catch(() => undefined);
  // errors: the attempts of this task that ended in an error before this one (BullMQ's attemptsMade).
  if (cr.signal.aborted) await writeStreamMetrics(cr, [...s.parts.stages.values()], s.parts.branches, { lagMs: s.parts.lagAtLastMs ?? 0, errors: cr.run.ctx.job.attemptsMade ?? 0 }).catch(() => undefined);
  // The components fused into this task end with it (the Capture's own task right after, in the processor):
  // once every task of a stopped stream reads canceled, its log reader and Writers are closed.
  if (over) {
    const fused = componentsBelow(spec.components, cap.name).map((n) => s.tasks.find((t) => t.name === n)?.id).filter((id): id is string => !!id);
    await deps.jobs.moveTasks({ ids: fused }, OPEN_TASK_STATES, TaskState.Canceled, { progress: { endedAt: Date.now() } })
      .catch((err) => logger.warn({ err }, 'canceling the fused components failed'));
  }
}

async function writeStreamMetrics(cr: ComponentRun, stages: Stage[], branches: Branch[], figures: { lagMs: number; errors: number }): Promise<void> {
  const now = Date.now();
  const put = (component: string, name: string, value: number, type: string, unit: string) =>
    cr.deps.pipelines.putMetric(cr.jobId, component, METRIC_NAMESPACE, name, [['total', value]], { name, metric_type: type, unit, component_name: component });
  for (const [name, rowsIn, rowsOut] of [...stages.map((s) => [s.component.name, s.rowsIn, s.rowsOut] as const), ...branches.map((b) => [b.writer.name, b.rowsIn, b.rowsOut] as const)]) {
    await put(name, 'rows_in', rowsIn, 'COUNTER', 'rows');
    await put(name, 'rows_out', rowsOut, 'COUNTER', 'rows');
    await put(name, 'duration_ms', now - cr.startedAt, 'DURATION', 'ms');
    await put(name, 'errors', figures.errors, 'COUNTER', 'errors');
    await put(name, 'lag_ms', figures.lagMs, 'GAUGE', 'ms');
  }
  await cr.writeMetrics();
}
