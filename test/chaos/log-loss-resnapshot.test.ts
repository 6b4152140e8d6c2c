/**
 * Chaos: the source loses what a running job still needs, and the job was
 * created with `onLogLoss: RESNAPSHOT`. The binlog a MariaDB capture must
 * continue from is purged, or a PostgreSQL job's slot is dropped, while the
 * job is RUNNING (its worker is down then, as after a crash). Writers keep
 * inserting, updating and deleting before, during the loss (those changes
 * exist only in the lost log, some are deletes of known rows) and throughout
 * the job's own re-snapshot. The job must say why it re-snapshots, stay
 * RUNNING, and end with the destination equal to the source row by row (the
 * keyless ledger: no row missing or twice); its feed holds a gap marker that
 * readers from before the loss get SNAPSHOT_TOO_OLD from. The default
 * (FAIL) is log-loss.test.ts.
 */
import { Redis } from 'ioredis';
import { describe, expect, it, inject } from 'vitest';
import { openFeed } from '../../src/replication/feed/feed-registry.ts';
import { SnapshotTooOldError } from '../../src/replication/feed/change-feed.ts';
import { gql } from '../support/gateway.ts';
import { mariaDatabase, uniq, type DbHandle } from '../support/databases.ts';
import { createJob, endpoint, getJob, ITEMS, qname, startWriter } from '../support/replication.ts';
import { checkFeed, expectSameRows, LEDGER, pgHandle, report, sleep, startLedger, useChaosSuite, waitFor } from './support.ts';

const ROWS = 3000;

