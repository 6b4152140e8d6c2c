/**
 * Issue 17, MariaDB-source cases (and the one PostgreSQL char(n > 255) case
 * whose damage shows at a MariaDB destination): the destination equals the
 * source row by row, read with plain database clients (HEX, enum index,
 * exact float text), over rows copied by the snapshot and rows inserted,
 * updated and deleted while streaming. The job must still be RUNNING.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, useReplicationSuite, waitJob } from '../../support/replication.ts';

type Dest = 'mysql' | 'postgres';

interface Case {
  label: string;
  to: Dest;
  /** Source statements run before the job starts (CREATE TABLE and the snapshot's rows). */
  seed: string[];
  /** Source statements run once the job streams. */
  stream: string[];
  tables: string[];
  /** Canonical rows `r` of one table, on the source (MariaDB) side. */
  readSrc: (table: string) => string;
  /** The same on the destination, `table` already qualified; defaults to readSrc (MariaDB destination). */
  readDst?: (table: string) => string;
  chunkRows?: number;
  /** binlog_row_metadata on the source while the case runs (the suite's server runs FULL). */
  rowMetadata?: 'FULL' | 'NO_LOG';
}

describe('fidelity, MariaDB source', () => {
  const { gw, openUniq: open } = useReplicationSuite();

  async function setRowMetadata(db: DbHandle, value: string): Promise<void> {
    await db.query(`SET GLOBAL binlog_row_metadata = '${value}'`);
  }

  /** Runs the case and returns the job id; asserts every table equal and the job RUNNING without error. */
  async function runCase(c: Case): Promise<string> {
    const src = await open('mysql', 'fm_src');
    const dst = await open(c.to, 'fm_dst');
    const metaBefore = (await src.query<{ v: string }>(`SELECT @@GLOBAL.binlog_row_metadata AS v`))[0]!.v;
    if (c.rowMetadata) await setRowMetadata(src, c.rowMetadata);
    try {
      for (const s of c.seed) await src.query(s);
      const job = await createJob(gw.url, {
        name: uniq('fm'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
        tables: [{ schema: src.database, tables: c.tables }],
        ...(c.chunkRows ? { chunkRows: c.chunkRows } : {}),
        ...(c.to === 'mysql' ? { rename: { schemas: { [src.database]: dst.database } } } : {}),
      });
      const snap = await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
      expect(snap.status, snap.error).toBe('RUNNING');
      for (const s of c.stream) await src.query(s);
      for (const t of c.tables) {
        const want = (await src.query<{ r: string }>(c.readSrc(t))).map((x) => x.r);
        const dstTable = c.to === 'postgres' ? `"${src.database}"."${t}"` : `\`${dst.database}\`.\`${t}\``;
        const read = async () => (await dst.query<{ r: string }>((c.readDst ?? c.readSrc)(dstTable))).map((x) => x.r);
        const got = await waitFor(() => read().catch(() => [] as string[]), (rows) => rows.join('\n') === want.join('\n'), 30_000, `${t} converged`)
          .catch(() => read().catch((e) => [String(e)]));
        const j = (await gql(gw.url, `query { job(id: "${job.id}") { status error } }`)).body.data.job;
        expect({ rows: got, job: j }, `${c.label}: ${t}`).toEqual({ rows: want, job: { status: 'RUNNING', error: null } });
      }
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
      return job.id;
    } finally {
      if (c.rowMetadata) await setRowMetadata(src, metaBefore);
    }
  }

  // ---- item 6: BIT(64) primary key ----------------------------------------
  const BIG_BITS = ['0', '1', '255', '9007199254740993', '9223372036854775807', '9223372036854775808', '9223372036854775809',
    '18446744073709551614', '18446744073709551615', '12345678901234567890'];
  for (const to of ['mysql', 'postgres'] as const) {
    it(`BIT(64) primary key: updates and deletes find their row, keys above 2^53 included (-> ${to})`, async () => {
      await runCase({
        // 310 rows in chunks of 100: chunk bounds are BIT keys too, most of them above 2^53.
        label: 'bit64', to, tables: ['b'], chunkRows: 100,
        seed: [
          `CREATE TABLE b (k bit(64) PRIMARY KEY, v int, w bit(64))`,
          `INSERT INTO b VALUES ${BIG_BITS.map((k, i) => `(${k}, ${i}, ${k})`).join(', ')}`,
          `INSERT INTO b SELECT seq * 61000000000000000 + seq, 1000 + seq, seq FROM seq_1_to_300`,
        ],
        stream: [
          `INSERT INTO b VALUES (1152921504606846979, 100, 1), (18446744073709551613, 101, 18446744073709551613)`,
          `UPDATE b SET v = v + 1000 WHERE k = 9223372036854775809`,
          `UPDATE b SET k = 9223372036854775810 WHERE k = 9223372036854775808`,
          `UPDATE b SET w = 0 WHERE k = 18446744073709551615`,
          `DELETE FROM b WHERE k IN (18446744073709551614, 1, 12345678901234567890)`,
          `DELETE FROM b WHERE v % 7 = 0 AND v > 1000`,
          `UPDATE b SET k = k + 1 WHERE v % 11 = 0 AND v > 1000`,
          `UPDATE b SET v = v + 1`,
        ],
        readSrc: to === 'mysql'
          ? (t) => `SELECT CONCAT_WS('|', HEX(k), v, HEX(w)) AS r FROM ${t} ORDER BY k`
          : (t) => `SELECT CONCAT_WS('|', LPAD(BIN(k), 64, '0'), v, LPAD(BIN(w), 64, '0')) AS r FROM ${t} ORDER BY k`,
        readDst: to === 'mysql' ? undefined : (t) => `SELECT concat_ws('|', k::text, v, w::text) AS r FROM ${t} ORDER BY k`,
      });
    });
  }

  // ---- items 7 and 10: ENUM/SET labels --------------------------------------
  /** Labels as SQL: a comma, quotes of both kinds, backslashes (one ending a label), an emoji and the empty label. */
  const ENUM_SQL = `enum('x,y','a','b','c','it''s','dq"q','back\\\\slash','end\\\\','😀 smile','''quoted''','')`;
  const SET_SQL = `set('😀','it''s','dq"q','back\\\\slash','x','end\\\\')`;
  const enumRead = (to: Dest) => (to === 'mysql'
    ? (t: string) => `SELECT CONCAT_WS('|', id, COALESCE(HEX(e), '~'), COALESCE(e + 0, '~'), COALESCE(HEX(s), '~'), COALESCE(s + 0, '~'), HEX(z), z + 0) AS r FROM ${t} ORDER BY id`
    : (t: string) => `SELECT CONCAT_WS('|', id, COALESCE(e, '~'), COALESCE(s, '~'), z) AS r FROM ${t} ORDER BY id`);
  const enumReadPg = (t: string) => `SELECT concat_ws('|', id, coalesce(e, '~'), coalesce(array_to_string(s, ','), '~'), z) AS r FROM ${t} ORDER BY id`;

  for (const to of ['mysql', 'postgres'] as const) {
    it(`ENUM with a comma in a label, default binlog_row_metadata: no value shifts (-> ${to})`, async () => {
      await runCase({
        label: 'enum comma', to, tables: ['e'], rowMetadata: 'NO_LOG',
        seed: [
          `CREATE TABLE e (id int PRIMARY KEY, e enum('x,y','a','b','c'), s set('a','b'), z enum('z1', 'z,2') NOT NULL DEFAULT 'z,2')`,
          `INSERT INTO e (id, e, s) VALUES (1, 'x,y', 'a'), (2, 'a', ''), (3, 'b', 'a,b'), (4, 'c', 'b'), (5, NULL, NULL)`,
        ],
        stream: [
          `INSERT INTO e (id, e, s) VALUES (6, 'c', 'b'), (7, 'x,y', 'a,b'), (8, 'b', NULL), (9, 'a', 'a')`,
          `UPDATE e SET z = 'z1' WHERE id IN (2, 6)`,
          `UPDATE e SET e = 'c' WHERE id = 2`,
          `UPDATE e SET e = 'x,y' WHERE id = 3`,
          `DELETE FROM e WHERE id = 1`,
        ],
        readSrc: enumRead(to),
        readDst: to === 'mysql' ? undefined : enumReadPg,
      });
    });
  }

  for (const meta of ['FULL', 'NO_LOG'] as const) {
    for (const to of ['mysql', 'postgres'] as const) {
      it(`ENUM/SET labels with emoji, quotes and backslashes (binlog_row_metadata=${meta}, -> ${to})`, async () => {
        const rows = (ids: number[]) => [
          `(${ids[0]}, 'it''s', 'it''s,😀')`, `(${ids[1]}, 'dq"q', 'dq"q,back\\\\slash')`, `(${ids[2]}, 'back\\\\slash', 'end\\\\')`,
          `(${ids[3]}, 'end\\\\', '')`, `(${ids[4]}, '😀 smile', '😀,it''s,dq"q,back\\\\slash,x,end\\\\')`, `(${ids[5]}, '''quoted''', 'x')`,
          `(${ids[6]}, '', NULL)`, `(${ids[7]}, 'x,y', 'x')`, `(${ids[8]}, 'c', '😀')`,
        ].join(', ');
        await runCase({
          label: 'labels', to, tables: ['e'], rowMetadata: meta,
          // z: NOT NULL, fewer labels than e (the exact-label read pads its rows), an emoji label.
          seed: [`CREATE TABLE e (id int PRIMARY KEY, e ${ENUM_SQL}, s ${SET_SQL}, z enum('🎉', 'x') NOT NULL DEFAULT '🎉')`, `INSERT INTO e (id, e, s) VALUES ${rows([1, 2, 3, 4, 5, 6, 7, 8, 9])}`],
          stream: [
            `INSERT INTO e (id, e, s) VALUES ${rows([11, 12, 13, 14, 15, 16, 17, 18, 19])}`,
            `UPDATE e SET z = 'x' WHERE id IN (3, 13)`,
            `UPDATE e SET e = '😀 smile', s = 'back\\\\slash' WHERE id IN (1, 11)`,
            `UPDATE e SET e = 'it''s' WHERE id = 5`,
            `DELETE FROM e WHERE id IN (2, 12)`,
          ],
          readSrc: enumRead(to),
          readDst: to === 'mysql' ? undefined : enumReadPg,
        });
      });
    }
  }

  // ---- item 8b: CHAR(n) without trailing pad -------------------------------
  it('CHAR(n) MariaDB -> MariaDB: values equal, no trailing pad added (char(255), a char key)', async () => {
    await runCase({
      label: 'char', to: 'mysql', tables: ['c'],
      seed: [
        `CREATE TABLE c (k char(10) PRIMARY KEY, c char(255), l char(3) CHARACTER SET latin1)`,
        `INSERT INTO c VALUES ('a', 'x', 'é'), ('b ', 'y  ', 'z'), ('c', '', ''), ('d', REPEAT('w', 255), NULL)`,
      ],
      stream: [`INSERT INTO c VALUES ('e', 'tail  ', 'q  ')`, `UPDATE c SET c = 'upd ' WHERE k = 'a'`, `DELETE FROM c WHERE k = 'c'`],
      // The latin1 column arrives as utf8mb4 (every destination text column is): compared as characters.
      readSrc: (t) => `SELECT CONCAT_WS('|', HEX(k), COALESCE(HEX(c), '~'), COALESCE(HEX(CONVERT(l USING utf8mb4)), '~'), CHAR_LENGTH(c)) AS r FROM ${t} ORDER BY k`,
    });
  });

  it('PostgreSQL character(300) -> MariaDB (varchar(300)): no trailing pad at the destination', async () => {
    const src = await open('postgres', 'fm_char_src');
    const dst = await open('mysql', 'fm_char_dst');
    await src.query(`CREATE TABLE c (k character(300) PRIMARY KEY, c character(300), s character(5))`);
    await src.query(`INSERT INTO c VALUES ('a', 'x', 'ab'), ('b  ', 'y  ', NULL), ('c', '', '')`);
    const job = await createJob(gw.url, {
      name: uniq('fmc'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
      tables: [{ schema: 'public', tables: ['c'] }], rename: { schemas: { public: dst.database } },
    });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
    await src.query(`INSERT INTO c VALUES ('d', 'tail  ', 'q ')`);
    await src.query(`UPDATE c SET c = 'upd ' WHERE k = 'a'`);
    await src.query(`UPDATE c SET k = 'e' WHERE k = 'b'`);
    await src.query(`DELETE FROM c WHERE k = 'c'`);
    // PostgreSQL's text of a character(n) value drops the pad; MariaDB's CHAR does the same on read.
    const want = (await src.query<{ r: string }>(`SELECT concat_ws('|', k::text, coalesce(c::text, '~'), coalesce(s::text, '~')) AS r FROM c ORDER BY k`)).map((x) => x.r);
    const sql = `SELECT CONCAT_WS('|', k, COALESCE(c, '~'), COALESCE(s, '~')) AS r FROM \`${dst.database}\`.c ORDER BY k`;
    const read = async () => (await dst.query<{ r: string }>(sql)).map((x) => x.r);
    const got = await waitFor(() => read().catch(() => [] as string[]), (rows) => rows.join() === want.join(), 30_000, 'c converged').catch(() => read());
    const j = (await gql(gw.url, `query { job(id: "${job.id}") { status error } }`)).body.data.job;
    expect({ rows: got, job: j }).toEqual({ rows: want, job: { status: 'RUNNING', error: null } });
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });

  // ---- item 9: FLOAT/DOUBLE extremes ---------------------------------------
  const FLOATS = [
    // FLOAT max, -max, min normal, min subnormal, float32 0.1, 2^24+1 (rounds), DOUBLE max, min normal, min subnormal.
    `(1, 3.4028234663852886e38, 1.7976931348623157e308)`, `(2, -3.4028234663852886e38, -1.7976931348623157e308)`,
    `(3, 1.1754943508222875e-38, 2.2250738585072014e-308)`, `(4, 1.401298464324817e-45, 5e-324)`,
    `(5, -1.401298464324817e-45, -5e-324)`, `(6, 0.1e0, 0.1e0 + 0.2e0)`, `(7, 16777217e0, 9007199254740993e0)`,
    `(8, 0e0, -0e0)`, `(9, 3.4028232635611926e38, 1e308)`, `(10, NULL, NULL)`,
  ];
  for (const to of ['mysql', 'postgres'] as const) {
    it(`FLOAT/DOUBLE extremes round-trip bit-exactly (max, min normal, subnormal) (-> ${to})`, async () => {
      await runCase({
        label: 'floats', to, tables: ['f'],
        seed: [`CREATE TABLE f (id int PRIMARY KEY, fl float, dl double)`, `INSERT INTO f VALUES ${FLOATS.join(', ')}`],
        stream: [
          `INSERT INTO f VALUES ${FLOATS.map((r) => r.replace(/^\((\d+)/, (_, n) => `(${Number(n) + 100}`)).join(', ')}`,
          `UPDATE f SET fl = -fl, dl = -dl WHERE id IN (1, 3, 104)`,
          `DELETE FROM f WHERE id = 6`,
        ],
        // CAST(float AS DOUBLE) is exact, and MariaDB prints doubles in their shortest round-trip form; ATAN2 shows the sign of zero.
        readSrc: to === 'mysql'
          ? (t) => `SELECT CONCAT_WS('|', id, COALESCE(CAST(fl AS DOUBLE), '~'), COALESCE(ATAN2(fl, -1e0) < 0, '~'), COALESCE(dl, '~'), COALESCE(ATAN2(dl, -1e0) < 0, '~')) AS r FROM ${t} ORDER BY id`
          : (t) => `SELECT CONCAT_WS('|', id, COALESCE(CAST(fl AS DOUBLE), '~'), COALESCE(dl, '~')) AS r FROM ${t} ORDER BY id`,
        // extra_float_digits = 3 would print 17 digits; the default (shortest exact) matches MariaDB's shortest form once the exponent is normalised.
        readDst: to === 'mysql' ? undefined : (t) => `SELECT concat_ws('|', id, coalesce(regexp_replace(fl::float8::text, 'e\\+?', 'e'), '~'), coalesce(regexp_replace(dl::text, 'e\\+?', 'e'), '~')) AS r FROM ${t} ORDER BY id`,
      });
    });
  }

  // ---- item 14: the invalid-ENUM value (index 0) ---------------------------
  it('an invalid ENUM value (index 0, written with sql_mode=\'\') is kept MariaDB -> MariaDB, keyed, keyless and in a key', async () => {
    const relaxed = (sql: string) => `SET STATEMENT sql_mode = '' FOR ${sql}`;
    await runCase({
      label: 'invalid enum', to: 'mysql', tables: ['t', 'u', 'k'],
      seed: [
        `CREATE TABLE t (id int PRIMARY KEY, e enum('a','b'), n int)`,
        `CREATE TABLE u (id int, e enum('a','b'), n int)`,
        `CREATE TABLE k (id int, e enum('a','b'), n int, PRIMARY KEY (e, id))`,
        relaxed(`INSERT INTO k VALUES (1, 'a', 1), (2, 'zzz', 2), (3, 'zzz', 3)`),
        relaxed(`INSERT INTO t VALUES (1, 'a', 1), (2, 'zzz', 2), (3, NULL, 3), (4, 'nope', 4)`),
        relaxed(`INSERT INTO u VALUES (1, 'a', 1), (2, 'zzz', 2), (2, 'zzz', 2), (3, NULL, 3)`),
      ],
      stream: [
        relaxed(`INSERT INTO t VALUES (5, 'bad', 5), (6, 'b', 6)`),
        `UPDATE t SET n = n + 10 WHERE id = 2`,
        relaxed(`UPDATE t SET e = 'worse' WHERE id = 1`),
        `UPDATE t SET e = 'b' WHERE id = 4`,
        `DELETE FROM t WHERE id = 3`,
        relaxed(`INSERT INTO u VALUES (5, 'bad', 5)`),
        `UPDATE u SET n = 20 WHERE id = 2 LIMIT 1`,
        `DELETE FROM u WHERE id = 1`,
        relaxed(`INSERT INTO k VALUES (4, 'bad', 4)`),
        `UPDATE k SET n = n + 5 WHERE id = 2`,
        `DELETE FROM k WHERE id = 3`,
      ],
      readSrc: (t) => `SELECT CONCAT_WS('|', id, COALESCE(HEX(e), '~'), COALESCE(e + 0, '~'), n) AS r FROM ${t} ORDER BY id, n, e + 0`,
    });
  });

  it('an invalid ENUM value MariaDB -> PostgreSQL fails the job naming table, column and value (streaming)', async () => {
    const src = await open('mysql', 'fm_inv_src');
    const dst = await open('postgres', 'fm_inv_dst');
    await src.query(`CREATE TABLE t (id int PRIMARY KEY, e enum('a','b'))`);
    await src.query(`INSERT INTO t VALUES (1, 'a')`);
    const job = await createJob(gw.url, { name: uniq('fmi'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database, tables: ['t'] }] });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
    await src.query(`SET STATEMENT sql_mode = '' FOR INSERT INTO t VALUES (2, 'zzz')`);
    const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 30_000, 'job failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toContain(`${src.database}.t`);
    expect(failed.error).toMatch(/column e\b/);
    expect(failed.error).toContain('""');
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });
});
