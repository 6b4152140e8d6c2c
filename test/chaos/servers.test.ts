/**
 * Chaos: the servers around Tributary crash (SIGKILL of the whole server
 * process group) and come back on the same data, while two jobs stream
 * (MariaDB -> PostgreSQL and PostgreSQL -> MariaDB) and ledger writers keep
 * committing. Each case starts the private servers it kills:
 *  - Redis with AOF (appendfsync everysec): queues and feeds resume.
 *  - the source databases: capture retries every 2 s and resumes from its position.
 *  - the destination databases: apply retries, no duplicate (keyless ledger).
 * Every case ends with both destinations equal to their sources row by row
 * and both feeds read whole with no gap and no duplicate.
 *
 * A crashed PostgreSQL source runs with synchronous_commit=on: with it off
 * (the private servers' default, for speed) PostgreSQL itself forgets the
 * commits of its last ~200 ms in a crash after acknowledging them, so the
 * writer's "every seq up to last exists" would be false at the source (found
 * under load: one acknowledged 3-row insert gone from the source after its
 * SIGKILL, never in the WAL, so rightly never in the feed). A crashed
 * PostgreSQL destination keeps synchronous_commit=off on purpose: apply must
 * cope with a destination that forgets acknowledged batches (it re-reads
 * from the checkpoints that were rolled back with them). MariaDB's
 * innodb_flush_log_at_trx_commit=2 and sync_binlog=0 lose nothing to a
 * process crash (the OS keeps what was written).
 *
 * Between faults the cases wait on observable state, not on time: a
 * restarted server answers queries, and the ledger row a writer has just
 * committed has reached the destination (the pipeline flows again).
 */
import { afterAll, describe, expect, it, inject } from 'vitest';
import { startMariadb, startPostgres, startRedis, type PrivateServer } from '../../src/devtools/private-servers.ts';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { mariaDatabase, uniq, type DbHandle } from '../support/databases.ts';
import { count, crashRestart, JobUnderTest, pgHandle, Processes, report, waitFor, type TributaryProc } from './support.ts';

const RESTARTS = count(1, 5);

describe('chaos: server crashes', () => {
  const servers: PrivateServer[] = [];
  const handles: DbHandle[] = [];
  let gw: TestGateway | undefined; let procs: Processes | undefined;

  afterAll(async () => { await cleanup(); });

  async function cleanup(): Promise<void> {
    await procs?.killAll(); procs = undefined;
    await gw?.close(); gw = undefined;
    for (const h of handles.splice(0)) await h.close().catch(() => undefined);
    for (const s of servers.splice(0)) await s.stop().catch(() => undefined);
  }

  /** Gateway in this process (no workers), two worker processes, and two jobs streaming. */
  async function setUp(opts: { redisUrl?: string; mariaUrl?: string; pgUrl?: string; dstMariaUrl?: string; dstPgUrl?: string }, tag: string) {
    gw = await startTestGateway(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}, { worker: false });
    procs = new Processes({ databaseUrl: gw.config.databaseUrl, redisUrl: gw.config.redisUrl, queuePrefix: gw.config.queuePrefix, secretKey: gw.config.secretKey! });
    const workers: TributaryProc[] = await Promise.all([procs.worker(), procs.worker()]);
    const mSrc = await mariaDatabase(opts.mariaUrl ?? inject('mariaUrl'), uniq(`${tag}_msrc`)); handles.push(mSrc);
    const pDst = await pgHandle(opts.dstPgUrl ?? inject('pgUrl'), uniq(`${tag}_pdst`)); handles.push(pDst);
    const pSrc = await pgHandle(opts.pgUrl ?? inject('pgUrl'), uniq(`${tag}_psrc`)); handles.push(pSrc);
    const mDst = await mariaDatabase(opts.dstMariaUrl ?? inject('mariaUrl'), uniq(`${tag}_mdst`)); handles.push(mDst);
    const jobs = [
      await new JobUnderTest(gw.url, mSrc, pDst, mSrc.database).start(uniq(`chaos_${tag}_m2p`)),
      await new JobUnderTest(gw.url, pSrc, mDst, 'public').start(uniq(`chaos_${tag}_p2m`)),
    ];
    for (const j of jobs) await j.streaming();
    await flowing(jobs);
    return { jobs, workers };
  }

  /** Every job's writer has committed rows since the last fault, and they reached the destination. */
  async function flowing(jobs: JobUnderTest[]): Promise<void> {
    const from = jobs.map((j) => j.writer!.last);
    await waitFor(async () => jobs.map((j) => j.writer!.last), (l) => l.every((v, i) => v > from[i]!), 60_000, 'writers committing');
    for (const j of jobs) await j.flowing();
  }

  async function finish(fault: string, injected: number, jobs: JobUnderTest[], t0: number, extra = ''): Promise<void> {
    let lost = 0; let dup = 0; const notes: string[] = [];
    for (const j of jobs) {
      const r = await j.finish(gw!.config.redisUrl, gw!.config.queuePrefix);
      lost += r.lost; dup += r.duplicated;
      notes.push(`${j.src.kind}->${j.dst.kind}: ledger ${r.ledger} rows (writer retried ${r.writerErrors}), feed ${r.feed.changes} changes`);
    }
    report(fault, injected, lost, dup, `${notes.join('; ')}${extra}; ${Math.round((Date.now() - t0) / 1000)} s`);
    expect([lost, dup]).toEqual([0, 0]);
  }

  it(`Redis with AOF SIGKILLed ${RESTARTS} times: queues and feeds resume, nothing lost or doubled`, async () => {
    const t0 = Date.now();
    const redis = await startRedis({ appendonly: true }); servers.push(redis);
    const { jobs } = await setUp({ redisUrl: redis.url }, 'redis');
    for (let i = 0; i < RESTARTS; i++) {
      await crashRestart(redis, 1000);
      await flowing(jobs);
    }
    await finish('Redis SIGKILL + restart (AOF everysec)', RESTARTS, jobs, t0);
    await cleanup();
  });

  it(`source databases SIGKILLed ${RESTARTS} times each: capture reconnects and resumes from its position`, async () => {
    const t0 = Date.now();
    // synchronous_commit=on: see the file comment (a crash must not take back acknowledged source commits).
    const [maria, pg] = await Promise.all([startMariadb(), startPostgres({ args: ['-c', 'synchronous_commit=on'] })]); servers.push(maria, pg);
    const { jobs } = await setUp({ mariaUrl: maria.url, pgUrl: pg.url }, 'srcdb');
    for (let i = 0; i < RESTARTS; i++) {
      await crashRestart(maria, 1500);
      await flowing(jobs);
      await crashRestart(pg, 1500);
      await flowing(jobs);
    }
    await finish('source database SIGKILL + restart (MariaDB and PostgreSQL)', RESTARTS * 2, jobs, t0);
    await cleanup();
  });

  it(`destination databases SIGKILLed ${RESTARTS} times each: apply retries with no duplicate`, async () => {
    const t0 = Date.now();
    const [maria, pg] = await Promise.all([startMariadb(), startPostgres()]); servers.push(maria, pg);
    const { jobs } = await setUp({ dstMariaUrl: maria.url, dstPgUrl: pg.url }, 'dstdb');
    for (let i = 0; i < RESTARTS; i++) {
      await crashRestart(pg, 1500);
      await flowing(jobs);
      await crashRestart(maria, 1500);
      await flowing(jobs);
    }
    await finish('destination database SIGKILL + restart (PostgreSQL and MariaDB)', RESTARTS * 2, jobs, t0);
    await cleanup();
  });
});
