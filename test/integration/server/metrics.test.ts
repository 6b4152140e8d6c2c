/**
 * /metrics for operators (issue 14 item 5, issue 12's "a job that cannot keep
 * up must say so"): requests are labelled by the matched route, with one
 * series for every unknown URL; each running job has lag, backlog and
 * last-captured-commit gauges; job.metrics carries the same backlog and
 * commit time; lag over LAG_WARN_SECONDS is written to the job log, and so is
 * the catch-up.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import pg from 'pg';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, waitJob } from '../../support/replication.ts';

const scrape = async (url: string): Promise<string> => (await fetch(`${url}/metrics`)).text();
const series = (text: string, name: string): string[] => text.split('\n').filter((l) => l.startsWith(`${name}{`));

describe('/metrics and lag reporting', () => {
  let gw: TestGateway;
  const handles: DbHandle[] = [];
  beforeAll(async () => { gw = await startTestGateway({ lagWarnSeconds: 1 }); });
  afterAll(async () => {
    await gw?.close();
    for (const h of handles) await h.close().catch(() => undefined);
  });

  it('labels requests by matched route; unknown URLs share one series', async () => {
    for (let i = 0; i < 5; i++) expect((await fetch(`${gw.url}/probe-${i}`)).status).toBe(404);
    await gql(gw.url, '{ __typename }');
    await fetch(`${gw.url}/graphiql`);
    await fetch(`${gw.url}/health`);
    const text = await scrape(gw.url);
    const routes = new Set(series(text, 'tributary_http_request_duration_seconds_count').map((l) => /route="([^"]*)"/.exec(l)?.[1]));
    expect(routes).toContain('/graphql');
    expect(routes).toContain('/graphiql');
    expect(routes).toContain('/health');
    expect(routes).toContain('unmatched');
    expect([...routes].filter((r) => r?.startsWith('/probe'))).toEqual([]);
    expect([...routes].filter((r) => r === '/')).toEqual([]);
    const unmatched = series(text, 'tributary_http_request_duration_seconds_count').find((l) => l.includes('route="unmatched"') && l.includes('method="GET"'));
    expect(Number(unmatched?.split(' ').at(-1))).toBeGreaterThanOrEqual(5);
  });

  it('a job held back shows backlog and lag in job.metrics, the per-job gauges and its log; then catches up', async () => {
    const src = await pgDatabase(inject('pgUrl'), uniq('mx_src')); handles.push(src);
    const dst = await pgDatabase(inject('pgUrl'), uniq('mx_dst')); handles.push(dst);
    await src.query(`CREATE TABLE t (id int PRIMARY KEY, v text)`);
    const name = uniq('lagging');
    const job = await createJob(gw.url, {
      name, type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public', tables: ['t'] }],
    });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
    await src.query(`INSERT INTO t VALUES (0, 'first')`);
    await waitFor(() => dst.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.t`), (r) => r[0]!.n === 1, 30_000, 'first row');

    // Hold the destination table: apply blocks on the lock while the source commits on.
    const u = new URL(inject('pgUrl')); u.pathname = `/${dst.database}`;
    const locker = new pg.Client({ connectionString: u.toString() });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE');
    const t0 = Date.now();
    for (let i = 1; i <= 5; i++) await src.query(`INSERT INTO t VALUES (${i}, 'held')`);
    const q = `query($id: ID!) { job(id: $id) { metrics { lagMs backlog lastCommitAt changesCaptured } } }`;
    const held = await waitFor(async () => (await gql(gw.url, q, { id: job.id })).body.data.job.metrics, (m: any) => m.backlog >= 1 && m.lastCommitAt, 15_000, 'backlog');
    expect(Math.abs(Date.parse(held.lastCommitAt) - Date.now())).toBeLessThan(15_000);
    const text = await scrape(gw.url);
    const backlog = series(text, 'tributary_job_backlog_transactions').find((l) => l.includes(`job="${name}"`));
    expect(Number(backlog?.split(' ').at(-1))).toBeGreaterThanOrEqual(1);
    expect(series(text, 'tributary_job_last_captured_commit_timestamp_seconds').some((l) => l.includes(`job="${name}"`))).toBe(true);
    while (Date.now() - t0 < 2500) await new Promise((r) => setTimeout(r, 100));
    await locker.query('ROLLBACK');
    await locker.end();

    await waitFor(() => dst.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.t`), (r) => r[0]!.n === 6, 30_000, 'held rows');
    const logs = async () => (await gql(gw.url, `query($id: ID!) { job(id: $id) { logs(last: 50) { level message } } }`, { id: job.id })).body.data.job.logs as { level: string; message: string }[];
    const warned = await waitFor(logs, (l) => l.some((x) => x.level === 'warn' && /behind the source .*LAG_WARN_SECONDS=1/.test(x.message)), 15_000, 'lag warning');
    expect(warned.find((x) => x.level === 'warn' && /behind/.test(x.message))!.message).toMatch(/transaction\(s\) captured and not yet applied/);
    await waitFor(logs, (l) => l.some((x) => x.level === 'info' && /apply caught up/.test(x.message)), 15_000, 'caught-up line');
    // Caught up and idle: lag 0 and an empty backlog, in GraphQL and in the gauges.
    const idle = await waitFor(async () => (await gql(gw.url, q, { id: job.id })).body.data.job.metrics, (m: any) => m.lagMs === 0 && m.backlog === 0, 15_000, 'lag 0');
    expect(idle.changesCaptured).toBeGreaterThanOrEqual(6);
    const after = await scrape(gw.url);
    expect(series(after, 'tributary_job_lag_seconds').find((l) => l.includes(`job="${name}"`))).toMatch(/ 0$/);

    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    // A job that is gone leaves no series behind.
    expect(series(await scrape(gw.url), 'tributary_job_lag_seconds').some((l) => l.includes(`job="${name}"`))).toBe(false);
  });
});
