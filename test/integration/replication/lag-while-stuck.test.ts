/**
 * A job whose apply makes no progress shows it: `lagMs` grows with the wall
 * clock while a change waits unapplied (apply-lag.ts), in GraphQL
 * job.metrics and the per-job gauge, and the LAG_WARN_SECONDS warning is
 * logged while it is still stuck; once the apply goes on, lag falls back.
 * Before, lagMs stayed at the last applied batch's small figure (or 0, the
 * feed having been drained) for as long as the apply was blocked.
 *
 * The apply is held by a lock (a separate session keeps the destination
 * table ACCESS EXCLUSIVE in an open transaction, so the apply's write waits),
 * or the destination is down (reached through a TCP proxy that is closed: every
 * attempt of the apply fails and is retried every 2 s).
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import net from 'node:net';
import pg from 'pg';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, waitJob } from '../../support/replication.ts';

const METRICS = `query($id: ID!) { job(id: $id) { metrics { lagMs rowsApplied backlog } } }`;
const LOGS = `query($id: ID!) { job(id: $id) { logs(last: 50) { level message } } }`;

/** A TCP proxy to `target` that can be stopped (connections cut, new ones refused) and started again on the same port. */
function tcpProxy(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  return {
    get port() { return port; },
    start: () => new Promise<void>((resolve, reject) => {
      const srv = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host);
        sockets.add(client); sockets.add(upstream);
        const end = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
        for (const s of [client, upstream]) { s.on('error', end); s.on('close', end); }
        client.pipe(upstream); upstream.pipe(client);
      });
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => { port = (srv.address() as net.AddressInfo).port; server = srv; resolve(); });
    }),
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (!server) { resolve(); return; }
      server.close(() => resolve());
      server = undefined;
    }),
  };
}

