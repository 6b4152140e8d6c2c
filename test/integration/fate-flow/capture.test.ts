/**
 * The Capture module: a streaming DAG Capture(MariaDB) -> Filter -> Writer(PostgreSQL)
 * submitted through /v1/job/submit runs until stopped; rows inserted, updated
 * (into, within and out of the filter) and deleted on the source after submit
 * reach the destination filtered, also across a restart of the gateway and
 * workers; stop -> canceled, the capture's components end canceled once the
 * stream has really stopped, and nothing committed after the stop answered
 * is applied, even by a worker that never got the stop notice. A DAG mixing
 * a Capture with an Aggregate is refused.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, waitFor, type DbHandle } from '../../support/databases.ts';
import { fate, gqlCreateConnection, jobOf, waitJob } from './support.ts';

let gw: TestGateway;
let maria: DbHandle;
let pg: DbHandle;

const conf = (params: Record<string, unknown>) => ({ initiator: { role: 'local', party_id: 9999 }, role: { local: [9999] }, job_parameters: { common: { job_name: 'orders-stream' } }, component_parameters: { common: params } });

const DSL = {
  components: {
    capture_0: { module: 'Capture', output: { data: ['data'] } },
    filter_0: { module: 'Filter', input: { data: { data: ['capture_0.data'] } }, output: { data: ['data'] } },
    writer_0: { module: 'Writer', input: { data: { data: ['filter_0.data'] } }, output: { data: ['data'] } },
  },
};
const CONF = conf({
  capture_0: { table: { namespace: 'maria-cap', name: 'orders' } },
  filter_0: { where: "amount > 100 and status = 'paid'" },
  writer_0: { table: { namespace: 'pg-cap.stream', name: 'paid_orders' } },
});

beforeAll(async () => {
  gw = await startTestGateway({ workerConcurrency: 4 });
  maria = await mariaDatabase(inject('mariaUrl'));
  pg = await pgDatabase(inject('pgUrl'));
  await maria.query('CREATE TABLE orders (id int PRIMARY KEY, city varchar(20) NOT NULL, amount decimal(10,2), status varchar(10))');
  // Present before submit: a stream carries changes, not the table's current rows.
  await maria.query("INSERT INTO orders VALUES (1, 'Paris', 500.00, 'paid'), (2, 'Oslo', 50.00, 'paid')");
  await gqlCreateConnection(gw.url, { name: 'maria-cap', kind: 'MYSQL', host: maria.host, port: maria.port, user: maria.user, password: maria.password, database: maria.database });
  await gqlCreateConnection(gw.url, { name: 'pg-cap', kind: 'POSTGRES', host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database });
}, 120_000);

afterAll(async () => {
  await gw?.close();
  await maria?.close();
  await pg?.close();
});

const destRows = async () => {
  try {
    return await pg.query('SELECT id, city, amount::text AS amount, status FROM stream.paid_orders ORDER BY id');
  } catch { return []; }
};

/** Every task of the job canceled: set by the workers once the stream has ended (a stop cancels only unstarted tasks itself). */
const waitTasksCanceled = (jobId: string) => waitFor(async () => (await fate(gw.url, '/v1/job/task/query', { job_id: jobId })).body.data,
  (ts: any[]) => ts.length > 0 && ts.every((t) => t.f_status === 'canceled'), 30_000, 'tasks canceled');

