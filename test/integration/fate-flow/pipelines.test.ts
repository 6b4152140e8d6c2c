/**
 * FATE-Flow v1 jobs on real servers: a Reader -> Filter -> Writer DAG from
 * MariaDB to PostgreSQL writes exactly the expected rows; a branching DAG
 * with Map and Aggregate; stop -> canceled; every job, tracking, pipeline
 * and model endpoint with the seed's field names; bad input -> FATE
 * envelope with the right retcode.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, waitFor, type DbHandle } from '../../support/databases.ts';
import { fate, gqlCreateConnection, jobOf, waitJob } from './support.ts';

let gw: TestGateway;
let maria: DbHandle;
let pg: DbHandle;
const ROWS = 600;
const CITIES = ['Paris', 'Oslo', 'Lima', 'Kyiv'];
const source = Array.from({ length: ROWS }, (_, i) => ({
  id: i + 1, city: CITIES[i % 4]!, amount: ((i * 37) % 500 + (i % 7) / 4).toFixed(2), status: i % 3 === 0 ? 'refunded' : 'paid',
}));
const conf = (params: Record<string, unknown>) => ({ initiator: { role: 'local', party_id: 9999 }, role: { local: [9999] }, job_parameters: { common: { job_name: 'orders-etl' } }, component_parameters: { common: params } });

const FILTER_DSL = {
  components: {
    reader_0: { module: 'Reader', output: { data: ['data'] } },
    filter_0: { module: 'Filter', input: { data: { data: ['reader_0.data'] } }, output: { data: ['data'] } },
    writer_0: { module: 'Writer', input: { data: { data: ['filter_0.data'] } }, output: { data: ['data'] } },
  },
};
const FILTER_CONF = conf({
  reader_0: { table: { namespace: 'maria-src', name: 'orders' } },
  filter_0: { where: "amount > 250 and status = 'paid'" },
  writer_0: { table: { namespace: 'pg-dest.analytics', name: 'big_orders' }, mode: 'replace' },
});
let filterJob = '';

beforeAll(async () => {
  gw = await startTestGateway({ workerConcurrency: 4 });
  maria = await mariaDatabase(inject('mariaUrl'));
  pg = await pgDatabase(inject('pgUrl'));
  await maria.query('CREATE TABLE orders (id int PRIMARY KEY, city varchar(20) NOT NULL, amount decimal(10,2), status varchar(10))');
  for (let i = 0; i < ROWS; i += 200) {
    const part = source.slice(i, i + 200);
    await maria.query(`INSERT INTO orders VALUES ${part.map(() => '(?,?,?,?)').join(',')}`, part.flatMap((r) => [r.id, r.city, r.amount, r.status]));
  }
  await maria.query('CREATE TABLE slow (id int PRIMARY KEY, v int)');
  await maria.query(`INSERT INTO slow VALUES ${Array.from({ length: 3000 }, (_, i) => `(${i + 1}, ${i})`).join(',')}`);
  await gqlCreateConnection(gw.url, { name: 'maria-src', kind: 'MYSQL', host: maria.host, port: maria.port, user: maria.user, password: maria.password, database: maria.database });
  await gqlCreateConnection(gw.url, { name: 'pg-dest', kind: 'POSTGRES', host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database });
}, 120_000);

afterAll(async () => {
  await gw?.close();
  await maria?.close();
  await pg?.close();
});

describe('FATE-Flow v1 pipelines', () => {
  it('/v1/job/submit: Reader -> Filter -> Writer from MariaDB to PostgreSQL writes exactly the expected rows', async () => {
    const r = await fate(gw.url, '/v1/job/submit', { job_dsl: FILTER_DSL, job_runtime_conf: FILTER_CONF });
    expect(r.body).toMatchObject({ retcode: 0, retmsg: 'success' });
    filterJob = r.body.jobId!;
    expect(r.body.data.job_id).toBe(filterJob);
    const job = await waitJob(gw.url, filterJob, ['success']);
    expect(job.f_progress).toBe(100);
    const expected = source.filter((s) => Number(s.amount) > 250 && s.status === 'paid');
    const got = await pg.query('SELECT id, city, amount::text AS amount, status FROM analytics.big_orders ORDER BY id');
    expect(got).toEqual(expected);
  });

  it('/v1/job/query with the seed filters returns a list; /v1/job/config returns dsl and conf as sent', async () => {
    const all = await fate(gw.url, '/v1/job/query', { job_id: filterJob });
    expect(all.body.retcode).toBe(0);
    expect(Array.isArray(all.body.data)).toBe(true);
    const j = all.body.data[0];
    expect(j).toMatchObject({ f_job_id: filterJob, f_status: 'success', f_name: 'orders-etl', f_role: 'local', f_party_id: '9999', f_initiator_party_id: '9999', f_is_initiator: true });
    expect(j.f_dsl).toEqual(FILTER_DSL);
    expect(j.f_runtime_conf).toEqual(FILTER_CONF);
    const filters: Record<string, unknown> = {
      name: 'orders-etl', description: '', tag: '', role: 'local', party_id: '9999', roles: JSON.stringify({ local: [9999] }), initiator_party_id: '9999',
      is_initiator: 1, dsl: JSON.stringify(FILTER_DSL), runtime_conf: FILTER_CONF, run_ip: j.f_run_ip, status: 'success', current_steps: [], current_tasks: [],
      progress: 100, create_time: j.f_create_time, update_time: j.f_update_time, start_time: j.f_start_time, end_time: j.f_end_time, elapsed: j.f_elapsed,
    };
    for (const [k, v] of Object.entries(filters)) {
      const q = await fate(gw.url, '/v1/job/query', { [k]: v });
      expect(q.body.retcode, k).toBe(0);
      expect(q.body.data.map((x: any) => x.f_job_id), k).toContain(filterJob);
    }
    const none = await fate(gw.url, '/v1/job/query', { status: 'running', job_id: filterJob });
    expect(none.body).toEqual({ retcode: 0, retmsg: 'no job could be found', data: [] });
    const cfg = await fate(gw.url, '/v1/job/config', { job_id: filterJob });
    expect(cfg.body.retcode).toBe(0);
    expect(cfg.body.data).toMatchObject({ job_id: filterJob, dsl: FILTER_DSL, runtime_conf: FILTER_CONF });
    expect((await fate(gw.url, '/v1/job/config', { job_id: 'nope' })).body.retcode).toBe(101);
  });

  it('/v1/job/log and /v1/job/task/query', async () => {
    const log = await fate(gw.url, '/v1/job/log', { job_id: filterJob });
    expect(log.body.retcode).toBe(0);
    expect(log.body.data.lines.join('\n')).toMatch(/writer_0 wrote \d+ rows/);
    const tasks = await fate(gw.url, '/v1/job/task/query', { job_id: filterJob });
    expect(tasks.body.retcode).toBe(0);
    expect(tasks.body.data.map((t: any) => [t.f_component_name, t.f_status])).toEqual([['reader_0', 'success'], ['filter_0', 'success'], ['writer_0', 'success']]);
    const one = await fate(gw.url, '/v1/job/task/query', { job_id: filterJob, component_name: 'filter_0', status: 'success', role: 'local', party_id: '9999' });
    expect(one.body.data).toHaveLength(1);
    expect(one.body.data[0].f_component_parameters).toEqual({ module: 'Filter', FilterParam: { where: "amount > 250 and status = 'paid'" } });
  });

  it('/v1/tracking/*: data_view, metric/all, metrics, metric_data, parameters, output/model, output/data', async () => {
    const tr = { job_id: filterJob, role: 'local', party_id: 9999, component_name: 'filter_0' };
    const expectedOut = source.filter((s) => Number(s.amount) > 250 && s.status === 'paid').length;
    const view = await fate(gw.url, '/v1/tracking/job/data_view', { job_id: filterJob, role: 'local', party_id: 9999 });
    expect(view.body.retcode).toBe(0);
    expect(view.body.data.dataset).toEqual({ input: [{ component: 'reader_0', namespace: 'maria-src', name: 'orders' }], output: [{ component: 'writer_0', namespace: 'pg-dest.analytics', name: 'big_orders' }] });
    expect(view.body.data.model_summary.stats.rows_out).toMatchObject({ reader_0: ROWS, filter_0: expectedOut, writer_0: expectedOut });

    const all = await fate(gw.url, '/v1/tracking/component/metric/all', tr);
    expect(all.body.retcode).toBe(0);
    expect(Object.keys(all.body.data.stats).sort()).toEqual(['duration_ms', 'errors', 'lag_ms', 'rows_in', 'rows_out']);
    expect(all.body.data.stats.rows_in.data).toEqual([['total', ROWS]]);
    expect(all.body.data.stats.errors.data).toEqual([['total', 0]]);
    const names = await fate(gw.url, '/v1/tracking/component/metrics', tr);
    expect(names.body.data.stats.sort()).toEqual(['duration_ms', 'errors', 'lag_ms', 'rows_in', 'rows_out']);
    const md = await fate(gw.url, '/v1/tracking/component/metric_data', { ...tr, metric_namespace: 'stats', meric_name: 'rows_out' });
    expect(md.body).toMatchObject({ retcode: 0, data: [['total', expectedOut]], meta: { name: 'rows_out', metric_type: 'COUNTER' } });

    const params = await fate(gw.url, '/v1/tracking/component/parameters', tr);
    expect(params.body.data).toEqual({ module: 'Filter', FilterParam: { where: "amount > 250 and status = 'paid'" } });
    const model = await fate(gw.url, '/v1/tracking/component/output/model', tr);
    expect(model.body.retcode).toBe(0);
    expect(model.body.data.definition).toMatchObject({ name: 'filter_0', module: 'Filter', upstream: ['reader_0'], downstream: ['writer_0'] });
    expect(model.body.data.state.fateStatus).toBe('success');
    expect(model.body.meta.module_name).toBe('Filter');
    const data = await fate(gw.url, '/v1/tracking/component/output/data', tr);
    expect(data.body.retcode).toBe(0);
    expect(data.body.meta.header).toEqual([['id', 'city', 'amount', 'status']]);
    expect(data.body.meta.total).toEqual([expectedOut]);
    const first = source.find((s) => Number(s.amount) > 250 && s.status === 'paid')!;
    expect(data.body.data[0][0]).toEqual([first.id, first.city, first.amount, first.status]);
    expect(data.body.data[0].length).toBe(Math.min(100, expectedOut));

    const dep = await fate(gw.url, '/v1/pipeline/dag/dependency', { job_id: filterJob, role: 'local', party_id: 9999 });
    expect(dep.body.data).toEqual({
      component_list: ['reader_0', 'filter_0', 'writer_0'],
      dependencies: { filter_0: [{ component_name: 'reader_0', type: 'data', up_output_info: ['data', 0] }], writer_0: [{ component_name: 'filter_0', type: 'data', up_output_info: ['data', 0] }] },
      component_module: { reader_0: 'Reader', filter_0: 'Filter', writer_0: 'Writer' },
      component_need_run: { reader_0: true, filter_0: true, writer_0: true },
    });
  });

  it('a branching DAG with Map and Aggregate', async () => {
    const dsl = {
      components: {
        reader_0: { module: 'Reader', output: { data: ['data'] } },
        map_0: { module: 'Map', input: { data: { data: ['reader_0.data'] } }, output: { data: ['data'] } },
        agg_0: { module: 'Aggregate', input: { data: { data: ['map_0.data'] } }, output: { data: ['data'] } },
        writer_agg: { module: 'Writer', input: { data: { data: ['agg_0.data'] } } },
        writer_map: { module: 'Writer', input: { data: { data: ['map_0.data'] } } },
      },
    };
    const r = await fate(gw.url, '/v1/job/submit', {
      job_dsl: dsl,
      job_runtime_conf: conf({
        reader_0: { table: { namespace: 'maria-src', name: 'orders' } },
        map_0: { select: ['id', 'city', 'amount'], rename: { city: 'town' }, compute: { cents: 'round(amount * 100)' } },
        agg_0: { group_by: ['town'], aggregates: { orders: 'count(*)', total: 'sum(amount)', biggest: 'max(amount)', mean_cents: 'avg(cents)' } },
        writer_agg: { table: { namespace: 'pg-dest.analytics', name: 'by_town' } },
        writer_map: { table: { namespace: 'pg-dest', name: 'mapped' } },
      }),
    });
    expect(r.body.retcode).toBe(0);
    await waitJob(gw.url, r.body.jobId!, ['success']);
    const got = await pg.query('SELECT town, orders::int AS orders, total::text AS total, biggest::text AS biggest FROM analytics.by_town ORDER BY town');
    const expected = CITIES.slice().sort().map((town) => {
      const rows = source.filter((s) => s.city === town);
      const cents = rows.reduce((a, s) => a + Math.round(Number(s.amount) * 100), 0);
      return { town, orders: rows.length, total: (cents / 100).toFixed(2), biggest: rows.map((s) => Number(s.amount)).reduce((a, b) => Math.max(a, b)).toFixed(2) };
    });
    expect(got).toEqual(expected);
    const mapped = await pg.query('SELECT count(*)::int AS n, sum(cents)::bigint AS c FROM public.mapped');
    expect(mapped[0]).toEqual({ n: ROWS, c: String(source.reduce((a, s) => a + Math.round(Number(s.amount) * 100), 0)) });
  });

  it('/v1/job/stop: a running job stops, its tasks stop, the status is canceled', async () => {
    const r = await fate(gw.url, '/v1/job/submit', {
      job_dsl: { components: { reader_0: { module: 'Reader' }, writer_0: { module: 'Writer', input: { data: { data: ['reader_0.data'] } } } } },
      job_runtime_conf: conf({ reader_0: { table: { namespace: 'maria-src', name: 'slow' }, rows_per_second: 200 }, writer_0: { table: { namespace: 'pg-dest', name: 'never' } } }),
    });
    const jobId = r.body.jobId!;
    await waitFor(() => fate(gw.url, '/v1/job/task/query', { job_id: jobId, component_name: 'reader_0' }), (t) => t.body.data?.[0]?.f_status === 'running' && t.body.data[0].f_progress.rowsOut > 0, 20_000, 'reader running');
    const stop = await fate(gw.url, '/v1/job/stop', { job_id: jobId });
    expect(stop.body.retcode).toBe(0);
    expect((await jobOf(gw.url, jobId)).f_status).toBe('canceled');
    // The writer had not started: canceled at once. The reader is canceled by its worker once it has
    // really stopped (the stop notice at once, its own check of the job within 2 s at worst), so from
    // then on its progress is final, and far from the end.
    const tasks = await waitFor(async () => (await fate(gw.url, '/v1/job/task/query', { job_id: jobId })).body.data,
      (ts: any[]) => ts.every((t) => t.f_status === 'canceled'), 15_000, 'tasks canceled');
    expect(tasks.map((t: any) => t.f_component_name)).toEqual(['reader_0', 'writer_0']);
    const reader = tasks[0];
    expect(reader.f_progress.rowsOut).toBeLessThan(3000);
    expect(reader.f_progress.endedAt).toBeGreaterThan(0);
    expect(await pg.query("SELECT to_regclass('public.never') AS t")).toEqual([{ t: null }]);
    expect((await fate(gw.url, '/v1/job/stop', { job_id: jobId })).body.retcode).toBe(0);
  });

  it('/v1/model/load, /v1/model/online, /v1/model/version', async () => {
    const load = await fate(gw.url, '/v1/model/load', { initiator: { role: 'local', party_id: 9999 }, role: { local: [9999] }, gen_table_info: true, model: { namespace: 'orders-etl', name: 'big-orders', version: 'v1', job_id: filterJob } });
    expect(load.body).toMatchObject({ retcode: 0, jobId: filterJob, data: { namespace: 'orders-etl', name: 'big-orders', version: 'v1', status: 'loaded' } });
    const v2 = await fate(gw.url, '/v1/model/load', { role: { local: [9999] }, model: { namespace: 'orders-etl', name: 'big-orders', version: 'v2', job_dsl: FILTER_DSL, job_runtime_conf: conf({ ...FILTER_CONF.component_parameters.common, writer_0: { table: { namespace: 'pg-dest.analytics', name: 'big_orders_v2' } } }) } });
    expect(v2.body.retcode).toBe(0);
    const dup = await fate(gw.url, '/v1/model/load', { role: {}, model: { namespace: 'orders-etl', name: 'big-orders', version: 'v2', job_id: filterJob } });
    expect(dup.body.retcode).toBe(103);
    const versions = await fate(gw.url, '/v1/model/version', { namespace: 'orders-etl' });
    expect(versions.body.retcode).toBe(0);
    expect(versions.body.data.map((m: any) => m.version)).toEqual(['v2', 'v1']);
    expect(versions.body.data[1].job_id).toBe(filterJob);
    const online = await fate(gw.url, '/v1/model/online', { servings: [], role: { local: [9999] }, local: { role: 'local', party_id: 9999 }, model: { namespace: 'orders-etl', name: 'big-orders' } });
    expect(online.body).toMatchObject({ retcode: 0, data: { namespace: 'orders-etl', version: 'v2' } });
    await waitJob(gw.url, online.body.jobId!, ['success']);
    expect((await pg.query('SELECT count(*)::int AS n FROM analytics.big_orders_v2'))[0].n).toBe(source.filter((s) => Number(s.amount) > 250 && s.status === 'paid').length);
    expect((await fate(gw.url, '/v1/model/version', { namespace: 'nothing-here' })).body).toMatchObject({ retcode: 0, data: [] });
  });

  it('bad input answers the FATE envelope with the right retcode', async () => {
    const cyc = await fate(gw.url, '/v1/job/submit', {
      job_dsl: { components: { a: { module: 'Filter', input: { data: { data: ['b.data'] } } }, b: { module: 'Map', input: { data: { data: ['a.data'] } } } } },
      job_runtime_conf: conf({ a: { where: 'x > 1' } }),
    });
    expect(cyc.status).toBe(200);
    expect(cyc.body.retcode).toBe(101);
    expect(cyc.body.retmsg).toMatch(/cycle: (a -> b -> a|b -> a -> b)/);
    const unknownInput = await fate(gw.url, '/v1/job/submit', { job_dsl: { components: { f: { module: 'Filter', input: { data: { data: ['ghost.data'] } } } } }, job_runtime_conf: conf({}) });
    expect(unknownInput.body).toMatchObject({ retcode: 101 });
    expect(unknownInput.body.retmsg).toMatch(/component f: .*ghost/);
    const unknownModule = await fate(gw.url, '/v1/job/submit', { job_dsl: { components: { s: { module: 'HeteroLR' } } }, job_runtime_conf: conf({}) });
    expect(unknownModule.body.retmsg).toMatch(/component s: unknown module "HeteroLR"/);
    const badNs = await fate(gw.url, '/v1/job/submit', { job_dsl: FILTER_DSL, job_runtime_conf: conf({ ...FILTER_CONF.component_parameters.common, reader_0: { table: { namespace: 'nowhere', name: 'x' } } }) });
    expect(badNs.body).toMatchObject({ retcode: 102 });
    expect(badNs.body.retmsg).toMatch(/component reader_0: namespace "nowhere"/);
    expect((await fate(gw.url, '/v1/job/submit', { job_dsl: FILTER_DSL })).body).toEqual({ retcode: 101, retmsg: 'required parameters are missing: job_runtime_conf' });
    for (const path of ['/v1/job/stop', '/v1/job/log', '/v1/tracking/job/data_view', '/v1/tracking/component/metric/all', '/v1/tracking/component/metrics', '/v1/tracking/component/parameters', '/v1/tracking/component/output/model', '/v1/tracking/component/output/data', '/v1/pipeline/dag/dependency']) {
      const r = await fate(gw.url, path, { role: 'local', party_id: 9999, component_name: 'reader_0' });
      expect(r.body.retcode, path).toBe(101);
      expect(r.body.retmsg, path).toMatch(/required parameters are missing: job_id/);
    }
    expect((await fate(gw.url, '/v1/job/stop', { job_id: '19990101000000000000000' })).body.retcode).toBe(102);
    expect((await fate(gw.url, '/v1/job/stop', { job_id: filterJob })).body.retcode).toBe(103);
    expect((await fate(gw.url, '/v1/tracking/component/parameters', { job_id: filterJob, component_name: 'nope' })).body.retcode).toBe(102);
    const notJson = await fetch(`${gw.url}/v1/job/submit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' });
    expect((await notJson.json() as any).retcode).toBe(101);
    const get = await fetch(`${gw.url}/v1/job/query`);
    expect(get.status).toBe(405);
  });

  it('GraphQL equivalents: pipelines, components with metrics and output, dependency, tables, model versions', async () => {
    const r = await gql(gw.url, `query($f: PipelineFilterInput) { pipelines(filter: $f) { jobId fateStatus status progress dependency
      components { name module fateStatus upstream metrics { namespace name data } output { name header total sample } } logs { message } } }`, { f: { jobId: filterJob } });
    expect(r.body.errors).toBeUndefined();
    const p = r.body.data.pipelines[0];
    expect(p).toMatchObject({ jobId: filterJob, fateStatus: 'success', status: 'COMPLETE', progress: 100 });
    expect(p.dependency.component_list).toEqual(['reader_0', 'filter_0', 'writer_0']);
    const filter = p.components.find((c: any) => c.name === 'filter_0');
    expect(filter).toMatchObject({ module: 'Filter', fateStatus: 'success', upstream: ['reader_0'] });
    expect(filter.metrics.find((m: any) => m.name === 'rows_in').data).toEqual([['total', ROWS]]);
    expect(filter.output[0].header).toEqual(['id', 'city', 'amount', 'status']);
    const t = await gql(gw.url, 'query { dataTable(namespace: "pg-dest.analytics", tableName: "big_orders") { exist count key header partitions } modelVersions(namespace: "orders-etl") { version } }');
    expect(t.body.errors).toBeUndefined();
    expect(t.body.data.dataTable).toMatchObject({ exist: true, key: ['id'], header: ['id', 'city', 'amount', 'status'], partitions: 1 });
    const bad = await gql(gw.url, 'mutation($i: SubmitPipelineInput!) { submitPipeline(input: $i) { jobId } }', { i: { dsl: { components: { x: { module: 'Nope' } } }, runtimeConf: {} } });
    expect(bad.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', component: 'x' } });
  });

  it('serves an OpenAPI document of every route', async () => {
    const doc = await (await fetch(`${gw.url}/v1/fate-flow/openapi.json`)).json() as { paths: Record<string, unknown> };
    for (const p of ['/v1/data/upload', '/v1/data/download', '/v1/job/submit', '/v1/job/stop', '/v1/job/query', '/v1/job/config', '/v1/job/log', '/v1/job/task/query',
      '/v1/tracking/job/data_view', '/v1/tracking/component/metric/all', '/v1/tracking/component/metrics', '/v1/tracking/component/metric_data',
      '/v1/tracking/component/parameters', '/v1/tracking/component/output/model', '/v1/tracking/component/output/data', '/v1/pipeline/dag/dependency',
      '/v1/model/load', '/v1/model/online', '/v1/model/version', '/v1/table/table_info']) expect(doc.paths[p], p).toBeDefined();
  });
});
