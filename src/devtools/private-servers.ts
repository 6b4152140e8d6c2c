/**
 * Private PostgreSQL, MariaDB and Redis servers for tests, benchmarks and the
 * demo. Each runs from the machine's installed binaries, on a free loopback
 * port, with its data under a temporary directory, configured for capture
 * (PostgreSQL `wal_level=logical`; MariaDB row binlog, full row image, GTID,
 * server id), or a Redis Cluster of several such Redis servers. Nothing here
 * depends on the machine's own services.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, chownSync, existsSync, rmSync, writeFileSync, openSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

export type ServerKind = 'postgres' | 'mariadb' | 'redis';

export interface PrivateServer {
  readonly kind: ServerKind;
  readonly port: number;
  readonly dir: string;
  /** Connection URL with the superuser (trust / empty password). */
  readonly url: string;
  pid(): number | undefined;
  /** Hard kill (SIGKILL), as a crash would. */
  kill(): void;
  /** Start again on the same port and data directory. */
  restart(): Promise<void>;
  /** Stop cleanly and, unless `keepData`, remove the data directory. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

export interface StartOptions {
  /** Parent directory for the data directory. Default: os.tmpdir(). */
  baseDir?: string;
  /** Port; default: a free one. */
  port?: number;
  /** MariaDB server id. Default 1. */
  serverId?: number;
  /** Extra server arguments. */
  args?: string[];
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function which(bin: string, candidates: string[]): string {
  for (const c of candidates) if (existsSync(c)) return c;
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  const found = r.stdout.trim();
  if (found) return found;
  throw new Error(`${bin} not found: install it or put it on PATH`);
}

