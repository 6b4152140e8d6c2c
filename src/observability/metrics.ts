/**
 * Prometheus metrics (prom-client): HTTP and GraphQL operation counts and
 * durations, queue depths, and replication figures reported by workers.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Histogram<'method' | 'route' | 'status'>;
  readonly graphqlOperations: Counter<'operation' | 'type' | 'outcome'>;
  readonly graphqlDuration: Histogram<'operation' | 'type'>;
  readonly queueDepth: Gauge<'queue' | 'state'>;
  readonly changesCaptured: Counter<'job'>;
  readonly rowsApplied: Counter<'job'>;
  readonly taskFailures: Counter<'job' | 'kind' | 'outcome'>;

  constructor(queueCounts?: () => Promise<Record<string, Record<string, number>>>) {
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
  }
}
