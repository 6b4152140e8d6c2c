/** Helpers for the incremental snapshot suites: a keyless ledger with duplicates, its writer, and waiting on a request. */
import { expect } from 'vitest';
import { gql } from './gateway.ts';
import { waitFor, type DbHandle } from './databases.ts';

/** A keyless table whose rows repeat (acct, amount, note): duplicates must stay duplicates, no more, no fewer. */
export const LEDGER = {
  create(db: DbHandle, t = 'ledger'): string {
    return db.kind === 'postgres'
      ? `CREATE TABLE ${t} (acct int, amount int, note varchar(20))`
      : `CREATE TABLE ${t} (acct int, amount int, note varchar(20)) ENGINE=InnoDB`;
  },
  fill(db: DbHandle, n: number, t = 'ledger'): string {
    return db.kind === 'postgres'
      ? `INSERT INTO ${t} SELECT g % 40, g % 7, 'seed' FROM generate_series(1, ${n}) g`
      : `INSERT INTO ${t} SELECT seq % 40, seq % 7, 'seed' FROM seq_1_to_${n}`;
  },
  async canonical(db: DbHandle, table: string): Promise<string[]> {
    const sql = db.kind === 'postgres'
      ? `SELECT concat_ws('|', coalesce(acct::text, '~'), coalesce(amount::text, '~'), coalesce(note, '~')) AS r FROM ${table}`
      : `SELECT CONCAT_WS('|', COALESCE(acct, '~'), COALESCE(amount, '~'), COALESCE(note, '~')) AS r FROM ${table}`;
    return (await db.query<{ r: string }>(sql)).map((x) => x.r).sort();
  },
};

/** Inserts duplicate-prone rows, deletes one of a kind, updates one of a kind, until stopped. */
export function startLedgerWriter(db: DbHandle, durationMs: number, seed = 1): { stop(): Promise<{ inserts: number; deletes: number; updates: number }> } {
  const stats = { inserts: 0, deletes: 0, updates: 0 };
  let stopped = false;
  let s = seed;
  const rnd = (n: number) => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s % n; };
  const pg = db.kind === 'postgres';
  const deadline = Date.now() + durationMs;
  const done = (async () => {
    while (!stopped && Date.now() < deadline) {
      const r = rnd(10); const acct = rnd(40); const amount = rnd(7);
      if (r < 5) { stats.inserts++; await db.query(`INSERT INTO ledger VALUES (${acct}, ${amount}, 'w')`); }
      else if (r < 8) {
        stats.deletes++;
        await db.query(pg ? `DELETE FROM ledger WHERE ctid IN (SELECT ctid FROM ledger WHERE acct = ${acct} LIMIT 1)` : `DELETE FROM ledger WHERE acct = ${acct} LIMIT 1`);
      } else {
        stats.updates++;
        await db.query(pg ? `UPDATE ledger SET amount = amount + 1 WHERE ctid IN (SELECT ctid FROM ledger WHERE acct = ${acct} LIMIT 1)` : `UPDATE ledger SET amount = amount + 1 WHERE acct = ${acct} LIMIT 1`);
      }
      await new Promise((res) => setTimeout(res, 3));
    }
  })();
  return { stop: async () => { stopped = true; await done; return stats; } };
}

/** Waits until the ledgers hold the same rows the same number of times. */
export async function expectLedgerEqual(src: DbHandle, srcTable: string, dst: DbHandle, dstTable: string, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let a: string[] = []; let b: string[] = [];
  while (Date.now() < deadline) {
    a = await LEDGER.canonical(src, srcTable);
    b = await LEDGER.canonical(dst, dstTable).catch(() => []);
    if (a.length === b.length && a.every((x, i) => x === b[i])) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const count = (rows: string[]) => rows.reduce((m, r) => m.set(r, (m.get(r) ?? 0) + 1), new Map<string, number>());
  const ca = count(a); const cb = count(b);
  const diff = [...new Set([...ca.keys(), ...cb.keys()])].filter((k) => ca.get(k) !== cb.get(k)).slice(0, 10).map((k) => `${k}: source ${ca.get(k) ?? 0}, destination ${cb.get(k) ?? 0}`);
  expect(diff, `${srcTable} -> ${dstTable} (${a.length} vs ${b.length} rows)`).toEqual([]);
  return a.length;
}

export const INCREMENTAL_FIELDS = 'id status reason tables where rowsDone rowsEstimated percent chunksDone chunksTotal error startedAt finishedAt';

/** Waits until request `id` is done or failed and returns it as job.progress shows it. */
export async function snapshotState(url: string, jobId: string, id: string, timeoutMs = 120_000): Promise<any> {
  const read = async () => {
    const r = await gql(url, `query($id: ID!) { job(id: $id) { status error progress { phase incrementalSnapshot { ${INCREMENTAL_FIELDS} } } } }`, { id: jobId });
    if (r.body.errors) throw new Error(JSON.stringify(r.body.errors));
    return r.body.data.job;
  };
  const j = await waitFor(read, (j) => j.status !== 'RUNNING' || (j.progress.incrementalSnapshot?.id === id && ['done', 'failed'].includes(j.progress.incrementalSnapshot.status)), timeoutMs, `incremental snapshot ${id}`);
  expect(j.status, j.error ?? '').toBe('RUNNING');
  return j.progress.incrementalSnapshot;
}
