/**
 * Renames while a writer keeps writing (issue 15 item 5), four directions:
 * the source renames columns (RENAME COLUMN; on MariaDB also CHANGE to
 * another name with the same type), then the table (ALTER TABLE ... RENAME
 * TO, MariaDB RENAME TABLE), then drops a column, between the writer's
 * statements. The job
 * selects the whole schema, so the new table name is still selected: the
 * destination follows each rename in stream order, keeping every value, and
 * ends equal to the source row by row with the job RUNNING. A table renamed
 * out of a selection that named it fails the job quoting the statement.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq, type DbHandle } from '../../support/databases.ts';
import { createJob, describeJob, endpoint, expectConverged, getJob, ITEMS, qname, useReplicationSuite, waitJob } from '../../support/replication.ts';

/** One row per line, the same text on both engines; columns by their current names. */
const canon = (cols: { title: string; remark: string }) => async (db: DbHandle, table: string): Promise<string[]> => {
  const { title, remark } = cols;
  const sql = db.kind === 'postgres'
    ? `SELECT concat_ws('|', id, coalesce("${title}", '~'), coalesce(qty::text, '~'), coalesce(price::text, '~'), coalesce(to_char(at, 'YYYY-MM-DD HH24:MI:SS.US'), '~'), coalesce("${remark}", '~')) AS r FROM ${table} ORDER BY id`
    : `SELECT CONCAT_WS('|', id, COALESCE(\`${title}\`, '~'), COALESCE(qty, '~'), COALESCE(price, '~'), COALESCE(DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), '~'), COALESCE(\`${remark}\`, '~')) AS r FROM ${table} ORDER BY id`;
  return (await db.query<{ r: string }>(sql)).map((x) => x.r);
};

interface Names { table: string; title: string; remark: string }

/**
 * Writes `total` statements (inserts, updates of every column, deletes, some
 * three-statement transactions), running each DDL of `ddls` once `at`
 * statements have been written and switching to the names it gives: the
 * writer never stops around a rename.
 */
