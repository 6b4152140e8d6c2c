/**
 * Brokers and a webhook receiver for the sink suites: a private NATS server
 * with JetStream (its own port and store directory, killable and
 * restartable), a private vhost on the machine's RabbitMQ (127.0.0.1:5672,
 * guest/guest), and a local HTTP receiver whose answers a test can steer.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
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

