/**
 * Chaos: the source loses what a running job still needs. The binlog a
 * MariaDB capture must continue from is purged, or a PostgreSQL job's slot is
 * dropped, while the job is RUNNING (its worker is down at that moment, as
 * after a crash, so the capture must reconnect to the lost position). The job
 * must fail with a message naming the purged binlog / dropped slot, never
 * silently skip ahead. With the default `onLogLoss: FAIL` (these jobs set
 * none) Tributary does not re-snapshot by itself: resuming from scratch is
 * deleting and re-creating the job (into the same destination, with writes
 * going on), checked here to converge. `onLogLoss: RESNAPSHOT`:
 * log-loss-resnapshot.test.ts.
 */
import { describe, expect, it, inject } from 'vitest';
import { gql } from '../support/gateway.ts';
import { mariaDatabase, uniq, type DbHandle } from '../support/databases.ts';
import { createJob, endpoint, getJob, ITEMS, qname } from '../support/replication.ts';
import { checkFeed, expectSameRows, LEDGER, pgHandle, report, sleep, startLedger, useChaosSuite, waitFor } from './support.ts';

describe('chaos: binlog purged / slot dropped under a running job', () => {
  const { gw, procs, maria, handles } = useChaosSuite({ mariadb: true });

  /** Job streaming with the ledger applied up to `n` rows; returns the job and the ledger's last seq. */
  const jobInput = (name: string, src: DbHandle, dst: DbHandle, schema: string) => ({
    name, type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema }], parallelWorkers: 2, chunkRows: 1000,
    ...(dst.kind === 'mysql' ? { rename: { schemas: { [schema]: dst.database } } } : {}),
  });
  const dstSchema = (dst: DbHandle, schema: string) => (dst.kind === 'mysql' ? dst.database : schema);

  async function streaming(src: DbHandle, dst: DbHandle, schema: string, name: string) {
    const job = await createJob(gw.url, jobInput(name, src, dst, schema));
    await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'streaming' && j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status === 'running'), 120_000, 'streaming');
    const w = startLedger(src);
    await sleep(1500);
    const last = await w.stop();
    const dstQ = (t: string) => qname(dst, dstSchema(dst, schema), t);
    await expectSameRows(src, dst, dstQ, { items: true });
    return { job, last, dstQ };
  }

  async function failedWith(jobId: string, re: RegExp): Promise<any> {
    const j = await waitFor(() => getJob(gw.url, jobId), (x) => x.status === 'FAILED', 90_000, 'job FAILED');
    expect(j.error).toMatch(re);
    return j;
  }

  /**
   * Resume from scratch as the error message says: delete the job and create it again, into the same
   * destination, while the ledger keeps being written (also during the new snapshot: the keyless ledger's
   * copy and the stream overlap there, see docs/consistency.md); converge with no row missing or twice.
   */
  async function fromScratch(job: any, src: DbHandle, dst: DbHandle, schema: string, last: number) {
    const dstQ = (t: string) => qname(dst, dstSchema(dst, schema), t);
    const del = await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    expect(del.body.errors, JSON.stringify(del.body.errors)).toBeUndefined();
    const w = startLedger(src, { from: last });
    const again = await createJob(gw.url, jobInput(job.name, src, dst, schema));
    await waitFor(() => getJob(gw.url, again.id), (j) => j.progress.phase === 'streaming', 120_000, 're-snapshot done');
    await sleep(1500);
    const end = await w.stop();
    const rows = await expectSameRows(src, dst, dstQ, { items: true });
    const feed = await checkFeed(gw.config.redisUrl, gw.config.queuePrefix, again.name, end, 'feed');
    expect([feed.missing.length, feed.duplicated.length, rows.lost, rows.duplicated]).toEqual([0, 0, 0, 0]);
    await gql(gw.url, `mutation { stopJob(id: "${again.id}") { status } }`);
    return { rows, feed, end };
  }

  it('MariaDB: PURGE BINARY LOGS past the capture position fails the job naming the binlog', async () => {
    let worker = await procs.worker();
    const src = await mariaDatabase(maria.url, uniq('purge_src')); handles.push(src);
    const dst = await pgHandle(inject('pgUrl'), uniq('purge_dst')); handles.push(dst);
    await src.query(ITEMS.create(src)); await src.query(ITEMS.fill(src, 3000)); await src.query(LEDGER.create(src));
    const { job, last, dstQ } = await streaming(src, dst, src.database, uniq('chaos_purge'));
    const before = await checkFeed(gw.config.redisUrl, gw.config.queuePrefix, job.name, last);
    expect(before.missing).toEqual([]);

    await worker.kill('SIGKILL');
    // Written while no capture runs: these exist only in the binlog that is then purged.
    const w = startLedger(src, { from: last }); await sleep(800); const lost = await w.stop();
    const [{ File: purgedFile }] = await src.query<{ File: string }>('SHOW MASTER STATUS');
    await src.query('FLUSH BINARY LOGS');
    const [{ File: current }] = await src.query<{ File: string }>('SHOW MASTER STATUS');
    // The killed worker's binlog dump thread lingers until the server notices, and a file a dump thread
    // reads is not purged: end those threads, then purge until only the current file is left.
    await waitFor(async () => {
      for (const t of await src.query<{ ID: number }>("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")) {
        await src.query(`KILL ${t.ID}`).catch(() => undefined);
      }
      await src.query(`PURGE BINARY LOGS TO '${current}'`);
      return (await src.query<{ Log_name: string }>('SHOW BINARY LOGS')).map((r) => r.Log_name);
    }, (logs) => logs.length === 1 && logs[0] === current, 30_000, `binary logs purged to ${current}`);
    worker = await procs.worker();
    const failed = await failedWith(job.id, /binlog purged/);
    expect(failed.error).toContain(purgedFile);
    // Nothing past the purge was applied, and nothing before it is missing or doubled.
    expect(await LEDGER.rows(dst, dstQ('ledger'))).toEqual((await LEDGER.rows(src, 'ledger')).slice(0, last));
    const resumed = await fromScratch(job, src, dst, src.database, lost);
    report('binlog purged under a running job', 1, 0, 0,
      `FAILED: "${String(failed.error).slice(0, 120)}..."; ${lost - last} ledger rows written before the purge reached the destination only through the re-snapshot; then ${resumed.rows.ledger} ledger rows equal`);
    await worker.kill('SIGTERM');
  });

  it('PostgreSQL: dropping the slot fails the job naming the slot (no silent new slot)', async () => {
    let worker = await procs.worker();
    const src = await pgHandle(inject('pgUrl'), uniq('slot_src')); handles.push(src);
    const dst = await mariaDatabase(inject('mariaUrl'), uniq('slot_dst')); handles.push(dst);
    await src.query(ITEMS.create(src)); await src.query(ITEMS.fill(src, 3000)); await src.query(LEDGER.create(src));
    const { job, last, dstQ } = await streaming(src, dst, 'public', uniq('chaos_slot'));
    await worker.kill('SIGKILL');
    const slot = `tributary_${job.id.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
    await waitFor(async () => {
      await src.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
      await src.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      return (await src.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).length;
    }, (n) => n === 0, 30_000, `slot ${slot} dropped`);
    const w = startLedger(src, { from: last }); await sleep(800); const lost = await w.stop();
    worker = await procs.worker();
    const failed = await failedWith(job.id, new RegExp(`replication slot ${slot} was dropped`));
    expect((await src.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).length).toBe(0);
    expect(await LEDGER.rows(dst, dstQ('ledger'))).toEqual((await LEDGER.rows(src, 'ledger')).slice(0, last));
    const resumed = await fromScratch(job, src, dst, 'public', lost);
    report('replication slot dropped under a running job', 1, 0, 0,
      `FAILED: "${String(failed.error).slice(0, 120)}..."; then re-created job converged, ${resumed.rows.ledger} ledger rows equal`);
    await worker.kill('SIGTERM');
  });
});