describe('chaos: binlog purged / slot dropped under a running job with onLogLoss: RESNAPSHOT', () => {
  const { gw, procs, maria, handles } = useChaosSuite({ mariadb: true });

  const dstSchema = (dst: DbHandle, schema: string) => (dst.kind === 'mysql' ? dst.database : schema);
  const jobInput = (name: string, src: DbHandle, dst: DbHandle, schema: string) => ({
    name, type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema }], parallelWorkers: 2, chunkRows: 1000,
    onLogLoss: 'RESNAPSHOT',
    ...(dst.kind === 'mysql' ? { rename: { schemas: { [schema]: dst.database } } } : {}),
  });
  const jobState = async (id: string) => {
    const r = await gql(gw.url, `query($id: ID!) { job(id: $id) { status statusReason error progress { phase } tasks { kind status } logs(last: 50) { level message } } }`, { id });
    if (r.body.errors) throw new Error(JSON.stringify(r.body.errors));
    return r.body.data.job;
  };

  /**
   * The whole case: stream with writers on, kill the worker, write (and delete known rows) while
   * nothing captures, lose the log, restart the worker, and check the job re-snapshots by itself.
   */
  async function lossAndResnapshot(src: DbHandle, dst: DbHandle, schema: string, loseLog: (jobId: string) => Promise<string>, expectReason: RegExp) {
    let worker = await procs.worker();
    await src.query(ITEMS.create(src)); await src.query(ITEMS.fill(src, ROWS)); await src.query(LEDGER.create(src));
    const dstQ = (t: string) => qname(dst, dstSchema(dst, schema), t);
    const job = await createJob(gw.url, jobInput(uniq('chaos_resnap'), src, dst, schema));
    await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'streaming' && j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status === 'running'), 120_000, 'streaming');
    // Streaming works before the loss: written, then compared with the writers paused.
    let items = startWriter(src, 'items', { firstNewId: ROWS + 1, maxId: ROWS, durationMs: 600_000, seed: 11 });
    let ledger = startLedger(src);
    await sleep(1500);
    const first = await items.stop();
    await expectConverged(src, dst, dstQ, 'before the loss', await ledger.stop());
    const before = await getJob(gw.url, job.id);
    const oldSeq = before.metrics.capturedSequence as string;
    expect(oldSeq).toBeTruthy();
    // From here on the writers run until the end: through the loss and the whole re-snapshot.
    items = startWriter(src, 'items', { firstNewId: ROWS + 1 + first.inserts, maxId: ROWS, durationMs: 600_000, seed: 12 });
    ledger = startLedger(src, { from: ledger.last });
    try {
      await sleep(1000);
      await worker.kill('SIGKILL');
      // Written while no capture runs: these exist only in the log that is then lost. The deletes must reach the
      // destination through the re-snapshot, which copies rows: the destination tables are emptied first.
      await sleep(800);
      await src.query('DELETE FROM items WHERE id BETWEEN 100 AND 160');
      await src.query(`UPDATE items SET note = 'lost window' WHERE id BETWEEN 200 AND 260`);
      const lost = await loseLog(job.id);
      worker = await procs.worker();

      const j = await waitFor(() => jobState(job.id), (x) => x.status !== 'RUNNING' || expectReason.test(x.statusReason ?? ''), 90_000, 're-snapshot started');
      expect(j.status, JSON.stringify(j.error)).toBe('RUNNING');
      expect(j.statusReason).toContain(lost);
      await waitFor(() => jobState(job.id), (x) => x.status !== 'RUNNING' || (x.progress.phase === 'streaming' && x.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status === 'running')), 180_000, 're-snapshot done');
      await sleep(1500);
    } finally {
      await items.stop().catch(() => undefined);
      await ledger.stop().catch(() => undefined);
    }
    const stats = items.stats;
    const last = ledger.last;
    const after = await jobState(job.id);
    expect(after.status, JSON.stringify(after.error)).toBe('RUNNING');
    const logs = after.logs.map((l: any) => l.message).join('\n');
    expect(logs).toMatch(/re-snapshot: \d+ destination tables emptied, lane checkpoints at the feed gap/);
    const rows = await expectConverged(src, dst, dstQ, 'after the re-snapshot', last);
    // Rows deleted while the log was lost are gone at the destination too.
    expect(Number((await dst.query<{ n: number | string }>(`SELECT count(*) AS n FROM ${dstQ('items')} WHERE id BETWEEN 100 AND 160`))[0]!.n)).toBe(0);
    // The feed: the re-snapshot's stream, no ledger row missing or twice from its first one; a reader from before the gap is told.
    const feed = await checkFeed(gw.config.redisUrl, gw.config.queuePrefix, job.name, last, 'feed');
    expect([feed.missing.length, feed.duplicated.length, rows.lost, rows.duplicated]).toEqual([0, 0, 0, 0]);
    const redis = new Redis(gw.config.redisUrl, { maxRetriesPerRequest: 3 });
    try {
      await expect(openFeed(redis, job.name, { prefix: gw.config.queuePrefix }).read(oldSeq, 10)).rejects.toBeInstanceOf(SnapshotTooOldError);
    } finally { redis.disconnect(); }
    await gql(gw.url, `mutation { stopJob(id: "${job.id}") { status } }`);
    await worker.kill('SIGTERM');
    return { rows, stats, last, reason: after.statusReason as string };
  }

  async function expectConverged(src: DbHandle, dst: DbHandle, dstQ: (t: string) => string, when: string, last: number) {
    const rows = await expectSameRows(src, dst, dstQ, { items: true, timeoutMs: 120_000 });
    expect([rows.lost, rows.duplicated], `${when}: ledger 1..${last}`).toEqual([0, 0]);
    return rows;
  }

  it('MariaDB: PURGE BINARY LOGS past the capture position re-snapshots into the destination', async () => {
    const src = await mariaDatabase(maria.url, uniq('resnap_src')); handles.push(src);
    const dst = await pgHandle(inject('pgUrl'), uniq('resnap_dst')); handles.push(dst);
    const out = await lossAndResnapshot(src, dst, src.database, async () => {
      const [{ File: purged }] = await src.query<{ File: string }>('SHOW MASTER STATUS');
      await src.query('FLUSH BINARY LOGS');
      const [{ File: current }] = await src.query<{ File: string }>('SHOW MASTER STATUS');
      // A file a (lingering) binlog dump thread reads is not purged: end those threads, then purge.
      await waitFor(async () => {
        for (const t of await src.query<{ ID: number }>("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")) {
          await src.query(`KILL ${t.ID}`).catch(() => undefined);
        }
        await src.query(`PURGE BINARY LOGS TO '${current}'`);
        return (await src.query<{ Log_name: string }>('SHOW BINARY LOGS')).map((r) => r.Log_name);
      }, (logs) => !logs.includes(purged), 30_000, `binary logs purged to ${current}`);
      return purged;
    }, /binlog purged at .*: re-snapshotting/);
    report('binlog purged under a running job, onLogLoss RESNAPSHOT', 1, 0, 0,
      `re-snapshotted by itself ("${out.reason.slice(0, 100)}"); items ${out.rows.items} rows equal (writer: ${out.stats.inserts} inserts, ${out.stats.updates} updates, ${out.stats.deletes} deletes), ledger ${out.rows.ledger} rows equal`);
  });

  it('SUBSCRIBE (PostgreSQL): dropping the slot restarts the feed after a gap marker; readers from before it get SNAPSHOT_TOO_OLD', async () => {
    let worker = await procs.worker();
    const src = await pgHandle(inject('pgUrl'), uniq('subgap_src')); handles.push(src);
    await src.query(LEDGER.create(src));
    const job = await createJob(gw.url, { name: uniq('chaos_subgap'), type: 'SUBSCRIBE', source: endpoint(src), tables: [{ schema: 'public' }], onLogLoss: 'RESNAPSHOT' });
    const streaming = (x: any) => x.status !== 'RUNNING' || (x.progress.phase === 'streaming' && x.tasks.some((t: any) => t.kind === 'capture' && t.status === 'running'));
    await waitFor(() => jobState(job.id), streaming, 120_000, 'streaming');
    const changes = async (since: string | null) => gql(gw.url, 'query($f: String!, $s: String) { changes(feed: $f, scopes: ["a", "b"], since: $s, limit: 10000) { firstSequence lastSequence changes { sequence newRow } } }', { f: job.name, s: since });
    const seqsOf = (r: any): number[] => r.body.data.changes.changes.map((c: any) => Number(c.newRow.seq));
    let w = startLedger(src); await sleep(1000); const before = await w.stop();
    const seen = await waitFor(() => changes(null), (r) => seqsOf(r).length === before, 60_000, 'ledger in the feed');
    const readerAt = seen.body.data.changes.lastSequence as string;
    await worker.kill('SIGKILL');
    const slot = `tributary_${job.id.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
    await waitFor(async () => {
      await src.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
      await src.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]);
      return (await src.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).length;
    }, (n) => n === 0, 30_000, `slot ${slot} dropped`);
    w = startLedger(src, { from: before }); await sleep(500); const lostTo = await w.stop();
    worker = await procs.worker();
    const j = await waitFor(() => jobState(job.id), (x) => x.status !== 'RUNNING' || /restarting at the source's current position/.test(x.statusReason ?? ''), 90_000, 'restart after the loss');
    expect(j.status, JSON.stringify(j.error)).toBe('RUNNING');
    expect(j.statusReason).toContain(`replication slot ${slot} dropped`);
    await waitFor(() => jobState(job.id), streaming, 120_000, 'streaming again');
    w = startLedger(src, { from: lostTo }); await sleep(1000); const last = await w.stop();
    // A reader that had everything up to the loss is told it missed changes.
    const old = await changes(readerAt);
    expect(old.body.errors?.[0]?.extensions?.code, JSON.stringify(old.body)).toBe('SNAPSHOT_TOO_OLD');
    // From the gap on: exactly the rows written after the restart, none of the lost window, none twice.
    const after = await waitFor(() => changes(null), (r) => !r.body.errors && seqsOf(r).at(-1) === last, 60_000, 'changes after the gap');
    const got = seqsOf(after);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => last - got.length + 1 + i));
    expect(got[0]).toBe(lostTo + 1);
    await gql(gw.url, `mutation { stopJob(id: "${job.id}") { status } }`);
    await worker.kill('SIGTERM');
    report('replication slot dropped under a running SUBSCRIBE job, onLogLoss RESNAPSHOT', 1, 0, 0,
      `feed restarted after a gap marker; reader at ${readerAt} got SNAPSHOT_TOO_OLD; ${lostTo - before} ledger rows in the lost window absent, ${got.length} after it present once each`);
  });

  it('PostgreSQL: dropping the slot re-snapshots into the destination with a new slot', async () => {
    const src = await pgHandle(inject('pgUrl'), uniq('reslot_src')); handles.push(src);
    const dst = await mariaDatabase(inject('mariaUrl'), uniq('reslot_dst')); handles.push(dst);
    const out = await lossAndResnapshot(src, dst, 'public', async (jobId) => {
      const slot = `tributary_${jobId.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
      await waitFor(async () => {
        await src.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
        await src.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]);
        return (await src.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).length;
      }, (n) => n === 0, 30_000, `slot ${slot} dropped`);
      await sleep(500); // more changes only the dropped slot would have had
      return slot;
    }, /replication slot \S+ dropped.*: re-snapshotting/);
    report('replication slot dropped under a running job, onLogLoss RESNAPSHOT', 1, 0, 0,
      `re-snapshotted by itself with a new slot; items ${out.rows.items} rows equal (writer: ${out.stats.inserts} inserts, ${out.stats.updates} updates, ${out.stats.deletes} deletes), ledger ${out.rows.ledger} rows equal`);
  });
});
