/**
 * Starts a real Tributary App (gateway + workers) in the test process on a
 * free port, against the suite's private PostgreSQL (a fresh metadata
 * database per call) and Redis (a fresh DB index-free prefix per call);
 * `workerProcesses` runs its workers as separate processes instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { App } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { waitFor } from './databases.ts';

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

/**
 * Stands for an object a `beforeAll` hook creates, so that a describe block
 * can name it before it exists: every property read goes to the object `get`
 * returns at that moment (methods bound to it). Reading it before the hook
 * ran throws.
 */
export function forwardTo<T extends object>(get: () => T | undefined, what: string): T {
  return new Proxy({} as T, {
    get(_, key) {
      // Not a thenable: returning it from an async function must not read it.
      if (key === 'then') return undefined;
      const target = get();
      if (!target) throw new Error(`${what} is not ready (read it inside a hook or a test)`);
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/**
 * `tributary worker` processes against a gateway started with
 * `{ worker: false }`, each logging to its own file under `logDir`;
 * `start` resolves once the new process's BullMQ workers are listening.
 */
export function workerProcesses(gw: TestGateway, opts: { lockMs: number; logPrefix: string }): { start(): Promise<ChildProcess>; killAll(): void; readonly logDir: string } {
  const workers: ChildProcess[] = [];
  const logDir = mkdtempSync(path.join(os.tmpdir(), opts.logPrefix));
  let started = 0;
  return {
    logDir,
    async start(): Promise<ChildProcess> {
      const n = ++started;
      const log = path.join(logDir, `worker-${n}.log`);
      const child = spawn(process.execPath, ['bin/tributary.js', 'worker'], {
        cwd: process.cwd(),
        env: {
          ...process.env,
          DATABASE_URL: gw.config.databaseUrl, REDIS_URL: gw.config.redisUrl, QUEUE_PREFIX: gw.config.queuePrefix,
          TRIBUTARY_SECRET_KEY: gw.config.secretKey!, LOG_LEVEL: 'info', WORKER_CONCURRENCY: '8', TASK_LOCK_MS: String(opts.lockMs),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out = createWriteStream(log);
      child.stdout!.pipe(out); child.stderr!.pipe(out);
      workers.push(child);
      await waitFor(async () => readFileSync(log, 'utf8'), (s) => s.includes('workers started'), 60_000, `worker ${n} ready (log ${log})`);
      return child;
    },
    killAll(): void {
      for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    },
  };
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
