/**
 * The sink kinds Tributary knows: one line per module. Everything else about
 * a kind (how to validate its config, which settings are secrets, how to
 * build its client, what the GraphQL description lists) comes from the
 * module's `SinkModule`. A Kafka sink is `kafka.sink.ts` exporting
 * `kafkaSinkModule`, one line here, and `Kafka = 'kafka'` in the domain's
 * SinkKind (docs/sinks.md, "Adding a sink kind").
 */
import { SinkKind, type SinkFormat } from '../../domain/sink-model.ts';
import { natsSinkModule } from './nats.sink.ts';
import { rabbitMqSinkModule } from './rabbitmq.sink.ts';
import { SinkConfigError, type Sink, type SinkModule } from './sink.ts';
import { webhookSinkModule } from './webhook.sink.ts';

const MODULES: readonly SinkModule<any, any>[] = [
  webhookSinkModule,
  natsSinkModule,
  rabbitMqSinkModule,
];

/** The modules by kind; every SinkKind has exactly one (checked when this file loads). */
export const SINK_MODULES: Readonly<Record<SinkKind, SinkModule>> = (() => {
  const byKind = new Map<string, SinkModule>();
  for (const m of MODULES) {
    if (byKind.has(m.kind)) throw new Error(`two sink modules for kind ${m.kind}`);
    byKind.set(m.kind, m);
  }
  const missing = Object.values(SinkKind).filter((k) => !byKind.has(k));
  if (missing.length) throw new Error(`no sink module for kind(s) ${missing.join(', ')}: add it to MODULES in sink-registry.ts`);
  const extra = [...byKind.keys()].filter((k) => !(Object.values(SinkKind) as string[]).includes(k));
  if (extra.length) throw new Error(`sink module(s) for unknown kind(s) ${extra.join(', ')}: add them to SinkKind (domain/sink-model.ts)`);
  return Object.fromEntries(byKind) as Record<SinkKind, SinkModule>;
})();

/** The module of `kind`; a kind no module serves (a stored row from a newer version) is a config error. */
export function sinkModule(kind: SinkKind | string): SinkModule {
  const mod = (SINK_MODULES as Record<string, SinkModule | undefined>)[kind];
  if (!mod) throw new SinkConfigError(`unknown sink kind "${kind}"`);
  return mod;
}

export class SinkConfigInvalidError extends Error {
  override readonly name = 'SinkConfigInvalidError';
}

/** Split `input` into validated public config and secrets; throws SinkConfigInvalidError naming the field. */
export function parseSinkConfig(kind: SinkKind, input: Record<string, unknown>): { config: Record<string, unknown>; secrets: Record<string, unknown> } {
  const mod = sinkModule(kind);
  const pub: Record<string, unknown> = {}; const sec: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input ?? {})) (mod.secretKeys.includes(k) ? sec : pub)[k] = v;
  const c = mod.config.safeParse(pub);
  if (!c.success) throw new SinkConfigInvalidError(`config: ${c.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const s = mod.secrets.safeParse(sec);
  if (!s.success) throw new SinkConfigInvalidError(`config: ${s.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { config: c.data, secrets: s.data };
}

export function createSinkClient(kind: SinkKind, config: Record<string, unknown>, secrets: Record<string, unknown>, o: { format: SinkFormat; allowedHosts: readonly string[] }): Sink {
  const mod = sinkModule(kind);
  return mod.create(mod.config.parse(config), mod.secrets.parse(secrets), o);
}

/** "WEBHOOK: url, ... NATS: ... secret, ... and token are stored encrypted ..." for the GraphQL description of CreateSinkInput.config. */
export function sinkSettingsDoc(): string {
  const secrets = [...new Set(MODULES.flatMap((m) => m.secretKeys))];
  const list = secrets.length > 1 ? `${secrets.slice(0, -1).join(', ')} and ${secrets.at(-1)}` : secrets.join('');
  return `${MODULES.map((m) => `${m.kind.toUpperCase()}: ${m.settings}. `).join('')}${list} are stored encrypted and never returned.`;
}