function pgBin(name: string): string {
  const versions = existsSync('/usr/lib/postgresql')
    ? spawnSync('ls', ['/usr/lib/postgresql'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).sort().reverse()
    : [];
  return which(name, [`/usr/local/bin/${name}`, ...versions.map((v) => `/usr/lib/postgresql/${v}/bin/${name}`)]);
}

function userIds(user: string): { uid: number; gid: number } | undefined {
  const r = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

function makeDir(base: string | undefined, prefix: string, owner?: string): string {
  const root = base ?? os.tmpdir();
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(path.join(root, `tributary-${prefix}-`));
  if (isRoot && owner) {
    const ids = userIds(owner);
    if (ids) chownSync(dir, ids.uid, ids.gid);
  }
  return dir;
}

async function waitPort(port: number, child: ChildProcess, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | null = null;
  child.once('exit', (code) => { exited = code ?? -1; });
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`${what} exited with ${exited} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
}

function asUser(user: string, cmd: string, args: string[]): [string, string[]] {
  if (!isRoot) return [cmd, args];
  const quoted = [cmd, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return ['su', [user, '-s', '/bin/sh', '-c', `exec ${quoted}`]];
}

function logFd(dir: string, name: string): number {
  return openSync(path.join(dir, name), 'a');
}

class ProcessServer implements PrivateServer {
  private child?: ChildProcess;
  constructor(
    readonly kind: ServerKind,
    readonly port: number,
    readonly dir: string,
    readonly url: string,
    private readonly launch: () => ChildProcess,
    private readonly cleanup: () => void = () => {},
  ) {}

  pid(): number | undefined { return this.child?.pid; }

  async start(): Promise<void> {
    this.child = this.launch();
    this.child.unref();
    await waitPort(this.port, this.child, `${this.kind} (${this.dir})`);
    if (this.kind === 'mariadb') await this.waitMariadbReady();
    if (this.kind === 'postgres') await this.waitPostgresReady();
  }

  private async waitPostgresReady(): Promise<void> {
    // The port opens while the server still answers 57P03 "the database system is starting up"
    // (crash recovery after a SIGKILL); pg_isready exits 0 once it accepts connections.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const ok = await promisify(execFile)(pgBin('pg_isready'), ['-h', '127.0.0.1', '-p', String(this.port), '-t', '2']).then(() => true, () => false);
      if (ok) return;
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  private async waitMariadbReady(): Promise<void> {
    // The port opens before InnoDB finishes recovery; ping until queries work.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const r = spawnSync('mariadb-admin', ['-uroot', '-h127.0.0.1', `-P${this.port}`, '--connect-timeout=2', 'ping'], { encoding: 'utf8' });
      if (r.status === 0) return;
      await new Promise((res) => setTimeout(res, 150));
    }
  }

  kill(): void {
    const pid = this.child?.pid;
    if (!pid) return;
    // su forks the server as a child, and PostgreSQL forks a backend per connection: collect every
    // descendant first, then kill them all. Killing su first reparented the server, which survived
    // the "crash" (and a restart then found its postmaster.pid and never started).
    const all = [pid];
    for (let k = 0; k < all.length; k++) {
      const r = spawnSync('pgrep', ['-P', String(all[k])], { encoding: 'utf8' });
      for (const line of r.stdout.split('\n')) if (line.trim()) all.push(Number(line.trim()));
    }
    for (const p of all) { try { process.kill(p, 'SIGKILL'); } catch { /* already gone */ } }
    // The dead postmaster, orphaned by su, stays a zombie where PID 1 reaps nothing (containers), and
    // PostgreSQL takes a live-looking PID in its lock file for a running server: drop the stale lock.
    if (this.kind === 'postgres') {
      rmSync(path.join(this.dir, 'data', 'postmaster.pid'), { force: true });
      rmSync(path.join(this.dir, `.s.PGSQL.${this.port}.lock`), { force: true });
    }
    this.child = undefined;
  }

  async restart(): Promise<void> {
    if (this.child) await this.stop({ keepData: true });
    await this.waitPortFree();
    await this.start();
  }

  private async waitPortFree(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const busy = await new Promise<boolean>((resolve) => {
        const s = net.connect(this.port, '127.0.0.1');
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      });
      if (!busy) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(opts: { keepData?: boolean } = {}): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child?.pid && child.exitCode === null) {
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      spawnSync('pkill', ['-TERM', '-P', String(child.pid)]);
      try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
      const timer = setTimeout(() => { spawnSync('pkill', ['-KILL', '-P', String(child.pid)]); try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
      await done;
      clearTimeout(timer);
    }
    this.cleanup();
    if (!opts.keepData) rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startPostgres(opts: StartOptions = {}): Promise<PrivateServer> {
  const dir = makeDir(opts.baseDir, 'pg', 'postgres');
  const data = path.join(dir, 'data');
  const port = opts.port ?? (await freePort());
  const [cmd, args] = asUser('postgres', pgBin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  const init = spawnSync(cmd, args, { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const serverArgs = [
    '-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`,
    '-c', 'wal_level=logical', '-c', 'max_replication_slots=32', '-c', 'max_wal_senders=32',
    '-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'shared_buffers=256MB', '-c', 'max_wal_size=4GB', '-c', 'logging_collector=off',
    ...(opts.args ?? []),
  ];
  const server = new ProcessServer('postgres', port, dir, `postgres://postgres@127.0.0.1:${port}/postgres`, () => {
    const [c, a] = asUser('postgres', pgBin('postgres'), serverArgs);
    const fd = logFd(dir, 'postgres.log');
    return spawn(c, a, { stdio: ['ignore', fd, fd], detached: true });
  });
  await server.start();
  return server;
}

export async function startMariadb(opts: StartOptions = {}): Promise<PrivateServer> {
  const dir = makeDir(opts.baseDir, 'maria', 'mysql');
  const data = path.join(dir, 'data');
  const port = opts.port ?? (await freePort());
  const installer = which('mariadb-install-db', ['/usr/bin/mariadb-install-db', '/usr/local/bin/mariadb-install-db']);
  const install = spawnSync(installer, [
    '--no-defaults', ...(isRoot ? ['--user=mysql'] : []), `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db',
  ], { encoding: 'utf8' });
  if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr || install.stdout}`);
  const mariadbd = which('mariadbd', ['/usr/sbin/mariadbd', '/usr/local/bin/mariadbd']);
  const serverArgs = [
    '--no-defaults', ...(isRoot ? ['--user=mysql'] : []), `--datadir=${data}`, `--port=${port}`, '--bind-address=127.0.0.1',
    `--socket=${path.join(dir, 's.sock')}`, `--pid-file=${path.join(dir, 'mariadb.pid')}`,
    `--log-bin=${path.join(dir, 'binlog')}`, '--binlog-format=ROW', '--binlog-row-image=FULL',
    // Column names and types in every row event: capture can replay the binlog across a later ALTER TABLE.
    '--binlog-row-metadata=FULL',
    `--server-id=${opts.serverId ?? 1}`, '--log-slave-updates=ON', '--gtid-strict-mode=ON',
    '--innodb-flush-log-at-trx-commit=2', '--sync-binlog=0', '--innodb-buffer-pool-size=256M',
    '--max-connections=300', '--character-set-server=utf8mb4', '--collation-server=utf8mb4_general_ci',
    `--log-error=${path.join(dir, 'error.log')}`, '--skip-name-resolve',
    ...(opts.args ?? []),
  ];
  const server = new ProcessServer('mariadb', port, dir, `mysql://root@127.0.0.1:${port}/`, () => {
    const fd = logFd(dir, 'mariadbd.out');
    return spawn(mariadbd, serverArgs, { stdio: ['ignore', fd, fd], detached: true });
  });
  await server.start();
  return server;
}

export async function startRedis(opts: StartOptions & { appendonly?: boolean } = {}): Promise<PrivateServer> {
  const dir = makeDir(opts.baseDir, 'redis');
  const port = opts.port ?? (await freePort());
  const bin = which('redis-server', ['/usr/bin/redis-server', '/usr/local/bin/redis-server']);
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
    '--appendonly', opts.appendonly ? 'yes' : 'no', '--appendfsync', 'everysec', ...(opts.args ?? []),
  ];
  const server = new ProcessServer('redis', port, dir, `redis://127.0.0.1:${port}`, () => {
    const fd = logFd(dir, 'redis.log');
    return spawn(bin, args, { stdio: ['ignore', fd, fd], detached: true });
  });
  await server.start();
  return server;
}

export interface PrivateRedisCluster {
  /** The masters, each a private redis-server in cluster mode. */
  readonly masters: PrivateServer[];
  /** Seed list for REDIS_CLUSTER_NODES: `127.0.0.1:port,...`. */
  readonly nodes: string;
  readonly dir: string;
  /** Stop every master and remove the data directory. */
  stop(): Promise<void>;
}

const execFileAsync = promisify(execFile);

/**
 * A Redis Cluster of `masters` (default 3) private redis-servers, no replicas,
 * under one temporary directory: each started with `cluster-enabled yes` and
 * its own bus port (`cluster-port`), joined and given the 16384 slots by
 * `redis-cli --cluster create ... --cluster-yes`, and returned once every
 * master reports `cluster_state:ok` and sees all masters.
 */
export async function startRedisCluster(opts: { masters?: number; baseDir?: string } = {}): Promise<PrivateRedisCluster> {
  const count = opts.masters ?? 3;
  if (count < 3) throw new RangeError(`a Redis Cluster needs at least 3 masters, got ${count}`);
  const dir = makeDir(opts.baseDir, 'redis-cluster');
  const masters: PrivateServer[] = [];
  const stop = async () => {
    await Promise.all(masters.map((m) => m.stop().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < count; i++) {
      const busPort = await freePort();
      masters.push(await startRedis({
        baseDir: dir,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort), '--cluster-node-timeout', '5000'],
      }));
    }
    const cli = which('redis-cli', ['/usr/bin/redis-cli', '/usr/local/bin/redis-cli']);
    const addrs = masters.map((m) => `127.0.0.1:${m.port}`);
    await execFileAsync(cli, ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 })
      .catch((err: Error & { stdout?: string; stderr?: string }) => { throw new Error(`redis-cli --cluster create failed: ${err.stderr || err.stdout || err.message}`); });
    const deadline = Date.now() + 60_000;
    for (const m of masters) {
      for (;;) {
        const { stdout } = await execFileAsync(cli, ['-p', String(m.port), 'cluster', 'info']);
        if (/cluster_state:ok/.test(stdout) && new RegExp(`cluster_known_nodes:${count}\\b`).test(stdout)) break;
        if (Date.now() > deadline) throw new Error(`redis cluster node ${m.port} not ok within 60 s:\n${stdout}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { masters, nodes: masters.map((m) => `127.0.0.1:${m.port}`).join(','), dir, stop };
}

/** Writes a small description of running servers, for `services:up/down`. */
export function writeState(file: string, servers: PrivateServer[]): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(servers.map((s) => ({ kind: s.kind, port: s.port, dir: s.dir, url: s.url, pid: s.pid() })), null, 2));
}
