/**
 * NATS JetStream sink: publishes each change to `<subject>.<schema>.<table>`
 * with Nats-Msg-Id set to the change's stable id and waits for the stream's
 * ack. A redelivery after a crash or a lost ack is inside the stream's
 * duplicate window and JetStream answers it as a duplicate without storing
 * it again; so the window must cover the longest outage a redelivery can
 * follow (default here: 10 minutes when the sink creates the stream).
 */
import { connect, headers, nanos, type JetStreamClient, type NatsConnection, type NatsError } from 'nats';
import { z } from 'zod';
import { hostAllowed, MessageHeader } from './sink-constants.ts';
import { SinkKind } from '../../domain/sink-model.ts';
import { SinkConfigError, SinkRejectedError, SinkUnavailableError, type Sink, type SinkMessage, type SinkModule } from './sink.ts';

const TOKEN_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export const natsConfigSchema = z.object({
  /** nats://host:port, one or several. */
  servers: z.union([z.string(), z.array(z.string()).min(1)]).transform((s) => (Array.isArray(s) ? s : [s]))
    // Credentials belong in user/password/token (encrypted), not in a URL that is stored and returned as is.
    .refine((list) => list.every((u) => !u.includes('@')), 'servers must not hold credentials: use user, password or token'),
  /** Subject prefix; each change goes to `<subject>.<schema>.<table>`. Default "tributary". */
  subject: z.string().regex(TOKEN_RE, 'subject must be dot-separated tokens of letters, digits, _ and -').default('tributary'),
  /** When set, the stream is created (subjects `<subject>.>`, file storage) if it does not exist. */
  stream: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  /** Duplicate window of a stream the sink creates, ms. Default 600000. */
  duplicateWindowMs: z.number().int().min(1000).max(7 * 24 * 3600_000).default(600_000),
  /** How long to wait for each ack, ms. Default 5000. */
  ackTimeoutMs: z.number().int().min(100).max(120_000).default(5000),
  /** Publishes in flight at once per delivery call (changes of distinct keys). Default 256. */
  maxBatch: z.number().int().min(1).max(10_000).default(256),
  user: z.string().optional(),
}).strict();
export type NatsConfig = z.infer<typeof natsConfigSchema>;
export const natsSecretsSchema = z.object({ password: z.string().optional(), token: z.string().optional() }).strict();
export type NatsSecrets = z.infer<typeof natsSecretsSchema>;

export const natsSinkModule: SinkModule<NatsConfig, NatsSecrets> = {
  kind: SinkKind.Nats, config: natsConfigSchema as unknown as z.ZodType<NatsConfig>, secrets: natsSecretsSchema, secretKeys: ['password', 'token'],
  settings: 'servers, subject, stream, duplicateWindowMs, ackTimeoutMs, maxBatch, user, password, token',
  create: (c, s, o) => new NatsSink(c, s, o.allowedHosts),
};

/** A subject token from a schema or table name (dots and wildcards are not allowed inside tokens). */
export const subjectToken = (s: string): string => s.replace(/[^A-Za-z0-9_-]/g, '_') || '_';

const FATAL_CODES = new Set(['AUTHORIZATION_VIOLATION', 'AUTHENTICATION_EXPIRED', 'PERMISSIONS_VIOLATION', 'AUTHENTICATION_TIMEOUT']);

function natsError(err: unknown, what: string): Error {
  const code = (err as NatsError)?.code;
  const msg = `${what}: ${(err as Error)?.message ?? String(err)}${code ? ` (${code})` : ''}`;
  if (code && FATAL_CODES.has(code)) return new SinkConfigError(msg, { cause: err });
  // JetStream API errors with a 400 answer (message too big, bad subject) refuse this message.
  if ((err as { api_error?: { code?: number } })?.api_error?.code === 400) return new SinkRejectedError(msg, { cause: err });
  return new SinkUnavailableError(msg, { cause: err });
}

export class NatsSink implements Sink {
  readonly kind = 'nats';
  readonly atomicBatches = false;
  readonly maxBatch: number;
  private nc?: NatsConnection;
  private js?: JetStreamClient;
  private opening?: Promise<void>;

  constructor(private readonly cfg: NatsConfig, private readonly secrets: NatsSecrets, allowedHosts: readonly string[] = []) {
    for (const s of cfg.servers) {
      const host = new URL(s.includes('://') ? s : `nats://${s}`).hostname;
      if (!hostAllowed(host, allowedHosts)) throw new SinkConfigError(`NATS host ${host} is not in SINK_ALLOWED_HOSTS`);
    }
    this.maxBatch = cfg.maxBatch;
  }

  open(): Promise<void> {
    if (this.js && this.nc && !this.nc.isClosed()) return Promise.resolve();
    this.opening ??= this.connect().finally(() => { this.opening = undefined; });
    return this.opening;
  }

  private async connect(): Promise<void> {
    try {
      // Reconnects forever: publishes made while disconnected wait (and time out into a retry).
      this.nc = await connect({
        servers: this.cfg.servers, user: this.cfg.user, pass: this.secrets.password, token: this.secrets.token,
        maxReconnectAttempts: -1, reconnectTimeWait: 250, name: 'tributary-sink',
      });
    } catch (err) { throw natsError(err, 'cannot connect to NATS'); }
    if (this.cfg.stream) await this.ensureStream(this.cfg.stream);
    this.js = this.nc.jetstream({ timeout: this.cfg.ackTimeoutMs });
  }

  private async ensureStream(name: string): Promise<void> {
    try {
      const jsm = await this.nc!.jetstreamManager({ timeout: this.cfg.ackTimeoutMs });
      try { await jsm.streams.info(name); return; } catch (err) { if ((err as NatsError).code !== '404') throw err; }
      await jsm.streams.add({ name, subjects: [`${this.cfg.subject}.>`], duplicate_window: nanos(this.cfg.duplicateWindowMs) });
    } catch (err) { throw natsError(err, `cannot create JetStream stream ${name}`); }
  }

  async deliver(messages: SinkMessage[]): Promise<void> {
    await this.open();
    const js = this.js!;
    const results = await Promise.allSettled(messages.map((m) => {
      const h = headers();
      h.set(MessageHeader.Key, m.key); h.set(MessageHeader.Sequence, m.sequence); h.set(MessageHeader.Feed, m.feed); h.set(MessageHeader.Op, m.op);
      h.set('Content-Type', m.contentType);
      return js.publish(`${this.cfg.subject}.${subjectToken(m.schema)}.${subjectToken(m.table)}`, m.body, { msgID: m.id, headers: h, timeout: this.cfg.ackTimeoutMs });
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw natsError(failed.reason, 'JetStream publish not acknowledged');
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined; this.js = undefined;
    await nc?.close().catch(() => undefined);
  }
}
