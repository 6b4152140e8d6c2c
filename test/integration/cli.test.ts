/**
 * The `tributary` command line as a user runs it: real `node bin/tributary.js`
 * child processes against the suite's private PostgreSQL and Redis.
 * Startup failures must end as one stderr line and a non-zero exit; `start`
 * must answer, print where to go next, and exit 0 on SIGTERM within 10 s.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/devtools/private-servers.ts';
import { VERSION } from '../../src/app.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/tributary.js');
const PASSWORD = 's3cretpw';

interface Done { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

/** A database URL on the private PostgreSQL (trust auth: the password is accepted and ignored). */
function dbUrl(name: string, password?: string): string {
  const u = new URL(inject('pgUrl'));
  u.pathname = `/${name}`;
  if (password) { u.username = u.username || 'postgres'; u.password = password; }
  return u.toString();
}

function uid(): string { return randomBytes(4).toString('hex'); }

/** Environment for a child: nothing inherited but what Node needs, plus the given settings. */
async function baseEnv(over: Record<string, string> = {}): Promise<Record<string, string>> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'];
  const env: Record<string, string> = {};
  for (const k of keep) if (process.env[k]) env[k] = process.env[k]!;
  return {
    ...env,
    DATABASE_URL: dbUrl(`tributary_cli_${uid()}`),
    REDIS_URL: inject('redisUrl'),
    PORT: String(await freePort()),
    TRIBUTARY_SECRET_KEY: 'cli-test-secret-key-0123456789',
    QUEUE_PREFIX: `cli${uid()}`,
    LOG_LEVEL: 'info',
    ...over,
  };
}

const children = new Set<ReturnType<typeof spawn>>();

/** Run `tributary <args>` to completion. */
function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Done> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`tributary ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

interface Running {
  base: string;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then wait for exit; `ms` is the time from the signal to the exit. */
  stop(): Promise<Done>;
}

/** Spawn `tributary start` and wait until it prints its banner (or fail with its stderr). */
function startCli(env: Record<string, string>, args: string[] = ['start']): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    let ready = false;
    let exited: Done | undefined;
    const exitWaiters: ((d: Done) => void)[] = [];
    let termAt = 0;
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`start did not print its banner within 60 s\n${stdout}\n${stderr}`)); }, 60_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!ready && /GraphiQL:\s+http:\/\/\S+\/graphiql/.test(stdout) && stdout.includes('runNoop')) {
        ready = true;
        clearTimeout(timer);
        resolve({
          base: `http://127.0.0.1:${env.PORT}`,
          stdout: () => stdout,
          stderr: () => stderr,
          stop: () => {
            if (exited) return Promise.resolve(exited);
            termAt = Date.now();
            const p = new Promise<Done>((res) => exitWaiters.push(res));
            child.kill('SIGTERM');
            return p;
          },
        });
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code, signal) => {
      children.delete(child);
      exited = { code, signal, stdout, stderr, ms: termAt ? Date.now() - termAt : -1 };
      for (const w of exitWaiters) w(exited);
      if (!ready) { clearTimeout(timer); reject(new Error(`start exited (${code ?? signal}) before it was ready\n${stdout}\n${stderr}`)); }
    });
  });
}

async function gqlPost(base: string, query: string, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: await res.json() };
}

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: dbUrl('postgres') });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

/** A user-facing failure: exactly one stderr line, no stack trace. */
function expectOneLine(d: Done, pattern: RegExp): void {
  const lines = d.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, d.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(d.stderr).not.toContain('    at ');
  expect(d.stdout).not.toContain('    at ');
}

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

