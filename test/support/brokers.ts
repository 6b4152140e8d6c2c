/**
 * Brokers and a webhook receiver for the sink suites: a private NATS server
 * with JetStream (its own port and store directory, killable and
 * restartable), a private RabbitMQ node (its own port, Erlang node name and
 * data directory, killable and restartable), a private vhost on the
 * machine's RabbitMQ (127.0.0.1:5672, guest/guest), and a local HTTP
 * receiver whose answers a test can steer.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { connect, AckPolicy, DeliverPolicy, type JsMsg } from 'nats';
import { freePort } from '../../src/devtools/private-servers.ts';

export interface PrivateNats {
  port: number;
  url: string;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function waitPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((r) => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); }); s.on('error', () => r(false)); });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on port ${port}`);
}

/** nats-server -js on a free port; restart() keeps the port and the JetStream store (file storage survives a SIGKILL). */
export async function startNats(): Promise<PrivateNats> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-nats-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('/usr/sbin/nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
    await waitPort(port);
  };
  const kill = async () => {
    const c = child; child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = once(c, 'exit'); c.kill('SIGKILL'); await exited;
  };
  await start();
  return { port, url: `nats://127.0.0.1:${port}`, kill, restart: start, stop: async () => { await kill(); rmSync(dir, { recursive: true, force: true }); } };
}


export interface PrivateRabbitMq {
  port: number;
  /** Erlang node name, `tributary-test-<port>@localhost`. */
  nodename: string;
  /** Data, logs, config and the Erlang cookie (HOME) of this node. */
  dir: string;
  /** The node's beam.smp process id while it runs. */
  pid(): number | undefined;
  /** SIGSTOP the node: connections stay open and publishes go unconfirmed (a hung broker); kill() or stop() ends it. */
  freeze(): void;
  /** SIGKILL the node (and its port helpers), as a crash would; resolves once the AMQP port is closed. */
  kill(): Promise<void>;
  /** Start again on the same port, node name and data directory (durable queues and persistent messages survive a kill). */
  restart(): Promise<void>;
  /** Stop (SIGTERM, then SIGKILL after 15 s) and remove the directory. Idempotent. */
  stop(): Promise<void>;
  /** The last lines of the node's own log (for a failing test's message). */
  logTail(lines?: number): string;
}

const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

/** Every process below `pid` (beam.smp's erl_child_setup, inet_gethost, the disk monitor's sh). */
function descendants(pid: number): number[] {
  const all = [pid];
  for (let k = 0; k < all.length; k++) {
    const r = spawnSync('pgrep', ['-P', String(all[k])], { encoding: 'utf8' });
    for (const line of r.stdout.split('\n')) if (line.trim()) all.push(Number(line.trim()));
  }
  return all;
}

/** The Erlang VM below the rabbitmq-server script (which traps signals and waits for it). */
function beamOf(pid: number): number | undefined {
  return descendants(pid).find((p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'beam.smp'; } catch { return false; } });
}

