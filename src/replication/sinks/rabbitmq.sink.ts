/**
 * RabbitMQ sink: publishes each change to an exchange on a confirm channel,
 * persistent, with the AMQP `message-id` set to the change's stable id, and
 * waits for the broker's confirms. RabbitMQ does not drop duplicates itself:
 * a redelivery after a crash carries the same message-id, and consumers
 * deduplicate by it (docs/consistency.md). Messages are published mandatory:
 * one that no queue is bound for comes back and counts as not delivered
 * (it is retried, then dead-lettered), never as silently confirmed.
 */
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { z } from 'zod';
import { hostAllowed, MessageHeader } from './sink-constants.ts';
import { SinkKind } from '../../domain/sink-model.ts';
import { SinkConfigError, SinkUnavailableError, type Sink, type SinkMessage, type SinkModule } from './sink.ts';

export const rabbitConfigSchema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(5672),
  vhost: z.string().default('/'),
  username: z.string().default('guest'),
  /** Exchange to publish to ("" = the default exchange, routing key = queue name). */
  exchange: z.string().default(''),
  /** Routing key; `{schema}`, `{table}` and `{op}` are replaced. Default "{schema}.{table}". */
  routingKey: z.string().default('{schema}.{table}'),
  /** Declare the exchange (durable, of this type) when it is missing. */
  declareExchange: z.enum(['topic', 'direct', 'fanout', 'headers']).optional(),
  /** Unconfirmed publishes per delivery call (changes of distinct keys). Default 256. */
  maxBatch: z.number().int().min(1).max(10_000).default(256),
  tls: z.boolean().default(false),
}).strict();
export type RabbitConfig = z.infer<typeof rabbitConfigSchema>;
export const rabbitSecretsSchema = z.object({ password: z.string().optional() }).strict();
export type RabbitSecrets = z.infer<typeof rabbitSecretsSchema>;

export const rabbitMqSinkModule: SinkModule<RabbitConfig, RabbitSecrets> = {
  kind: SinkKind.RabbitMq, config: rabbitConfigSchema as z.ZodType<RabbitConfig>, secrets: rabbitSecretsSchema, secretKeys: ['password'],
  settings: 'host, port, vhost, username, password, exchange, routingKey, declareExchange, maxBatch, tls',
  create: (c, s, o) => new RabbitMqSink(c, s, o.allowedHosts),
};

const ACCESS_REFUSED = 403;

/**
 * Whether a failed connect will not heal by retrying: the broker closed the
 * handshake with ACCESS_REFUSED (wrong user, password or vhost rights);
 * amqplib says so as `Handshake terminated by server: 403 (ACCESS-REFUSED) ...`.
 * Matched on the reply name, never on a bare 403: a socket error names the
 * port, and a refused connection to port 40329 is an outage, not a refusal.
 */
export function refusedForGood(err: unknown): boolean {
  return /\bACCESS[-_]REFUSED\b/.test(err instanceof Error ? err.message : String(err));
}

export class RabbitMqSink implements Sink {
  readonly kind = 'rabbitmq';
  readonly atomicBatches = false;
  readonly maxBatch: number;
  private conn?: ChannelModel;
  private ch?: ConfirmChannel;
  private opening?: Promise<void>;
  private returned = new Set<string>();

  constructor(private readonly cfg: RabbitConfig, private readonly secrets: RabbitSecrets, allowedHosts: readonly string[] = []) {
    if (!hostAllowed(cfg.host, allowedHosts)) throw new SinkConfigError(`RabbitMQ host ${cfg.host} is not in SINK_ALLOWED_HOSTS`);
    this.maxBatch = cfg.maxBatch;
  }

  open(): Promise<void> {
    if (this.ch) return Promise.resolve();
    this.opening ??= this.connect().finally(() => { this.opening = undefined; });
    return this.opening;
  }

  private async connect(): Promise<void> {
    const c = this.cfg;
    let conn: ChannelModel;
    try {
      conn = await amqp.connect({ protocol: c.tls ? 'amqps' : 'amqp', hostname: c.host, port: c.port, vhost: c.vhost, username: c.username, password: this.secrets.password ?? '', heartbeat: 10 });
    } catch (err) {
      const msg = `cannot connect to RabbitMQ at ${c.host}:${c.port}${c.vhost}: ${(err as Error).message}`;
      if (refusedForGood(err)) throw new SinkConfigError(msg, { cause: err });
      throw new SinkUnavailableError(msg, { cause: err });
    }
    const drop = () => { if (this.conn === conn) { this.conn = undefined; this.ch = undefined; } };
    conn.on('error', drop); conn.on('close', drop);
    try {
      const ch = await conn.createConfirmChannel();
      ch.on('error', drop); ch.on('close', drop);
      ch.on('return', (m: { properties: { messageId?: string } }) => { if (m.properties.messageId) this.returned.add(m.properties.messageId); });
      if (c.declareExchange && c.exchange) await ch.assertExchange(c.exchange, c.declareExchange, { durable: true });
      this.conn = conn; this.ch = ch;
    } catch (err) {
      await conn.close().catch(() => undefined);
      const code = (err as { code?: number }).code;
      const msg = `RabbitMQ channel setup failed: ${(err as Error).message}`;
      throw code === ACCESS_REFUSED ? new SinkConfigError(msg, { cause: err }) : new SinkUnavailableError(msg, { cause: err });
    }
  }

  private routingKey(m: SinkMessage): string {
    return this.cfg.routingKey.replaceAll('{schema}', m.schema).replaceAll('{table}', m.table).replaceAll('{op}', m.op);
  }

  async deliver(messages: SinkMessage[]): Promise<void> {
    await this.open();
    const ch = this.ch!;
    for (const m of messages) this.returned.delete(m.id);
    try {
      for (const m of messages) {
        ch.publish(this.cfg.exchange, this.routingKey(m), m.body, {
          messageId: m.id, persistent: true, mandatory: true, contentType: m.contentType, timestamp: Math.floor(Date.now() / 1000),
          headers: { [MessageHeader.Key]: m.key, [MessageHeader.Sequence]: m.sequence, [MessageHeader.Feed]: m.feed, [MessageHeader.Op]: m.op },
        });
      }
      await ch.waitForConfirms();
    } catch (err) {
      if (this.ch === ch) { this.ch = undefined; await this.conn?.close().catch(() => undefined); this.conn = undefined; }
      throw new SinkUnavailableError(`RabbitMQ did not confirm: ${(err as Error).message}`, { cause: err });
    }
    const unroutable = messages.filter((m) => this.returned.has(m.id));
    if (unroutable.length) throw new SinkUnavailableError(`RabbitMQ returned ${unroutable.length} message(s) as unroutable (no queue bound for routing key ${this.routingKey(unroutable[0]!)} on exchange "${this.cfg.exchange}")`);
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined; this.ch = undefined;
    await conn?.close().catch(() => undefined);
  }
}
