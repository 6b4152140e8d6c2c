/**
 * Prometheus metrics (prom-client): HTTP and GraphQL operation counts and
 * durations, queue depths, and replication figures reported by workers.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One running job's figures for the per-job gauges. */
export interface JobStat { job: string; lagSeconds: number | null; backlog: number | null; lastCommitSeconds: number | null; retainedLogBytes: number | null }

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Histogram<'method' | 'route' | 'status'>;
  readonly graphqlOperations: Counter<'operation' | 'type' | 'outcome'>;
  readonly graphqlDuration: Histogram<'operation' | 'type'>;
  readonly queueDepth: Gauge<'queue' | 'state'>;
  readonly changesCaptured: Counter<'job'>;
  readonly rowsApplied: Counter<'job'>;
  readonly taskFailures: Counter<'job' | 'kind' | 'outcome'>;
  readonly jobLag: Gauge<'job'>;
  readonly jobBacklog: Gauge<'job'>;
  readonly jobLastCommit: Gauge<'job'>;
  readonly jobRetainedLog: Gauge<'job'>;

  constructor(queueCounts?: () => Promise<Record<string, Record<string, number>>>, jobStats?: () => Promise<JobStat[]>) {
    collectDefaultMetrics({ register: this.registry, prefix: 'tributary_' });
    this.httpRequests = new Histogram({
      name: 'tributary_http_request_duration_seconds', help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'], registers: [this.registry],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30],
    });
    this.graphqlOperations = new Counter({
      name: 'tributary_graphql_operations_total', help: 'GraphQL operations by name, type and outcome',
      labelNames: ['operation', 'type', 'outcome'], registers: [this.registry],
    });
    this.graphqlDuration = new Histogram({
      name: 'tributary_graphql_operation_duration_seconds', help: 'GraphQL operation duration',
      labelNames: ['operation', 'type'], registers: [this.registry],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    });
    this.queueDepth = new Gauge({
      name: 'tributary_queue_jobs', help: 'BullMQ jobs per queue and state', labelNames: ['queue', 'state'], registers: [this.registry],
      async collect() {
        if (!queueCounts) return;
        const counts = await queueCounts().catch(() => ({}));
        for (const [queue, states] of Object.entries(counts)) for (const [state, n] of Object.entries(states)) this.set({ queue, state }, n);
      },
    });
    this.changesCaptured = new Counter({ name: 'tributary_changes_captured_total', help: 'Changes appended to feeds by this process', labelNames: ['job'], registers: [this.registry] });
    this.taskFailures = new Counter({ name: 'tributary_task_failures_total', help: 'Task attempts that failed, by job, task kind and outcome (retrying, failed: the job failed)', labelNames: ['job', 'kind', 'outcome'], registers: [this.registry] });
    this.rowsApplied = new Counter({ name: 'tributary_rows_applied_total', help: 'Rows applied to destinations by this process', labelNames: ['job'], registers: [this.registry] });
    // Per running job, read at scrape time (the jobs table and the feed's in-flight counter), so a job that
    // stopped leaves no stale series behind.
    let stats: Promise<JobStat[]> | undefined;
    const read = (): Promise<JobStat[]> => (stats ??= (jobStats?.() ?? Promise.resolve([])).catch(() => []).finally(() => setTimeout(() => { stats = undefined; }, 100)));
    const perJob = (name: string, help: string, pick: (s: JobStat) => number | null) => new Gauge({
      name, help, labelNames: ['job'], registers: [this.registry],
      async collect() {
        this.reset();
        for (const s of await read()) { const v = pick(s); if (v !== null) this.set({ job: s.job }, v); }
      },
    });
    this.jobLag = perJob('tributary_job_lag_seconds', 'Running jobs: source commit to destination apply, seconds (0 when caught up; while the apply is stuck, the age of the oldest change not yet applied)', (s) => s.lagSeconds);
    this.jobBacklog = perJob('tributary_job_backlog_transactions', 'Running jobs: transactions captured into the feed and not yet applied', (s) => s.backlog);
    this.jobRetainedLog = perJob('tributary_job_retained_log_bytes', 'Running jobs: log the source keeps for the job (PostgreSQL WAL retained by its slot, MariaDB binary log after its position), bytes', (s) => s.retainedLogBytes);
    this.jobLastCommit = perJob('tributary_job_last_captured_commit_timestamp_seconds', 'Running jobs: source commit time of the last captured transaction, Unix seconds', (s) => s.lastCommitSeconds);
  }
}