async function portClosed(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((r) => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); }); s.on('error', () => r(false)); });
    if (!open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} still open`);
}

/**
 * A RabbitMQ node of its own, from the machine's rabbitmq-server (Debian's,
 * run directly rather than through the su wrapper in /usr/sbin): AMQP on a
 * free loopback port, distribution on another, no plugins (so no management
 * listener), guest/guest, and everything it writes (mnesia, logs, config, the
 * Erlang cookie in HOME) under one temporary directory. The machine's own
 * node (rabbit@localhost on 5672) is not touched; both register with the
 * machine's epmd. A boot takes about 5 s.
 */
export async function startRabbitMq(): Promise<PrivateRabbitMq> {
  if (!existsSync(RABBITMQ_SERVER)) throw new Error(`the RabbitMQ restart suites need rabbitmq-server (${RABBITMQ_SERVER}): apt-get install rabbitmq-server`);
  const port = await freePort();
  let distPort = await freePort();
  while (distPort === port) distPort = await freePort();
  const nodename = `tributary-test-${port}@localhost`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-rabbitmq-'));
  mkdirSync(path.join(dir, 'mnesia')); mkdirSync(path.join(dir, 'log'));
  writeFileSync(path.join(dir, 'enabled_plugins'), '');
  // Keeps /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost) out of this node.
  writeFileSync(path.join(dir, 'rabbitmq-env.conf'), '');
  writeFileSync(path.join(dir, 'rabbitmq.conf'), [
    `listeners.tcp.1 = 127.0.0.1:${port}`,
    // A test machine's /tmp can be short of space; the default 50 MB alarm would block publishers.
    'disk_free_limit.absolute = 5MB',
    '',
  ].join('\n'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, LANG: 'C.UTF-8', HOME: dir,
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_NODENAME: nodename, RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1', RABBITMQ_NODE_PORT: String(port), RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'), RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'), RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'), RABBITMQ_PLUGINS_EXPAND_DIR: path.join(dir, 'plugins-expand'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  let child: ChildProcess | undefined;
  let beam: number | undefined;
  // A test process that dies without its afterAll must not leave the node behind.
  const onExit = () => { if (child?.pid) for (const p of descendants(child.pid)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } } };
  process.once('exit', onExit);

  const start = async () => {
    const fd = openSync(path.join(dir, 'server.out'), 'a');
    // child.pid is the rabbitmq-server script; it runs erl (beam.smp) as its child and waits for it.
    const c = spawn(RABBITMQ_SERVER, [], { env, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    child = c;
    let exited: number | null = null;
    c.once('exit', (code) => { exited = code ?? -1; });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (exited !== null) throw new Error(`rabbitmq-server (${nodename}) exited with ${exited} before listening; see ${dir}/server.out`);
      const ok = await amqp.connect({ hostname: '127.0.0.1', port, username: 'guest', password: 'guest' })
        .then(async (conn) => { await conn.close(); return true; }, () => false);
      if (ok) { beam = beamOf(c.pid!); return; }
      if (Date.now() > deadline) throw new Error(`rabbitmq-server (${nodename}) did not accept AMQP on ${port} within 60 s; see ${dir}/server.out`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const kill = async () => {
    const c = child; child = undefined; beam = undefined;
    if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    for (const p of descendants(c.pid)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    await exited;
    await portClosed(port);
  };
  let stopping: Promise<void> | undefined;
  const stop = () => stopping ??= (async () => {
    const c = child;
    if (c?.pid && c.exitCode === null && c.signalCode === null) {
      const family = descendants(c.pid);
      const exited = once(c, 'exit');
      const timer = setTimeout(() => { void kill(); }, 15_000);
      // The script traps TERM and stops the node cleanly (rabbitmqctl stop); a frozen node is let go on first.
      try { if (beam) process.kill(beam, 'SIGCONT'); process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ }
      await exited;
      clearTimeout(timer);
      // erl_child_setup and its helpers end with the node; make sure.
      for (const p of family.slice(1)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    }
    child = undefined; beam = undefined;
    process.removeListener('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  })();
  const restart = async () => { await kill(); await start(); };
  try { await start(); } catch (err) { await kill().catch(() => undefined); await stop(); throw err; }
  const freeze = () => { if (beam) process.kill(beam, 'SIGSTOP'); };
  const logTail = (lines = 40) => {
    try {
      const logs = readdirSync(path.join(dir, 'log')).filter((f) => f.endsWith('.log'));
      return logs.map((f) => `--- ${f}\n${readFileSync(path.join(dir, 'log', f), 'utf8').split('\n').slice(-lines).join('\n')}`).join('\n');
    } catch (err) { return `(no log: ${(err as Error).message})`; }
  };
  return { port, nodename, dir, pid: () => beam, freeze, kill, restart, stop, logTail };
}

export const RABBIT = { host: '127.0.0.1', port: 5672, username: 'guest', password: 'guest' };

/** A fresh vhost on the running RabbitMQ, guest allowed everything in it. */
export function createVhost(): { vhost: string; connections(): number; closeConnections(): void; remove(): void } {
  const vhost = `tributary_${randomBytes(4).toString('hex')}`;
  try {
    execFileSync('rabbitmqctl', ['-q', 'add_vhost', vhost], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`the sink suites need RabbitMQ on 127.0.0.1:5672 (guest/guest) and rabbitmqctl: start it with "rabbitmq-server -detached" (${(err as Error).message})`);
  }
  execFileSync('rabbitmqctl', ['-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*'], { stdio: 'ignore' });
  return {
    vhost,
    connections: () => execFileSync('rabbitmqctl', ['-q', 'list_connections', 'vhost'], { encoding: 'utf8' }).split('\n').filter((l) => l.trim() === vhost).length,
    closeConnections: () => { execFileSync('rabbitmqctl', ['-q', 'close_all_connections', '--vhost', vhost, 'sink test: broker connection loss'], { stdio: 'ignore' }); },
    remove: () => { try { execFileSync('rabbitmqctl', ['-q', 'delete_vhost', vhost], { stdio: 'ignore' }); } catch { /* gone */ } },
  };
}

export interface ReceivedRequest { headers: http.IncomingHttpHeaders; body: Buffer; status: number }

/**
 * A webhook endpoint. `answer` decides the status for each request (default
 * 200; it may hold the answer back); every request is recorded with the
 * status it got, including one whose sender died while it was held.
 */
type Answer = (req: { headers: http.IncomingHttpHeaders; body: Buffer }) => number | Promise<number>;

export async function startReceiver(answer: Answer = () => 200): Promise<{
  url: string; requests: ReceivedRequest[]; setAnswer(f: Answer): void; close(): Promise<void>;
}> {
  let decide = answer;
  const requests: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const status = await decide({ headers: req.headers, body });
      requests.push({ headers: req.headers, body, status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`, requests, setAnswer: (f) => { decide = f; },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** Checks a `Tributary-Signature` header the way a receiver would. */
