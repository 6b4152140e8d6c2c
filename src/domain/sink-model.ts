/**
 * Sinks: a change feed delivered to an outside target (webhook, NATS
 * JetStream, RabbitMQ) by one long-running task that reads the feed from its
 * own checkpoint. Imports nothing of the project.
 *
 * States:
 *
 *     createSink ──> RUNNING ──pauseSink──> PAUSED ──resumeSink──> RUNNING
 *                       │  ▲                                          
 *     fatal error /     │  └──────────────resumeSink──────────┐
 *     onFailure STOP    └──────────────> FAILED ──────────────┘
 *
 * Invariants:
 * - `position` is the feed sequence up to which every selected change was
 *   confirmed by the target (HTTP 2xx, JetStream ack, RabbitMQ confirm) or
 *   stored in the sink's dead-letter list; it only moves forward.
 * - `runId` grows on every resume: a task of an older run ends at its next
 *   check, so two runs never deliver side by side for long (and when they
 *   do, the message ids make the overlap a duplicate the target drops).
 * - Per key (table + primary key), messages reach the target in feed order;
 *   once a key has a message in the dead-letter list, its later messages
 *   join it there until it is replayed or dropped.
 */

export enum SinkKind {
  Webhook = 'webhook',
  Nats = 'nats',
  RabbitMq = 'rabbitmq',
}

export enum SinkStatus {
  Running = 'running',
  Paused = 'paused',
  Failed = 'failed',
}

export enum SinkFormat {
  /** The change as the feed serves it (Tributary's change JSON), plus `id` and `feed`. */
  Json = 'json',
  /** Debezium's JSON envelope (`before`, `after`, `source`, `op`, `ts_ms`), schemas disabled. */
  Debezium = 'debezium',
  /** Tributary's SinkChange protobuf message (src/replication/sinks/formats/sink-change.proto). */
  Protobuf = 'protobuf',
}

/** What a sink does with a message whose retries are used up. */
export enum SinkFailurePolicy {
  /** Dead-letter it (and its key's later messages) and go on with the other keys. */
  Continue = 'continue',
  /** Stop the sink (FAILED); the checkpoint stays before the message. */
  Stop = 'stop',
}

/** Delivery settings of one sink, with their defaults. */
export interface SinkDelivery {
  /** Changes read from the feed per batch; the checkpoint moves once per batch. Default 500. */
  batchSize: number;
  /** How long a batch that is not full waits for more changes, ms. Default 20. */
  lingerMs: number;
  /** Keys are spread over this many lanes by hash; lanes deliver side by side, each key stays in one lane. Default 16. */
  lanes: number;
  /** Attempts per delivery before a message is dead-lettered (or the sink stops). Default 8. */
  maxAttempts: number;
  /** First retry delay, ms; doubles per attempt, with jitter. Default 200. */
  backoffMs: number;
  /** Largest retry delay, ms. Default 30000. */
  maxBackoffMs: number;
  onFailure: SinkFailurePolicy;
}

export const DEFAULT_DELIVERY: SinkDelivery = {
  batchSize: 500, lingerMs: 20, lanes: 16, maxAttempts: 8, backoffMs: 200, maxBackoffMs: 30_000, onFailure: SinkFailurePolicy.Continue,
};

export const SINK_NAME_RE = /^[A-Za-z0-9_.-]{1,120}$/;

/** The stable id of a message: the feed and the change's sequence. A redelivery carries the same id. */
export function messageId(feed: string, sequence: string): string {
  return `${feed}:${sequence}`;
}

/** Which statuses a control operation may leave from. */
export const SINK_TRANSITIONS: Record<'pause' | 'resume', SinkStatus[]> = {
  pause: [SinkStatus.Running],
  resume: [SinkStatus.Paused, SinkStatus.Failed],
};

/**
 * Delay before retry `attempt` (1 = the first retry): exponential from
 * `backoffMs`, capped, with jitter (half of it fixed, half random) so that sinks failing together
 * do not retry in step. `random` is injectable for tests.
 */
export function retryDelay(attempt: number, d: Pick<SinkDelivery, 'backoffMs' | 'maxBackoffMs'>, random: () => number = Math.random): number {
  const cap = Math.min(d.maxBackoffMs, d.backoffMs * 2 ** Math.min(30, attempt - 1));
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** What `sinkEvents` subscribers receive: a status change, progress after checkpoints (at most about once a second), retries. */
export interface SinkEvent {
  sinkId: string;
  kind: 'status' | 'progress' | 'retry' | 'dead-lettered';
  status: SinkStatus;
  position: string | null;
  delivered: number;
  failed: number;
  lagMs: number | null;
  message: string | null;
  at: string;
}
