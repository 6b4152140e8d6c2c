/**
 * Heartbeats (issue 15 item 3): a PostgreSQL slot whose tables see no writes
 * must not hold the WAL other databases write. Two jobs on idle tables, one
 * with the default heartbeat (here 1 s) and one with heartbeats off; another
 * database then writes over 200 MB of WAL. The first slot's retained WAL
 * stays bounded, the second's holds all of it; both jobs still apply what
 * their tables receive afterwards. Retained log is in job.metrics and
 * /metrics, on both source engines.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, useReplicationSuite, waitJob } from '../../support/replication.ts';

const MB = 1024 * 1024;

describe('heartbeats keep idle slots from retaining WAL', () => {
  const { gw, openUniq } = useReplicationSuite();

  it('PostgreSQL: bounded with heartbeats, all of it without; no change lost', async () => {
    const mk = (p: string) => openUniq('postgres', p);
    const [srcA, dstA, srcB, dstB, other] = [await mk('hb_src'), await mk('hb_dst'), await mk('nohb_src'), await mk('nohb_dst'), await mk('hb_other')];
    for (const s of [srcA, srcB]) await s.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
    const jobA = await createJob(gw.url, { name: uniq('hb'), type: 'SYNCHRONOUS', source: endpoint(srcA), destination: endpoint(dstA), tables: [{ schema: 'public', tables: ['t'] }], heartbeatIntervalSeconds: 1 });
    const jobB = await createJob(gw.url, { name: uniq('nohb'), type: 'SYNCHRONOUS', source: endpoint(srcB), destination: endpoint(dstB), tables: [{ schema: 'public', tables: ['t'] }], heartbeatIntervalSeconds: 0 });
    for (const j of [jobA, jobB]) await waitJob(gw.url, j.id, (x) => x.progress.phase === 'streaming', 60_000, 'streaming');
    for (const s of [srcA, srcB]) await s.query(`INSERT INTO t VALUES (1, 'before')`);
    for (const d of [dstA, dstB]) await waitFor(() => d.query<{ n: number }>('SELECT count(*)::int AS n FROM public.t'), (r) => r[0]!.n === 1, 30_000, 'first row');

    const retained = async (db: DbHandle): Promise<number> => {
      const r = await other.query<{ b: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS b FROM pg_replication_slots WHERE database = $1`, [db.database]);
      return Number(r[0]!.b);
    };
    // Over 200 MB of WAL in a database neither job captures.
    await other.query('CREATE TABLE big (id int, pad text)');
    for (let i = 0; i < 4; i++) await other.query(`INSERT INTO big SELECT g, repeat(md5(g::text), 32) FROM generate_series(${i * 50_000 + 1}, ${(i + 1) * 50_000}) g`);
    const written = Number((await other.query<{ b: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS b`))[0]!.b);
    expect(written).toBeGreaterThan(200 * MB);

    // A checkpoint logs the running transactions the slot needs to move its restart point; heartbeats confirm past it.
    let a = Infinity;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await other.query('CHECKPOINT');
      await new Promise((r) => setTimeout(r, 1500));
      a = await retained(srcA);
      if (a < 32 * MB) break;
    }
    const b = await retained(srcB);
    console.log(`heartbeat: slot with heartbeats retains ${(a / MB).toFixed(1)} MB, without ${(b / MB).toFixed(1)} MB`);
    expect(a).toBeLessThan(32 * MB);
    expect(b).toBeGreaterThan(200 * MB);

    // Nothing lost: both still apply what their tables receive.
    for (const s of [srcA, srcB]) await s.query(`INSERT INTO t VALUES (2, 'after')`);
    for (const d of [dstA, dstB]) await waitFor(() => d.query<{ n: number }>('SELECT count(*)::int AS n FROM public.t'), (r) => r[0]!.n === 2, 30_000, 'row after');
    // Retained WAL in job.metrics and /metrics, read from the source.
    const m = await waitFor(async () => (await gql(gw.url, `query($id: ID!) { job(id: $id) { name metrics { retainedLogBytes } } }`, { id: jobB.id })).body.data.job, (j: any) => j.metrics.retainedLogBytes > 200 * MB, 15_000, 'retainedLogBytes');
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text.split('\n').some((l) => l.startsWith(`tributary_job_retained_log_bytes{job="${m.name}"}`))).toBe(true);
    for (const j of [jobA, jobB]) await gql(gw.url, `mutation { deleteJob(id: "${j.id}") }`);
  }, 180_000);

  it('MariaDB: the binary log after the capture position is in job.metrics', async () => {
    const src = await openUniq('mysql', 'hb_msrc');
    const dst = await openUniq('postgres', 'hb_mdst');
    await src.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
    const job = await createJob(gw.url, { name: uniq('hbm'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database, tables: ['t'] }] });
    await waitJob(gw.url, job.id, (x) => x.progress.phase === 'streaming', 60_000, 'streaming');
    await src.query(`INSERT INTO t VALUES (1, 'x')`);
    const m = await waitFor(async () => (await gql(gw.url, `query($id: ID!) { job(id: $id) { metrics { retainedLogBytes } } }`, { id: job.id })).body.data.job.metrics, (x: any) => typeof x.retainedLogBytes === 'number', 30_000, 'retainedLogBytes');
    expect(m.retainedLogBytes).toBeGreaterThanOrEqual(0);
    expect(m.retainedLogBytes).toBeLessThan(64 * MB);
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  }, 120_000);
});
