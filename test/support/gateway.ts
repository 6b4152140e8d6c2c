/**
 * Starts a real Tributary App (gateway + workers) in the test process on a
 * free port, against the suite's private PostgreSQL (a fresh metadata
 * database per call) and Redis (a fresh DB index-free prefix per call).
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { App } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';

export interface TestGateway {
  app: App;
  url: string;
  wsUrl: string;
  config: Config;
  close(): Promise<void>;
}

export function metadataUrl(name: string): string {
  const u = new URL(inject('pgUrl'));
  u.pathname = `/${name}`;
  return u.toString();
}

export async function startTestGateway(overrides: Partial<Config> = {}, opts: { serve?: boolean; worker?: boolean; logger?: Logger } = {}): Promise<TestGateway> {
  const id = randomBytes(4).toString('hex');
  const config = loadConfig({}, {
    port: 0,
    host: '127.0.0.1',
    databaseUrl: metadataUrl(`tributary_test_${id}`),
    redisUrl: inject('redisUrl'),
    queuePrefix: `t${id}`,
    secretKey: 'test-secret-key-0123456789',
    logLevel: 'silent',
    workerConcurrency: 8,
    // Suites poll hard; the rate limit has its own tests (test/integration/security/limits.test.ts).
    rateLimitPerSecond: 0,
    ...overrides,
  } as never);
  const app = new App({ config, serve: opts.serve ?? true, worker: opts.worker ?? true, logger: opts.logger ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
  await app.start();
  const addr = app.address();
  const url = addr ? `http://127.0.0.1:${addr.port}` : '';
  return { app, url, wsUrl: url.replace('http', 'ws') + '/graphql', config, close: () => app.close() };
}

/** POST a GraphQL operation; returns status and parsed body. */
export async function gql<T = any>(url: string, query: string, variables?: Record<string, unknown>, token?: string): Promise<{ status: number; body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] } }> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as never };
}