describe('job lagMs while the apply is stuck', () => {
  let gw: TestGateway;
  const handles: DbHandle[] = [];
  beforeAll(async () => { gw = await startTestGateway({ lagWarnSeconds: 2 }); });
  afterAll(async () => {
    await gw?.close();
    for (const h of handles) await h.close().catch(() => undefined);
  });

  const metrics = async (id: string) => (await gql(gw.url, METRICS, { id })).body.data.job.metrics as { lagMs: number | null; rowsApplied: number; backlog: number | null };
  const logs = async (id: string) => (await gql(gw.url, LOGS, { id })).body.data.job.logs as { level: string; message: string }[];
  const gauge = async (name: string): Promise<number | undefined> => {
    const line = (await (await fetch(`${gw.url}/metrics`)).text()).split('\n').find((l) => l.startsWith('tributary_job_lag_seconds{') && l.includes(`job="${name}"`));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };

  for (const kind of ['postgres', 'mysql'] as const) {
    it(`${kind === 'mysql' ? 'MariaDB' : 'PostgreSQL'} source: grows past 2 s while the destination table is locked, warns, then falls back`, async () => {
      const src = kind === 'mysql' ? await mariaDatabase(inject('mariaUrl'), uniq('ls_src')) : await pgDatabase(inject('pgUrl'), uniq('ls_src'));
      handles.push(src);
      const dst = await pgDatabase(inject('pgUrl'), uniq('ls_dst')); handles.push(dst);
      const schema = kind === 'mysql' ? src.database : 'public';
      await src.query(kind === 'mysql' ? 'CREATE TABLE t (id int PRIMARY KEY, v text) ENGINE=InnoDB' : 'CREATE TABLE t (id int PRIMARY KEY, v text)');
      const name = uniq('stuck');
      const job = await createJob(gw.url, {
        name, type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema, tables: ['t'] }],
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
      await src.query(`INSERT INTO t VALUES (0, 'first')`);
      await waitFor(() => dst.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".t`), (r) => r[0]!.n === 1, 30_000, 'first row');
      // Flowing: a small figure (then 0 once caught up).
      await waitFor(() => metrics(job.id), (m) => m.lagMs !== null && m.lagMs < 1000, 15_000, 'small lag');
      const appliedBefore = Number((await metrics(job.id)).rowsApplied);

      const u = new URL(inject('pgUrl')); u.pathname = `/${dst.database}`;
      const locker = new pg.Client({ connectionString: u.toString() });
      await locker.connect();
      try {
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE "${schema}".t IN ACCESS EXCLUSIVE MODE`);
        const insertAt = Date.now();
        await src.query(`INSERT INTO t VALUES (1, 'held')`);
        const committedAt = Date.now();

        // Stuck: lag grows past 2 s, in real time, and stays within a metrics tick or so of the change's true age.
        const first = await waitFor(() => metrics(job.id), (m) => (m.lagMs ?? 0) > 2000, 20_000, 'lag over 2 s while locked');
        expect(Number(first.rowsApplied), 'nothing applied while locked').toBe(appliedBefore);
        await new Promise((r) => setTimeout(r, 1500));
        const t1 = Date.now();
        const second = await metrics(job.id);
        const t2 = Date.now();
        expect(second.lagMs!, 'grows while stuck').toBeGreaterThanOrEqual(first.lagMs! + 1000);
        expect(second.lagMs!, 'not above the change\'s age').toBeLessThanOrEqual(t2 - insertAt + 100);
        expect(second.lagMs!, 'at most about a metrics tick below the change\'s age').toBeGreaterThanOrEqual(t1 - committedAt - 750);
        expect(second.backlog ?? 0).toBeGreaterThanOrEqual(1);
        // The per-job gauge follows.
        expect(await gauge(name)).toBeGreaterThan(2);
        // The warning fires while still stuck (LAG_WARN_SECONDS=2), saying the apply makes no progress.
        const warned = await waitFor(() => logs(job.id), (l) => l.some((x) => x.level === 'warn' && /behind the source .*LAG_WARN_SECONDS=2/.test(x.message)), 10_000, 'lag warning while stuck');
        expect(warned.find((x) => x.level === 'warn' && /behind the source/.test(x.message))!.message).toMatch(/made no progress/);
        expect(Number((await metrics(job.id)).rowsApplied), 'still nothing applied').toBe(appliedBefore);
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        await locker.end().catch(() => undefined);
      }

      // Released: the row is applied, lag falls back (the batch's own figure, then 0 once caught up) and the catch-up is logged.
      await waitFor(() => dst.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".t`), (r) => r[0]!.n === 2, 30_000, 'held row');
      await waitFor(() => metrics(job.id), (m) => m.lagMs === 0 && Number(m.rowsApplied) > appliedBefore, 15_000, 'lag back to 0');
      await waitFor(() => logs(job.id), (l) => l.some((x) => x.level === 'info' && /apply caught up/.test(x.message)), 15_000, 'caught-up line');
      await waitFor(() => gauge(name), (g) => g === 0, 15_000, 'gauge back to 0');
      // Flowing again: a new row's lag is small.
      await src.query(`INSERT INTO t VALUES (2, 'after')`);
      const after = await waitFor(() => metrics(job.id), (m) => Number(m.rowsApplied) > appliedBefore + 1 && m.lagMs !== null, 15_000, 'next row');
      expect(after.lagMs!).toBeLessThan(1000);
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    }, 120_000);
  }

  it('destination down (every apply attempt fails): lag grows past 2 s, warns once, then falls back when it is up again', async () => {
    const src = await pgDatabase(inject('pgUrl'), uniq('ld_src')); handles.push(src);
    const dst = await pgDatabase(inject('pgUrl'), uniq('ld_dst')); handles.push(dst);
    await src.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
    const proxy = tcpProxy({ host: dst.host, port: dst.port });
    await proxy.start();
    try {
      const name = uniq('down');
      const job = await createJob(gw.url, {
        name, type: 'SYNCHRONOUS', source: endpoint(src), destination: { ...endpoint(dst), host: '127.0.0.1', port: proxy.port }, tables: [{ schema: 'public', tables: ['t'] }],
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
      await src.query(`INSERT INTO t VALUES (0, 'first')`);
      await waitFor(() => dst.query<{ n: number }>('SELECT count(*)::int AS n FROM public.t'), (r) => r[0]!.n === 1, 30_000, 'first row');
      await waitFor(() => metrics(job.id), (m) => m.lagMs !== null && m.lagMs < 1000, 15_000, 'small lag');
      const appliedBefore = Number((await metrics(job.id)).rowsApplied);

      await proxy.stop();
      const insertAt = Date.now();
      await src.query(`INSERT INTO t VALUES (1, 'while down')`);
      const first = await waitFor(() => metrics(job.id), (m) => (m.lagMs ?? 0) > 2000, 20_000, 'lag over 2 s while down');
      expect(first.lagMs!).toBeLessThanOrEqual(Date.now() - insertAt + 100);
      // A step per failed attempt (retried every 2 s): it keeps growing.
      const later = await waitFor(() => metrics(job.id), (m) => (m.lagMs ?? 0) >= first.lagMs! + 1500, 15_000, 'lag still growing while down');
      expect(later.lagMs!).toBeLessThanOrEqual(Date.now() - insertAt + 100);
      expect(Number(later.rowsApplied)).toBe(appliedBefore);
      expect(await gauge(name)).toBeGreaterThan(2);
      const warnings = (await logs(job.id)).filter((x) => x.level === 'warn' && /behind the source .*LAG_WARN_SECONDS=2/.test(x.message));
      expect(warnings.length, 'warned once, not once per retried attempt').toBe(1);

      await proxy.start();
      await waitFor(() => dst.query<{ n: number }>('SELECT count(*)::int AS n FROM public.t'), (r) => r[0]!.n === 2, 30_000, 'row applied once the destination is back');
      await waitFor(() => metrics(job.id), (m) => m.lagMs === 0 && Number(m.rowsApplied) > appliedBefore, 15_000, 'lag back to 0');
      await waitFor(() => logs(job.id), (l) => l.some((x) => x.level === 'info' && /apply caught up/.test(x.message)), 15_000, 'caught-up line');
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    } finally {
      await proxy.stop();
    }
  }, 120_000);
});