describe('tributary start', () => {
  const dbName = `tributary_cli_start_${uid()}`;
  let env: Record<string, string>;
  let app: Running;
  let stopped: Done | undefined;

  beforeAll(async () => {
    // A password the private server (trust auth) ignores: it must never reach a log line.
    env = await baseEnv({ DATABASE_URL: dbUrl(dbName, PASSWORD) });
    expect(await databaseExists(dbName)).toBe(false);
    app = await startCli(env);
  });

  afterAll(async () => { await app?.stop(); });

  it('answers { version } over HTTP at /graphql', async () => {
    const r = await gqlPost(app.base, '{ version }');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ data: { version: VERSION } });
  });

  it('prints the GraphiQL URL and the first-job hint on stdout', async () => {
    const out = app.stdout();
    expect(out).toContain(`GraphiQL:  http://127.0.0.1:${env.PORT}/graphiql`);
    expect(out).toContain('mutation { runNoop(steps: 5, stepMs: 300) { taskId } }');
    expect(out).toContain('subscription { taskEvents(taskId: "<taskId>")');
    const page = await fetch(`${app.base}/graphiql`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('GraphiQL');
  });

  it('is ready', async () => {
    const res = await fetch(`${app.base}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });

  it('created the missing metadata database', async () => {
    expect(await databaseExists(dbName)).toBe(true);
  });

  it('exits 0 within 10 s of SIGTERM', async () => {
    stopped = await app.stop();
    console.info(`tributary start: exit ${stopped.code} ${stopped.ms} ms after SIGTERM`);
    expect(stopped.signal).toBeNull();
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(10_000);
    expect(stopped.stdout).toContain('shutting down');
  });

  it('never logged the database password', () => {
    expect(stopped).toBeDefined();
    // The logs are there (so the check means something), just without the password.
    expect(stopped!.stdout).toContain('gateway listening');
    expect(stopped!.stdout).not.toContain(PASSWORD);
    expect(stopped!.stderr).not.toContain(PASSWORD);
  });
});

describe('startup failures: one stderr line, no stack trace', () => {
  it('unreachable Redis', async () => {
    const d = await runCli(['start'], await baseEnv({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` }));
    expect(d.code).not.toBe(0);
    expect(d.code).not.toBeNull();
    expectOneLine(d, /Redis at 127\.0\.0\.1:\d+ is unreachable/);
    expect(d.ms).toBeLessThan(15_000);
  });

  it('unreachable PostgreSQL (and the password stays out of the message)', async () => {
    const port = await freePort();
    const d = await runCli(['start'], await baseEnv({ DATABASE_URL: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/tributary` }));
    expect(d.code).not.toBe(0);
    expect(d.code).not.toBeNull();
    expectOneLine(d, new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${port}/tributary is unreachable`));
    expect(d.stderr + d.stdout).not.toContain(PASSWORD);
    expect(d.ms).toBeLessThan(15_000);
  });

  it('invalid PORT: exit 2 naming the variable', async () => {
    const d = await runCli(['start'], await baseEnv({ PORT: 'abc' }));
    expect(d.code).toBe(2);
    expectOneLine(d, /^tributary: invalid configuration: PORT: /);
  });

  it('invalid LOG_LEVEL: exit 2 naming the variable', async () => {
    const d = await runCli(['start'], await baseEnv({ LOG_LEVEL: 'loud' }));
    expect(d.code).toBe(2);
    expectOneLine(d, /^tributary: invalid configuration: LOG_LEVEL: /);
  });
});

describe('migrate, tokens and HOST=0.0.0.0', () => {
  let env: Record<string, string>;
  let token = '';
  let tokenId = '';

  beforeAll(async () => { env = await baseEnv(); });

  it('migrate twice: the second run is up to date', async () => {
    const first = await runCli(['migrate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^applied .+; schema version \d+\n$/);
    const second = await runCli(['migrate'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^up to date; schema version \d+\n$/);
  });

  it('refuses HOST=0.0.0.0 while no token exists', async () => {
    const d = await runCli(['start'], { ...env, HOST: '0.0.0.0' });
    expect(d.code).not.toBe(0);
    expect(d.code).not.toBeNull();
    expectOneLine(d, /refusing to listen on 0\.0\.0\.0 with no API token defined/);
  });

  it('token list with no tokens says open mode', async () => {
    const d = await runCli(['token', 'list'], env);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain('no tokens');
  });

  it('token create prints the secret once', async () => {
    const d = await runCli(['token', 'create', '--role', 'admin', '--name', 'ci'], env);
    expect(d.code, d.stderr).toBe(0);
    token = d.stdout.trim();
    expect(token).not.toContain('\n');
    expect(token.length).toBeGreaterThanOrEqual(20);
    const m = /created admin token (\S+) \(ci\)/.exec(d.stderr);
    expect(m, d.stderr).not.toBeNull();
    tokenId = m![1]!;
  });

  it('starts on HOST=0.0.0.0 once a token exists, and requires it', async () => {
    const app = await startCli({ ...env, HOST: '0.0.0.0' });
    try {
      expect(app.stdout()).toContain(`GraphiQL:  http://0.0.0.0:${env.PORT}/graphiql`);
      expect((await fetch(`${app.base}/ready`)).status).toBe(200);
      const anonymous = await gqlPost(app.base, '{ version }');
      expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      const authed = await gqlPost(app.base, '{ version }', token);
      expect(authed.body).toEqual({ data: { version: VERSION } });
    } finally {
      const d = await app.stop();
      expect(d.code).toBe(0);
      expect(d.stdout + d.stderr).not.toContain(token);
    }
  });

  it('token list shows the token without its secret', async () => {
    const d = await runCli(['token', 'list'], env);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain(tokenId);
    expect(d.stdout).toMatch(/admin\s+ci/);
    expect(d.stdout).not.toContain(token);
    expect(d.stdout).not.toContain('REVOKED');
  });

  it('token revoke, then list shows it revoked (still without the secret)', async () => {
    const r = await runCli(['token', 'revoke', tokenId], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`revoked ${tokenId}`);
    const l = await runCli(['token', 'list'], env);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toMatch(new RegExp(`${tokenId}.*REVOKED`));
    expect(l.stdout).not.toContain(token);
  });
});
