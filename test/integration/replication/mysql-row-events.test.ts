/**
 * MariaDB -> MariaDB upserts sent as row events built from the source's own
 * row images (src/replication/apply/mysql-binlog-rows.ts), through a real job:
 * large transactions over every MariaDB column type of the fidelity catalog
 * (text with quotes, backslashes, tabs and NUL-free UTF-8), inserted, updated
 * and deleted, end equal to the source as the server prints each value. A
 * destination table that is not the source's twin (a column of another type)
 * gets SQL; a destination that diverged from the source (a row removed or
 * added by hand) makes the server refuse the row events, and the batch is
 * applied as SQL upserts instead, with the same result as before this path.
 *
 * Only rows the apply takes from its own capture in this process carry the
 * images (local-echo.ts); rows decoded from Redis take the SQL way.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { binlogRowStats } from '../../../src/replication/apply/mysql-binlog-rows.ts';
import { gql } from '../../support/gateway.ts';
import { waitFor, type DbHandle } from '../../support/databases.ts';
import { MYSQL_COLUMNS } from '../../support/fidelity-catalog.ts';
import { createJob, endpoint, getJob, useReplicationSuite, waitJob } from '../../support/replication.ts';

const ROWS = 1200;
const ODD = ["'tab\\there'", "'new\\nline'", "'quote '' and \\\\ backslash'", "'😀 é ß'", "''"];

describe('MariaDB -> MariaDB rows applied as row events', () => {
  const { gw, openUniq } = useReplicationSuite();

  const printed = (db: DbHandle, table: string, names: string[]) => db.query<Record<string, string | null>>(
    `SELECT CAST(id AS CHAR) AS id, ${names.map((n, i) => `${MYSQL_COLUMNS[i]!.print.mysql(n)} AS ${n}`).join(', ')} FROM ${table} ORDER BY id`);

  async function equalTables(src: DbHandle, dst: DbHandle, table: string, names: string[]): Promise<string[]> {
    const want = await printed(src, table, names);
    const differences = async (): Promise<string[]> => {
      const got = await printed(dst, table, names);
      if (got.length !== want.length) {
        const ids = new Set(want.map((w) => w.id));
        const gids = new Set(got.map((g) => g.id));
        const extra = got.filter((g) => !ids.has(g.id)).map((g) => g.id).slice(0, 10);
        const missing = want.filter((w) => !gids.has(w.id)).map((w) => w.id).slice(0, 10);
        return [`${want.length} source rows, ${got.length} destination rows; extra ids ${extra.join(',')}; missing ids ${missing.join(',')}`];
      }
      const out: string[] = [];
      got.forEach((g, i) => { for (const k of Object.keys(g)) if (g[k] !== want[i]![k]) out.push(`id ${want[i]!.id} ${k}: source ${JSON.stringify(want[i]![k])}, destination ${JSON.stringify(g[k])}`); });
      return out;
    };
    return waitFor(() => differences(), (d) => d.length === 0, 60_000, `${table} equal to the source`).catch(async () => differences());
  }

  it('every column type arrives as the source stored it; another destination type, or a diverged destination, takes SQL', async () => {
    const src = await openUniq('mysql', 'rev_src');
    const dst = await openUniq('mysql', 'rev_dst');
    const names = MYSQL_COLUMNS.map((c) => `c_${c.id}`);
    const cols = MYSQL_COLUMNS.map((c, i) => `${names[i]} ${c.type}`).join(', ');
    for (const db of [src, dst]) {
      await db.query(`CREATE TABLE w (id int PRIMARY KEY, ${cols}) CHARACTER SET utf8mb4`);
      await db.query(`CREATE TABLE d (id int PRIMARY KEY, v varchar(20), n int) CHARACTER SET utf8mb4`);
    }
    // Not a twin: the destination's `at` is text where the source has datetime(6).
    await src.query(`CREATE TABLE other (id int PRIMARY KEY, at datetime(6), note text) CHARACTER SET utf8mb4`);
    await dst.query(`CREATE TABLE other (id int PRIMARY KEY, at text, note text) CHARACTER SET utf8mb4`);

    const job = await createJob(gw.url, {
      name: 'row-events', type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
      tables: [{ schema: src.database, tables: ['w', 'd', 'other'] }], parallelWorkers: 2,
      rename: { schemas: { [src.database]: dst.database } },
    });
    try {
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
      const before = { ...binlogRowStats };
      const draw = (seed: number) => fc.sample(fc.tuple(...MYSQL_COLUMNS.map((c) => fc.option(c.value, { nil: null, freq: 6 }))), { seed, numRuns: ROWS });
      const textAt = names.indexOf('c_text');
      const withOdd = (vals: (string | null)[], i: number) => (i % 5 === 0 ? vals.map((v, k) => (k === textAt ? ODD[i % ODD.length]! : v)) : vals);
      const inserts = draw(7).map((vals, i) => `(${i + 1}, ${withOdd(vals, i).map((v) => v ?? 'NULL').join(', ')})`);
      await src.query(`INSERT INTO w (id, ${names.join(', ')}) VALUES ${inserts.join(', ')}`);
      const updates = draw(11).map((vals, i) => `UPDATE w SET ${names.map((n, k) => `${n} = ${withOdd(vals, i + 1)[k] ?? 'NULL'}`).join(', ')} WHERE id = ${i + 1}`);
      await src.query(`START TRANSACTION; ${updates.join('; ')}; COMMIT`);
      await src.query(`START TRANSACTION; DELETE FROM w WHERE id % 7 = 0; UPDATE w SET c_text = 'last' WHERE id % 7 = 1; COMMIT`);
      // Rows moved to another key: Update_rows would look for the old key, which the batch deletes first; they go as SQL.
      await src.query(`UPDATE w SET id = id + 100000 WHERE id % 11 = 0`);
      await src.query(`INSERT INTO other SELECT seq, TIMESTAMPADD(SECOND, seq, '2026-01-02 03:04:05.5'), CONCAT('n', seq) FROM seq_1_to_${ROWS}`);

      expect((await equalTables(src, dst, 'w', names)).slice(0, 10)).toEqual([]);
      const other = await waitFor(() => dst.query<{ n: number; first: string }>(`SELECT count(*) AS n, min(at) AS first FROM other`), (r) => Number(r[0]!.n) === ROWS, 60_000, 'other rows');
      // A text destination column: the value went as SQL, as Tributary writes a datetime for text.
      expect(other[0]!.first).toMatch(/^2026-01-02 03:04:06\.5/);
      // Many of w's rows went as row events. Not all: a read that was waiting when a burst's first piece came may get
      // that piece from Redis, decoded afresh, without images; and a row changed twice in one batch is a merge of
      // its images, which has none. None failed.
      expect(binlogRowStats.rows - before.rows).toBeGreaterThanOrEqual(200);
      expect(binlogRowStats.failed - before.failed).toBe(0);

      // A destination that diverged: a row removed there, one added there. The source's update of the first and
      // insert of the second are refused as row events (no such row; a duplicate key), and applied as SQL upserts.
      await src.query(`INSERT INTO d SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_${ROWS}`);
      await waitFor(() => dst.query<{ n: number }>(`SELECT count(*) AS n FROM d`), (r) => Number(r[0]!.n) === ROWS, 60_000, 'd rows');
      await dst.query(`DELETE FROM d WHERE id = 5`);
      await dst.query(`INSERT INTO d VALUES (${ROWS + 1}, 'by hand', -1)`);
      const failedBefore = binlogRowStats.failed;
      // In one transaction with rows of w that the destination takes: the batch's row events for w succeed, d's
      // are refused, and nothing of the batch may stay (MariaDB does not flag further replies after a BINLOG
      // statement's, so a client that sent more after it would take the batch for committed: mysql.applier.ts).
      await src.query(`START TRANSACTION; UPDATE w SET c_int = 7 WHERE id <= 60; UPDATE d SET n = n + 1000; INSERT INTO d SELECT seq, 'new', seq FROM seq_${ROWS + 1}_to_${ROWS + 300}; COMMIT`);
      const read = (db: DbHandle) => db.query<{ r: string }>(`SELECT CONCAT_WS('|', id, v, n) AS r FROM d ORDER BY id`);
      const want = (await read(src)).map((x) => x.r);
      const got = await waitFor(async () => (await read(dst)).map((x) => x.r), (r) => r.join('\n') === want.join('\n'), 60_000, 'd equal to the source')
        .catch(async () => (await read(dst)).map((x) => x.r));
      expect(got.filter((r, i) => r !== want[i]).slice(0, 5)).toEqual([]);
      expect(got.length).toBe(want.length);
      expect(binlogRowStats.failed).toBeGreaterThan(failedBefore);
      expect((await equalTables(src, dst, 'w', names)).slice(0, 10)).toEqual([]);
      expect((await getJob(gw.url, job.id)).status).toBe('RUNNING');
    } finally {
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    }
  }, 180_000);

  it('a destination user who may not replay row events gets SQL, after one refusal', async () => {
    const src = await openUniq('mysql', 'rev_src');
    const dst = await openUniq('mysql', 'rev_dst');
    for (const db of [src, dst]) await db.query(`CREATE TABLE p (id int PRIMARY KEY, v varchar(20), n int)`);
    const user = `norep_${dst.database.slice(-6)}`;
    await dst.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    await dst.query(`GRANT ALL ON \`${dst.database}\`.* TO '${user}'@'%'`);
    await dst.query(`GRANT ALL ON \`tributary\`.* TO '${user}'@'%'`);
    const job = await createJob(gw.url, {
      name: 'row-events-denied', type: 'SYNCHRONOUS', source: endpoint(src), destination: { ...endpoint(dst), user, password: 'pw' },
      tables: [{ schema: src.database, tables: ['p'] }], rename: { schemas: { [src.database]: dst.database } },
    });
    try {
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
      const before = { ...binlogRowStats };
      const read = (db: DbHandle) => db.query<{ r: string }>(`SELECT CONCAT_WS('|', id, v, n) AS r FROM p ORDER BY id`);
      const bursts = [
        `INSERT INTO p SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_500`, `UPDATE p SET n = n + 1`, `INSERT INTO p SELECT seq, 'w', seq FROM seq_501_to_900`,
        `UPDATE p SET v = 'x' WHERE id % 2 = 0`, `INSERT INTO p SELECT seq, 'y', seq FROM seq_901_to_1500`,
      ];
      for (const [i, sql] of bursts.entries()) {
        await src.query(sql);
        const want = (await read(src)).map((x) => x.r);
        const got = await waitFor(async () => (await read(dst)).map((x) => x.r), (r) => r.join('\n') === want.join('\n'), 60_000, `burst ${i} applied`)
          .catch(async () => (await read(dst)).map((x) => x.r));
        expect(got.filter((r, k) => r !== want[k]).slice(0, 5)).toEqual([]);
        expect(got.length).toBe(want.length);
      }
      // Refused once, for the privilege (the first batch whose rows had images), then SQL only: no row committed as
      // a row event, no second refusal.
      expect(binlogRowStats.failed - before.failed).toBe(1);
      expect(binlogRowStats.lastError).toMatch(/^1227 /);
      expect(binlogRowStats.rows - before.rows).toBe(0);
      expect((await getJob(gw.url, job.id)).status).toBe('RUNNING');
    } finally {
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
      await dst.query(`DROP USER IF EXISTS '${user}'@'%'`);
    }
  }, 120_000);
});
