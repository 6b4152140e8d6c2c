/**
 * The one interface every sink module implements (webhook, NATS JetStream,
 * RabbitMQ; a Kafka module would be one more file and one registry entry).
 * A sink only delivers: the runner (sink-runner.ts) reads the feed, encodes,
 * orders, retries, dead-letters and checkpoints. Modules know their wire and
 * nothing else.
 */
import { ReplicationError } from '../errors.ts';

/** One change ready for the wire. */
export interface SinkMessage {
  /** Stable id (`feed:sequence`): Idempotency-Key, Nats-Msg-Id, AMQP message-id. */
  id: string;
  feed: string;
  sequence: string;
  /** Ordering key: table and primary key. Messages of one key are delivered in feed order. */
  key: string;
  schema: string;
  table: string;
  /** insert | update | delete */
  op: string;
  body: Buffer;
  contentType: string;
}

export interface Sink {
  readonly kind: string;
  /**
   * true when one deliver() call hands its messages to the target as one
   * ordered unit (an HTTP body): then several messages of one key may share a
   * call. false (brokers, where publishes are separate): the runner never
   * puts two messages of one key in one call, so a partly failed call cannot
   * reorder a key when it is retried.
   */
  readonly atomicBatches: boolean;
  /** Most messages per deliver() call. */
  readonly maxBatch: number;
  /** Connect (idempotent); throws SinkError. */
  open(): Promise<void>;
  /**
   * Deliver all of `messages`, resolving only once the target confirmed every
   * one (HTTP 2xx, JetStream ack, publisher confirm). Throws SinkError: the
   * whole call is then retried (the ids make re-sent messages duplicates).
   */
  deliver(messages: SinkMessage[], signal?: AbortSignal): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

/**
 * A delivery failed. `retriable` false means retrying this message cannot
 * help (HTTP 4xx, a message the broker refuses): it goes to the dead-letter
 * list at once. `fatal` means the sink itself is misconfigured (auth, bad
 * address): the sink stops with this message.
 */
export class SinkError extends ReplicationError {
  override readonly name: string = 'SinkError';
  constructor(message: string, retriable: boolean, readonly fatal = false, options?: { cause?: unknown }) {
    super(message, retriable, options);
  }
}

/** The target refused the message itself (not worth retrying). */
export class SinkRejectedError extends SinkError {
  override readonly name = 'SinkRejectedError';
  constructor(message: string, options?: { cause?: unknown }) { super(message, false, false, options); }
}

/** The sink's configuration is wrong (authentication, unknown host, refused by the allow-list). */
export class SinkConfigError extends SinkError {
  override readonly name = 'SinkConfigError';
  constructor(message: string, options?: { cause?: unknown }) { super(message, false, true, options); }
}

/** Anything else: the target is down or slow. Retried with backoff. */
export class SinkUnavailableError extends SinkError {
  override readonly name = 'SinkUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) { super(message, true, false, options); }
}

export function asSinkError(err: unknown): SinkError {
  if (err instanceof SinkError) return err;
  return new SinkUnavailableError((err as Error)?.message ?? String(err), { cause: err });
}
