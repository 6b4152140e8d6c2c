/**
 * The contract of a sink kind. A kind is one module (`<kind>.sink.ts`) that
 * exports a `SinkModule`: its config and secrets schemas and a factory for a
 * `Sink`, the client that delivers. The runner (sink-runner.ts) reads the
 * feed, encodes, orders, retries, dead-letters and checkpoints; the module
 * knows its wire and nothing else. Adding a kind (Kafka, say) is that module,
 * its line in sink-registry.ts and its value in the domain's SinkKind: the
 * GraphQL enum, the config documentation, storage and the task follow
 * (docs/sinks.md, "Adding a sink kind").
 */
import type { z } from 'zod';
import type { SinkFormat, SinkKind } from '../../domain/sink-model.ts';
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

/** What the sink layer needs to know about one kind: exported by its module, listed in sink-registry.ts. */
export interface SinkModule<C extends Record<string, unknown> = Record<string, unknown>, S extends Record<string, unknown> = Record<string, unknown>> {
  readonly kind: SinkKind;
  /** Public settings (stored and returned as given, after defaults). Reject unknown keys (`.strict()`). */
  readonly config: z.ZodType<C>;
  /** Secret settings: stored encrypted with the connection passwords' key, never returned or logged. */
  readonly secrets: z.ZodType<S>;
  /** Keys of the input config that are secrets: split off before the config is validated and stored. */
  readonly secretKeys: readonly string[];
  /** One line naming the settings, for the GraphQL `config` description: "url, batchSize, ...". */
  readonly settings: string;
  /**
   * A client for one sink run. Must not connect (open() does); throws
   * SinkConfigError for a config that cannot work (a host outside
   * SINK_ALLOWED_HOSTS, a format the kind cannot carry).
   */
  create(config: C, secrets: S, o: { format: SinkFormat; allowedHosts: readonly string[] }): Sink;
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