async function writeThroughRenames(db: DbHandle, names: Names, ddls: { at: number; sql: string; names: Partial<Names> }[], total: number, firstNewId: number, maxId: number): Promise<void> {
  let seed = 4242;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const pg = db.kind === 'postgres';
  const q = (n: string) => (pg ? `"${n}"` : `\`${n}\``);
  const now = pg ? 'localtimestamp(6)' : 'NOW(6)';
  let nextId = firstNewId;
  const one = (): string => {
    const t = q(names.table);
    const r = rnd(10);
    if (r < 4) { const id = nextId++; return `INSERT INTO ${t} (id, ${q(names.title)}, qty, price, at, ${q(names.remark)}) VALUES (${id}, 'new ${id}', ${id % 500}, ${id}.75, ${now}, 'w${id}')`; }
    const id = 1 + rnd(maxId);
    if (r < 8) return `UPDATE ${t} SET qty = qty + 1, ${q(names.title)} = 'upd ${id} ${names.title}', price = price + 0.01, ${q(names.remark)} = ${r === 7 ? 'NULL' : `'r${id}'`} WHERE id = ${id}`;
    return `DELETE FROM ${t} WHERE id = ${id}`;
  };
  const pending = [...ddls].sort((a, b) => a.at - b.at);
  for (let i = 0; i < total; i++) {
    while (pending.length && pending[0]!.at <= i) {
      const d = pending.shift()!;
      await db.query(d.sql);
      Object.assign(names, d.names);
    }
    if (rnd(5) === 0) {
      const stmts = [one(), one(), one()];
      await db.query(pg ? `BEGIN; ${stmts.join('; ')}; COMMIT` : `START TRANSACTION; ${stmts.join('; ')}; COMMIT`);
    } else {
      await db.query(one());
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('renames while streaming', () => {
  const { gw, openUniq: open } = useReplicationSuite();
  const tableExists = async (db: DbHandle, schema: string, table: string): Promise<boolean> => (await db.query(
    db.kind === 'postgres' ? 'SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2' : 'SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?',
    [schema, table])).length > 0;

  for (const [from, to] of [['mysql', 'postgres'], ['postgres', 'mysql'], ['mysql', 'mysql'], ['postgres', 'postgres']] as const) {
    it(`${from} -> ${to}: RENAME COLUMN${from === 'mysql' ? ', CHANGE to another name' : ''}, RENAME TABLE and DROP COLUMN under a writer, row by row equal`, async () => {
      const src = await open(from, 'rn_src');
      const dst = await open(to, 'rn_dst');
      await src.query(ITEMS.create(src, 'items'));
      await src.query(ITEMS.fill(src, 300, 'items'));
      // Dropped while the writer writes (the writer never names it).
      await src.query(`ALTER TABLE items ADD COLUMN gone varchar(5)`);
      await src.query(`UPDATE items SET gone = 'g' WHERE id % 3 = 0`);
      const srcSchema = from === 'postgres' ? 'public' : src.database;
      const dstSchema = to === 'mysql' ? dst.database : srcSchema;
      const job = await createJob(gw.url, {
        name: uniq('renames'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: srcSchema }],
        ...(dstSchema !== srcSchema ? { rename: { schemas: { [srcSchema]: dstSchema } } } : {}),
      });
      const explain = () => describeJob(gw.url, job.id);
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');

      const names: Names = { table: 'items', title: 'name', remark: 'note' };
      const q = (n: string) => (from === 'postgres' ? `"${n}"` : `\`${n}\``);
      await writeThroughRenames(src, names, [
        { at: 100, sql: `ALTER TABLE ${q('items')} RENAME COLUMN ${q('name')} TO ${q('title')}`, names: { title: 'title' } },
        from === 'mysql'
          ? { at: 200, sql: 'ALTER TABLE items CHANGE note remark text', names: { remark: 'remark' } }
          : { at: 200, sql: 'ALTER TABLE items RENAME COLUMN note TO remark', names: { remark: 'remark' } },
        from === 'mysql' && to === 'mysql'
          ? { at: 300, sql: 'RENAME TABLE items TO goods', names: { table: 'goods' } }
          : { at: 300, sql: 'ALTER TABLE items RENAME TO goods', names: { table: 'goods' } },
        { at: 375, sql: 'ALTER TABLE goods DROP COLUMN gone', names: {} },
      ], 450, 1000, 400);

      const read = canon({ title: 'title', remark: 'remark' });
      const rows = await expectConverged(src, 'goods', dst, qname(dst, dstSchema, 'goods'), 60_000, read, explain);
      expect(rows).toBeGreaterThan(300);
      expect(await tableExists(dst, dstSchema, 'items')).toBe(false);
      // The renamed columns under their new names, the dropped one gone.
      const cols = await dst.query<{ c: string }>(
        to === 'postgres' ? 'SELECT column_name::text AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position'
          : 'SELECT column_name AS c FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position', [dstSchema, 'goods']);
      expect(cols.map((c) => c.c)).toEqual(['id', 'title', 'qty', 'price', 'at', 'remark']);
      const j = await getJob(gw.url, job.id);
      expect([j.status, j.error], await explain()).toEqual(['RUNNING', null]);
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    });
  }

  for (const to of ['postgres', 'mysql'] as const) {
    it(`mysql -> ${to}: a column renamed twice, then its table, in one round trip (read after all three), values kept`, async () => {
      const src = await open('mysql', 'rn_chain_src');
      const dst = await open(to, 'rn_chain_dst');
      await src.query('CREATE TABLE t (id int PRIMARY KEY, v varchar(20), n int)');
      await src.query(`INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2)`);
      const dstSchema = to === 'mysql' ? dst.database : src.database;
      const job = await createJob(gw.url, {
        name: uniq('rn_chain'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database }],
        ...(to === 'mysql' ? { rename: { schemas: { [src.database]: dstSchema } } } : {}),
      });
      const explain = () => describeJob(gw.url, job.id);
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
      const read = (col: string) => async (db: DbHandle, table: string) => (await db.query<{ r: string }>(db.kind === 'postgres'
        ? `SELECT concat_ws('|', id, coalesce(${col}, '~'), coalesce(n::text, '~')) AS r FROM ${table} ORDER BY id`
        : `SELECT CONCAT_WS('|', id, COALESCE(${col}, '~'), COALESCE(n, '~')) AS r FROM ${table} ORDER BY id`)).map((r) => r.r);
      // A row streamed first: the capture has read the table's shape once.
      await src.query(`UPDATE t SET n = 10 WHERE id = 1`);
      await expectConverged(src, 't', dst, qname(dst, dstSchema, 't'), 30_000, read('v'), explain);
      // One round trip: the capture maps each statement after all of them ran, so the first rename's event
      // finds the table renamed (its last shape read is used) and a later name already there (a MariaDB DDL
      // event's columns are the table when it is read).
      await src.query(`ALTER TABLE t RENAME COLUMN v TO w; INSERT INTO t VALUES (3, 'c', 3); UPDATE t SET w = 'a2' WHERE id = 1;
        ALTER TABLE t CHANGE w x varchar(20); INSERT INTO t VALUES (4, 'd', 4); UPDATE t SET x = 'b2' WHERE id = 2;
        RENAME TABLE t TO t2; INSERT INTO t2 VALUES (5, 'e', 5); UPDATE t2 SET x = 'c2', n = 30 WHERE id = 3`);
      await expectConverged(src, 't2', dst, qname(dst, dstSchema, 't2'), 30_000, read('x'), explain);
      const cols = await dst.query<{ c: string }>(to === 'postgres'
        ? 'SELECT column_name::text AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position'
        : 'SELECT column_name AS c FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position', [dstSchema, 't2']);
      expect(cols.map((c) => c.c)).toEqual(['id', 'x', 'n']);
      const j = await getJob(gw.url, job.id);
      expect([j.status, j.error]).toEqual(['RUNNING', null]);
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    });
  }

  for (const from of ['mysql', 'postgres'] as const) {
    it(`${from}: a table renamed out of a selection that named it fails the job quoting the statement; no row is dropped silently`, async () => {
      const src = await open(from, 'rn_out_src');
      const dst = await open('postgres', 'rn_out_dst');
      await src.query('CREATE TABLE t (id int PRIMARY KEY, v varchar(20))');
      await src.query(`INSERT INTO t VALUES (1, 'a')`);
      const schema = from === 'postgres' ? 'public' : src.database;
      const job = await createJob(gw.url, { name: uniq('rn_out'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema, tables: ['t'] }] });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
      await src.query(`INSERT INTO t VALUES (2, 'b')`);
      const stmt = from === 'mysql' ? 'RENAME TABLE t TO t_old' : 'ALTER TABLE t RENAME TO t_old';
      await src.query(stmt);
      await src.query(`INSERT INTO t_old VALUES (3, 'c')`);
      const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 30_000, 'failed');
      expect(failed.status).toBe('FAILED');
      // MariaDB quotes the statement as written; PostgreSQL the one the capture wrote from the relation message.
      expect(failed.error).toContain(from === 'mysql' ? stmt : 'ALTER TABLE "public"."t" RENAME TO "t_old"');
      expect(failed.error).toContain('outside the job\'s table selection');
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    });
  }
});
