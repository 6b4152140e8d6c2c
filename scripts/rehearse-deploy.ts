/**
 * A rehearsal of compose.yaml without a Docker engine:
 *   node bin/run-ts.js scripts/rehearse-deploy.ts
 *
 * 1. Builds the image's /app by hand in a temp dir, as the Dockerfile does:
 *    the files it COPYs, then `npm ci --omit=dev` (REHEARSE_APP_DIR=<dir>
 *    reuses one built before), and runs `node bin/tributary.js --help` there.
 * 2. Starts private PostgreSQL (wal_level=logical) and Redis with AOF, runs the
 *    compose `init` service's exact command (read from compose.yaml with
 *    PyYAML) twice: migrations plus a bootstrap admin token, then "exists already".
 * 3. Runs the compose topology from that dir as separate processes: gateway-1
 *    and gateway-2 (`serve`, on 127.0.0.2:8190 and 127.0.0.3:8190), two
 *    `worker`s, and nginx with deploy/nginx/nginx.conf unchanged (the service
 *    names resolve to those addresses in a private mount namespace).
 * 4. Through the proxy on :8080: /ready, GraphQL with the token (four nodes
 *    seen), a noop task run by a worker and followed over graphql-ws
 *    (WebSocket upgrade through nginx), the queue dashboard (?token= -> cookie
 *    -> page), then gateway-1 stopped and GraphQL still answering via gateway-2.
 * Everything it starts is stopped at the end. Exits 1 on the first failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startPostgres, startRedis, type PrivateServer } from '../src/devtools/private-servers.ts';

const ROOT = process.cwd();
const say = (s: string) => process.stdout.write(`rehearse: ${s}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const procs: { name: string; proc: ChildProcess }[] = [];
const servers: PrivateServer[] = [];
const tmps: string[] = [];

function check(cond: unknown, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
  say(`ok: ${what}`);
}

function buildApp(): string {
  if (process.env.REHEARSE_APP_DIR) return process.env.REHEARSE_APP_DIR;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-app-'));
  tmps.push(dir);
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'bin', 'src', 'schema']) cpSync(path.join(ROOT, f), path.join(dir, f), { recursive: true });
  say(`npm ci --omit=dev in ${dir} ...`);
  const r = spawnSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NODE_ENV: 'production' } });
  if (r.status !== 0) throw new Error(`npm ci --omit=dev failed: ${r.stderr.slice(-2000)}`);
  return dir;
}

function composeServices(): Record<string, { command?: string[] | string; environment?: Record<string, string> }> {
  const py = 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open("compose.yaml"))["services"]))';
  const r = spawnSync('python3', ['-c', py], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`reading compose.yaml needs PyYAML: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function start(name: string, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (b: Buffer) => { tail = (tail + b.toString()).slice(-3000); };
  proc.stdout!.on('data', keep); proc.stderr!.on('data', keep);
  proc.on('exit', (code, sig) => { if (code && code !== 0) say(`${name} exited ${code ?? sig}: ${tail.slice(-800)}`); });
  procs.push({ name, proc });
  return proc;
}

async function waitHttp(url: string, ok: (r: Response) => boolean = (r) => r.ok, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(url).catch(() => undefined);
    if (r && ok(r)) { await r.arrayBuffer(); return; }
    if (Date.now() > deadline) throw new Error(`${url} not ready in ${timeoutMs} ms`);
    await sleep(300);
  }
}

async function gql<T>(base: string, token: string, query: string): Promise<T> {
  const r = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query }) });
  const body = (await r.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(`GraphQL: ${body.errors[0]!.message}`);
  return body.data as T;
}

async function main(): Promise<void> {
  const app = buildApp();
  const env = { ...process.env, NODE_ENV: 'production' };
  const help = spawnSync(process.execPath, ['bin/tributary.js', '--help'], { cwd: app, encoding: 'utf8', env });
  check(help.status === 0 && /serve \[options\]/.test(help.stdout), `production-only node_modules (${app}): node bin/tributary.js --help`);

  const [pgs, redis] = await Promise.all([startPostgres(), startRedis({ appendonly: true })]);
  servers.push(pgs, redis);
  const dbUrl = new URL(pgs.url); dbUrl.pathname = '/tributary';
  const common = { ...env, DATABASE_URL: dbUrl.toString(), REDIS_URL: redis.url, TRIBUTARY_SECRET_KEY: 'rehearsal-secret-key-0123456789', LOG_LEVEL: 'warn' };
  const services = composeServices();
  const initCmd = services.init!.command as string[];
  const runInit = () => spawnSync('sh', ['-c', initCmd[0]!], { cwd: app, env: common, encoding: 'utf8' });
  const first = runInit();
  const token = /^(trb_\S+)$/m.exec(first.stdout)?.[1];
  check(first.status === 0 && token, 'compose init command: migrations and a bootstrap admin token');
  const second = runInit();
  check(second.status === 0 && /exists already/.test(second.stdout) && !/trb_/.test(second.stdout), 'compose init command again: no second token');

  const gateways = { 'gateway-1': '127.0.0.2', 'gateway-2': '127.0.0.3' };
  for (const [name, host] of Object.entries(gateways)) start(name, process.execPath, ['bin/tributary.js', 'serve'], { cwd: app, env: { ...common, HOST: host, PORT: '8190' } });
  for (const n of [1, 2]) start(`worker-${n}`, process.execPath, ['bin/tributary.js', 'worker'], { cwd: app, env: { ...common, WORKER_CONCURRENCY: '4' } });
  for (const host of Object.values(gateways)) await waitHttp(`http://${host}:8190/ready`);
  say('gateways ready');

  const hosts = path.join(mkdtempSync(path.join(os.tmpdir(), 'tributary-hosts-')), 'hosts');
  tmps.push(path.dirname(hosts));
  writeFileSync(hosts, `127.0.0.1 localhost\n${Object.entries(gateways).map(([n, h]) => `${h} ${n}`).join('\n')}\n`);
  const conf = path.join(ROOT, 'deploy/nginx/nginx.conf');
  // Its logs go to a file: nginx cannot open /dev/stdout when that is a socket (Node's pipes are socketpairs).
  const nginxLog = path.join(path.dirname(hosts), 'nginx.log');
  start('nginx', 'unshare', ['-m', 'sh', '-c', `mount --bind ${hosts} /etc/hosts && exec nginx -c ${conf} -g 'daemon off;' > ${nginxLog} 2>&1`]);
  const proxy = 'http://127.0.0.1:8080';
  await waitHttp(`${proxy}/ready`, (r) => r.status === 200, 20_000);
  check(true, 'nginx (deploy/nginx/nginx.conf) proxies /ready to the gateways');

  const nodes = async () => (await gql<{ nodes: { edges: { node: { role: string; id: string } }[] } }>(proxy, token!, '{ nodes(first: 50) { edges { node { id role } } } }')).nodes.edges.map((e) => e.node);
  let seen: { role: string; id: string }[] = [];
  for (let i = 0; i < 30 && seen.length < 4; i++) { seen = await nodes(); if (seen.length < 4) await sleep(500); }
  check(seen.filter((n) => n.role === 'serve').length === 2 && seen.filter((n) => n.role === 'worker').length === 2, `GraphQL through the proxy with the token: nodes = ${seen.map((n) => n.role).sort().join(', ')}`);
  const anon = await fetch(`${proxy}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ version }"}' });
  check(anon.status === 401, 'GraphQL without a token: 401');

  const { runNoop } = await gql<{ runNoop: { taskId: string } }>(proxy, token!, 'mutation { runNoop(steps: 3, stepMs: 200) { taskId } }');
  const client = createClient({ url: 'ws://127.0.0.1:8080/graphql', webSocketImpl: WebSocket, lazy: true, retryAttempts: 0, connectionParams: { authorization: `Bearer ${token}` } });
  const done = await new Promise<{ state: string; nodeId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no completed event over graphql-ws within 30 s')), 30_000);
    const dispose = client.subscribe<{ taskEvents: { state: string; nodeId: string } }>(
      { query: `subscription { taskEvents(taskId: "${runNoop.taskId}") { state nodeId } }` },
      {
        next: (v) => { const e = v.data?.taskEvents; if (e?.state === 'completed') { clearTimeout(timer); dispose(); resolve(e); } },
        error: (e) => { clearTimeout(timer); reject(e instanceof Error ? e : new Error(JSON.stringify(e))); },
        complete: () => undefined,
      });
  });
  await client.dispose();
  const workerIds = seen.filter((n) => n.role === 'worker').map((n) => n.id);
  check(workerIds.includes(done.nodeId), 'noop task run by a worker, followed over graphql-ws through the proxy (WebSocket upgrade)');

  const dash = await fetch(`${proxy}/admin/queues?token=${encodeURIComponent(token!)}`, { redirect: 'manual' });
  const cookie = (dash.headers.get('set-cookie') ?? '').split(';')[0]!;
  const page = await fetch(`${proxy}/admin/queues`, { headers: { cookie } });
  const api = await fetch(`${proxy}/admin/queues/api/queues`, { headers: { cookie } });
  const names = ((await api.json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
  check(dash.status === 303 && page.status === 200 && names.includes('tasks'), 'queue dashboard through the proxy: ?token= -> cookie -> page and API list `tasks`');

  const g1 = procs.find((p) => p.name === 'gateway-1')!.proc;
  g1.kill('SIGTERM');
  await new Promise((r) => g1.once('exit', r));
  let okAfter = 0;
  for (let i = 0; i < 10; i++) { await gql(proxy, token!, '{ version }').then(() => okAfter++, () => undefined); }
  check(okAfter === 10, 'gateway-1 stopped (SIGTERM): 10 of 10 GraphQL requests through the proxy still answered');
}

async function cleanup(): Promise<void> {
  for (const { proc } of procs.reverse()) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  await Promise.all(procs.map(({ proc }) => (proc.exitCode === null && proc.signalCode === null ? new Promise((r) => { const t = setTimeout(() => { proc.kill('SIGKILL'); r(undefined); }, 20_000); proc.once('exit', () => { clearTimeout(t); r(undefined); }); }) : undefined)));
  await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
  for (const t of tmps) if (!process.env.REHEARSE_APP_DIR || t !== process.env.REHEARSE_APP_DIR) rmSync(t, { recursive: true, force: true });
}

main().then(async () => { await cleanup(); say('all checks passed'); process.exit(0); },
  async (err) => { say(`FAILED: ${(err as Error).message}`); await cleanup(); process.exit(1); });