describe('FATE-Flow v1 pipelines: Capture', () => {
  it('Capture(MariaDB) -> Filter -> Writer(PostgreSQL) streams inserts, updates and deletes, filtered, until stopped', async () => {
    const r = await fate(gw.url, '/v1/job/submit', { job_dsl: DSL, job_runtime_conf: CONF });
    expect(r.body).toMatchObject({ retcode: 0, retmsg: 'success' });
    const jobId = r.body.jobId!;

    // Changes right after submit answers (the task may not have started yet): the start position was fixed at submit.
    await maria.query("INSERT INTO orders VALUES (10, 'Lima', 150.00, 'paid'), (11, 'Kyiv', 20.00, 'paid'), (12, 'Oslo', 300.00, 'refunded')");
    await waitJob(gw.url, jobId, ['running']);
    await maria.query("INSERT INTO orders VALUES (13, 'Paris', 999.99, 'paid')");
    await waitFor(destRows, (rows) => rows.length === 2, 60_000, 'inserts streamed');
    expect(await destRows()).toEqual([
      { id: 10, city: 'Lima', amount: '150.00', status: 'paid' },
      { id: 13, city: 'Paris', amount: '999.99', status: 'paid' },
    ]);

    // Updates: into the filter (insert), within it (update), out of it (delete); a row existing before submit moving in.
    await maria.query("UPDATE orders SET amount = 120.00 WHERE id = 11");
    await maria.query("UPDATE orders SET city = 'Quito', amount = 151.50 WHERE id = 10");
    await maria.query("UPDATE orders SET status = 'refunded' WHERE id = 13");
    await maria.query("UPDATE orders SET amount = 60.00 WHERE id = 1");
    await maria.query("UPDATE orders SET amount = 101.00 WHERE id = 2");
    // A transaction with several changes, one of them a delete.
    await maria.query("START TRANSACTION");
    await maria.query("INSERT INTO orders VALUES (14, 'Lima', 700.00, 'paid'), (15, 'Lima', 700.00, 'pending')");
    await maria.query("DELETE FROM orders WHERE id = 10");
    await maria.query("COMMIT");
    const expected = [
      { id: 2, city: 'Oslo', amount: '101.00', status: 'paid' },
      { id: 11, city: 'Kyiv', amount: '120.00', status: 'paid' },
      { id: 14, city: 'Lima', amount: '700.00', status: 'paid' },
    ];
    await waitFor(destRows, (rows) => JSON.stringify(rows) === JSON.stringify(expected), 60_000, 'updates and deletes streamed');

    // Still running; the components below the Capture run inside its task.
    const job = await jobOf(gw.url, jobId);
    expect(job.f_status).toBe('running');
    const tasks = await fate(gw.url, '/v1/job/task/query', { job_id: jobId });
    expect(tasks.body.retcode).toBe(0);
    expect(Object.fromEntries(tasks.body.data.map((t: any) => [t.f_component_name, t.f_status]))).toEqual({ capture_0: 'running', filter_0: 'running', writer_0: 'running' });

    // Gateway and workers restart: changes made meanwhile arrive once the Capture resumes from its stored position.
    await gw.close();
    await maria.query("UPDATE orders SET amount = 130.00 WHERE id = 11");
    await maria.query("INSERT INTO orders VALUES (20, 'Oslo', 444.00, 'paid')");
    gw = await startTestGateway({ databaseUrl: gw.config.databaseUrl, queuePrefix: gw.config.queuePrefix, workerConcurrency: 4 });
    expected.splice(1, 1, { id: 11, city: 'Kyiv', amount: '130.00', status: 'paid' });
    expected.push({ id: 20, city: 'Oslo', amount: '444.00', status: 'paid' });
    await waitFor(destRows, (rows) => JSON.stringify(rows) === JSON.stringify(expected), 60_000, 'changes during the restart streamed');
    expect((await jobOf(gw.url, jobId)).f_status).toBe('running');

    const stop = await fate(gw.url, '/v1/job/stop', { job_id: jobId });
    expect(stop.body.retcode).toBe(0);
    expect((await jobOf(gw.url, jobId)).f_status).toBe('canceled');
    // Stopped means stopped: a change committed after the stop answered never arrives, even while the
    // stream task is still winding down. Its tasks read canceled once it has ended (log reader and Writers
    // closed, metrics written), so after that wait nothing can arrive any more.
    await maria.query("INSERT INTO orders VALUES (16, 'Paris', 800.00, 'paid')");
    await waitTasksCanceled(jobId);
    expect(await destRows()).toEqual(expected);
    const metrics = await fate(gw.url, '/v1/tracking/component/metric/all', { job_id: jobId, role: 'local', party_id: 9999, component_name: 'writer_0' });
    // The writer's metrics were written when the stream ended.
    expect(metrics.body).toMatchObject({ retcode: 0, data: { stats: { rows_out: { meta: { component_name: 'writer_0' } } } } });
    // lag_ms is how far behind the source the last transaction was when written (a real figure, not a constant 0);
    // errors counts the attempts that failed before (none here).
    const lag = metrics.body.data.stats.lag_ms.data[0][1];
    expect(lag).toBeGreaterThan(0);
    expect(lag).toBeLessThan(60_000);
    expect(metrics.body.data.stats.errors.data).toEqual([['total', 0]]);
  });

  it('a worker that never got the stop notice applies nothing committed after the stop answered', async () => {
    const conf2 = conf({
      capture_0: { table: { namespace: 'maria-cap', name: 'orders' } },
      filter_0: { where: "status = 'paid'" },
      writer_0: { table: { namespace: 'pg-cap.stream', name: 'fenced' } },
    });
    const r = await fate(gw.url, '/v1/job/submit', { job_dsl: DSL, job_runtime_conf: conf2 });
    expect(r.body.retcode).toBe(0);
    const jobId = r.body.jobId!;
    const fenced = async () => { try { return await pg.query('SELECT id FROM stream.fenced ORDER BY id'); } catch { return []; } };
    await waitJob(gw.url, jobId, ['running']);
    await maria.query("INSERT INTO orders VALUES (30, 'Oslo', 1.00, 'paid')");
    await waitFor(fenced, (rows) => rows.length === 1, 60_000, 'first row streamed');
    // As when this gateway's pub/sub subscription is gone: the stop notice does not reach the running task.
    const host = gw.app.workerHost!;
    const abortJob = host.abortJob;
    host.abortJob = () => 0;
    try {
      expect((await fate(gw.url, '/v1/job/stop', { job_id: jobId })).body.retcode).toBe(0);
      await maria.query("INSERT INTO orders VALUES (31, 'Oslo', 2.00, 'paid')");
      await waitTasksCanceled(jobId);
    } finally {
      host.abortJob = abortJob;
    }
    expect(await fenced()).toEqual([{ id: 30 }]);
  });

  it('Capture(PostgreSQL) -> Map -> Writer: the slot exists from submit and is dropped at stop', async () => {
    await pg.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int)');
    const dsl = {
      components: {
        capture_0: { module: 'Capture', output: { data: ['data'] } },
        map_0: { module: 'Map', input: { data: { data: ['capture_0.data'] } }, output: { data: ['data'] } },
        writer_0: { module: 'Writer', input: { data: { data: ['map_0.data'] } }, output: { data: ['data'] } },
      },
    };
    const r = await fate(gw.url, '/v1/job/submit', {
      job_dsl: dsl,
      job_runtime_conf: conf({ capture_0: { table: { namespace: 'pg-cap', name: 'items' } }, map_0: { select: ['id', 'name'], rename: { name: 'label' } }, writer_0: { table: { namespace: 'pg-cap.copy', name: 'items' } } }),
    });
    expect(r.body.retcode).toBe(0);
    const slots = () => pg.query("SELECT slot_name FROM pg_replication_slots WHERE database = current_database() AND slot_name LIKE 'tributary_pl_%'");
    expect(await slots()).toHaveLength(1);
    await pg.query("INSERT INTO items VALUES (1, 'one', 5), (2, 'two', 6)");
    await pg.query("UPDATE items SET name = 'uno' WHERE id = 1");
    await pg.query('DELETE FROM items WHERE id = 2');
    await pg.query("INSERT INTO items VALUES (3, 'three', 7)");
    const copy = async () => { try { return await pg.query('SELECT * FROM copy.items ORDER BY id'); } catch { return []; } };
    await waitFor(copy, (rows) => JSON.stringify(rows) === JSON.stringify([{ id: 1, label: 'uno' }, { id: 3, label: 'three' }]), 60_000, 'pg stream');
    expect((await fate(gw.url, '/v1/job/stop', { job_id: r.body.jobId })).body.retcode).toBe(0);
    await waitJob(gw.url, r.body.jobId!, ['canceled']);
    await waitFor(slots, (s) => s.length === 0, 30_000, 'slot dropped at stop');
  });

  it('refuses a DAG mixing a Capture with an Aggregate, naming the component', async () => {
    const dsl = {
      components: {
        capture_0: { module: 'Capture', output: { data: ['data'] } },
        agg_0: { module: 'Aggregate', input: { data: { data: ['capture_0.data'] } }, output: { data: ['data'] } },
        writer_0: { module: 'Writer', input: { data: { data: ['agg_0.data'] } }, output: { data: ['data'] } },
      },
    };
    const r = await fate(gw.url, '/v1/job/submit', {
      job_dsl: dsl,
      job_runtime_conf: conf({ capture_0: { table: { namespace: 'maria-cap', name: 'orders' } }, agg_0: { group_by: ['city'], aggregates: { n: 'count(*)' } }, writer_0: { table: { namespace: 'pg-cap.stream', name: 'agg' } } }),
    });
    expect(r.body.retcode).toBe(101);
    expect(r.body.retmsg).toMatch(/component agg_0: .*Capture/);
  });
});
