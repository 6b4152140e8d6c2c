/** The sink registry: one module per kind, secrets split off by the module's own list, unknown kinds refused. */
import { describe, expect, it } from 'vitest';
import { SinkFormat, SinkKind } from '../../../src/domain/sink-model.ts';
import { SinkConfigError } from '../../../src/replication/sinks/sink.ts';
import { createSinkClient, parseSinkConfig, SINK_MODULES, sinkModule, sinkSettingsDoc } from '../../../src/replication/sinks/sink-registry.ts';

const minimal: Record<SinkKind, Record<string, unknown>> = {
  [SinkKind.Webhook]: { url: 'http://127.0.0.1:9/hook' },
  [SinkKind.Nats]: { servers: 'nats://127.0.0.1:4222' },
  [SinkKind.RabbitMq]: { host: '127.0.0.1' },
};

describe('sink registry', () => {
  it('has exactly one module per SinkKind, keyed by the kind it declares', () => {
    expect(Object.keys(SINK_MODULES).sort()).toEqual(Object.values(SinkKind).sort());
    for (const [kind, mod] of Object.entries(SINK_MODULES)) expect(mod.kind).toBe(kind);
  });

  it.each(Object.values(SinkKind))('%s: secret keys are split off into the secrets schema and the client is built without connecting', (kind) => {
    const mod = SINK_MODULES[kind];
    const input = { ...minimal[kind], ...Object.fromEntries(mod.secretKeys.map((k) => [k, `s3cret-${k}`])) };
    const { config, secrets } = parseSinkConfig(kind, input);
    for (const k of mod.secretKeys) { expect(config).not.toHaveProperty(k); expect(secrets[k]).toBe(`s3cret-${k}`); }
    // Unknown settings are refused (a misspelt secret must not be stored in clear).
    expect(() => parseSinkConfig(kind, { ...minimal[kind], pasword: 'x' })).toThrow(/pasword|Unrecognized/);
    const sink = createSinkClient(kind, config, secrets, { format: SinkFormat.Json, allowedHosts: [] });
    expect(sink.maxBatch).toBeGreaterThan(0);
    expect(typeof sink.atomicBatches).toBe('boolean');
  });

  it('refuses a kind no module serves as a config error (a row written by a newer version)', () => {
    expect(() => sinkModule('kafka')).toThrow(SinkConfigError);
    expect(() => createSinkClient('kafka' as SinkKind, {}, {}, { format: SinkFormat.Json, allowedHosts: [] })).toThrow(/unknown sink kind "kafka"/);
  });

  it('documents every kind and every secret for the GraphQL config description', () => {
    const doc = sinkSettingsDoc();
    for (const kind of Object.values(SinkKind)) expect(doc).toContain(`${kind.toUpperCase()}: ${SINK_MODULES[kind].settings}.`);
    expect(doc).toMatch(/secret, authorization, password and token are stored encrypted and never returned\.$/);
  });
});
