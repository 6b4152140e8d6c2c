/**
 * Sink modules by kind. Each entry is everything the rest of Tributary needs
 * to know about a kind: how to validate its config, which of its settings are
 * secrets (stored encrypted, never returned), and how to build it. A Kafka
 * sink is one more module and one more entry here.
 */
import type { z } from 'zod';
import { SinkFormat, SinkKind } from '../../domain/sink-model.ts';
import { natsConfigSchema, natsSecretsSchema, NatsSink } from './nats.sink.ts';
import { rabbitConfigSchema, rabbitSecretsSchema, RabbitMqSink } from './rabbitmq.sink.ts';
import type { Sink } from './sink.ts';
import { webhookConfigSchema, webhookSecretsSchema, WebhookSink } from './webhook.sink.ts';

export interface SinkModule {
  config: z.ZodType<Record<string, unknown>>;
  secrets: z.ZodType<Record<string, unknown>>;
  /** Keys of the input config that are secrets: split off before the config is stored. */
  secretKeys: readonly string[];
  create(config: Record<string, unknown>, secrets: Record<string, unknown>, o: { format: SinkFormat; allowedHosts: readonly string[] }): Sink;
}

export const SINK_MODULES: Record<SinkKind, SinkModule> = {
  [SinkKind.Webhook]: {
    config: webhookConfigSchema as never, secrets: webhookSecretsSchema as never, secretKeys: ['secret', 'authorization'],
    create: (c, s, o) => new WebhookSink(c as never, s as never, o.format, o.allowedHosts),
  },
  [SinkKind.Nats]: {
    config: natsConfigSchema as never, secrets: natsSecretsSchema as never, secretKeys: ['password', 'token'],
    create: (c, s, o) => new NatsSink(c as never, s as never, o.allowedHosts),
  },
  [SinkKind.RabbitMq]: {
    config: rabbitConfigSchema as never, secrets: rabbitSecretsSchema as never, secretKeys: ['password'],
    create: (c, s, o) => new RabbitMqSink(c as never, s as never, o.allowedHosts),
  },
};

export class SinkConfigInvalidError extends Error {
  override readonly name = 'SinkConfigInvalidError';
}

/** Split `input` into validated public config and secrets; throws SinkConfigInvalidError naming the field. */
export function parseSinkConfig(kind: SinkKind, input: Record<string, unknown>): { config: Record<string, unknown>; secrets: Record<string, unknown> } {
  const mod = SINK_MODULES[kind];
  const pub: Record<string, unknown> = {}; const sec: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input ?? {})) (mod.secretKeys.includes(k) ? sec : pub)[k] = v;
  const c = mod.config.safeParse(pub);
  if (!c.success) throw new SinkConfigInvalidError(`config: ${c.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const s = mod.secrets.safeParse(sec);
  if (!s.success) throw new SinkConfigInvalidError(`config: ${s.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { config: c.data, secrets: s.data };
}

export function createSinkClient(kind: SinkKind, config: Record<string, unknown>, secrets: Record<string, unknown>, o: { format: SinkFormat; allowedHosts: readonly string[] }): Sink {
  const mod = SINK_MODULES[kind];
  return mod.create(mod.config.parse(config), mod.secrets.parse(secrets), o);
}