export function signatureValid(secret: string, header: string | undefined, body: Buffer): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const mac = createHmac('sha256', secret).update(`${m[1]}.`).update(body).digest('hex');
  return mac === m[2];
}

/**
 * What a consumer that deduplicates by message id ends up with: the first
 * copy of each id, in arrival order. `orderProblems` lists keys whose
 * sequences do not increase in that order.
 */
export function dedupe<T extends { id: string; key: string; sequence: string }>(arrivals: T[], compare: (a: string, b: string) => number): { unique: T[]; duplicates: number; orderProblems: string[] } {
  const seen = new Set<string>(); const unique: T[] = []; const lastOfKey = new Map<string, string>(); const problems: string[] = [];
  for (const a of arrivals) {
    if (seen.has(a.id)) continue;
    seen.add(a.id); unique.push(a);
    const prev = lastOfKey.get(a.key);
    if (prev !== undefined && compare(prev, a.sequence) >= 0) problems.push(`${a.key}: ${a.sequence} after ${prev}`);
    lastOfKey.set(a.key, a.sequence);
  }
  return { unique, duplicates: arrivals.length - unique.length, orderProblems: problems };
}

/** Every message of a stream, in stream order, as (id, key, sequence). */
export async function readStream(url: string, stream: string): Promise<{ id: string; key: string; sequence: string; body: Uint8Array }[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(stream);
    const name = `check_${Date.now()}`;
    await jsm.consumers.add(stream, { durable_name: name, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
    const consumer = await nc.jetstream().consumers.get(stream, name);
    const out: { id: string; key: string; sequence: string; body: Uint8Array }[] = [];
    while (out.length < info.state.messages) {
      const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
      let n = 0;
      for await (const m of batch as AsyncIterable<JsMsg>) {
        n++;
        out.push({ id: m.headers!.get('Nats-Msg-Id'), key: m.headers!.get('Tributary-Key'), sequence: m.headers!.get('Tributary-Sequence'), body: m.data });
      }
      if (n === 0) break;
    }
    return out;
  } finally { await nc.close(); }
}

