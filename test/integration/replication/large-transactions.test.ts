/**
 * Issue 18: one source transaction of many rows is captured, fed and applied
 * like any other. A 50,000-row PostgreSQL transaction or a 200,000-row
 * MariaDB INSERT used to stop replication for good: the feed append passed
 * every row of the transaction as arguments of one call (`Maximum call stack
 * size exceeded`), the task retried forever and the job said RUNNING.
 *
 * Each case streams an INSERT of ROWS rows in one transaction, then an
 * UPDATE of all of them in one transaction, then one small transaction, and
 * compares source and destination row by row. ROWS defaults to 60,000 (above
 * the old failure point) in `npm test`; `npm run test:large-txn` runs
 * 1,000,000 (LARGE_TXN_ROWS).
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, expectConverged, getJob, ITEMS, qname, useReplicationSuite, waitJob } from '../../support/replication.ts';

const ROWS = Number(process.env.LARGE_TXN_ROWS ?? 60_000);
const DIRECTIONS = (process.env.LARGE_TXN_DIRECTIONS ?? 'mysql:postgres,postgres:mysql').split(',');
const CONVERGE_MS = Math.max(120_000, ROWS * 0.6);

describe(`large source transactions (${ROWS} rows in one transaction)`, () => {
  const { gw, open } = useReplicationSuite();

  for (const dir of DIRECTIONS) {
    const [from, to] = dir.split(':') as ['mysql' | 'postgres', 'mysql' | 'postgres'];
    it(`${from} -> ${to}`, async () => {
      const t0 = Date.now();
      const src = await open(from, uniq(`lt_src_${from}`));
      const dst = await open(to, uniq(`lt_dst_${to}`));
      await src.query(ITEMS.create(src));
      await src.query(ITEMS.fill(src, 10));
      const srcSchema = from === 'postgres' ? 'public' : src.database;
      const dstSchema = to === 'mysql' ? dst.database : srcSchema;
      const rename = dstSchema !== srcSchema ? { schemas: { [srcSchema]: dstSchema } } : undefined;
      const job = await createJob(gw.url, {
        name: uniq('largetx'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
        tables: [{ schema: srcSchema, tables: ['items'] }], parallelWorkers: 4, ...(rename ? { rename } : {}),
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
      const dstTable = qname(dst, dstSchema, 'items');
      await expectConverged(src, 'items', dst, dstTable, 60_000);

      // One transaction each: the fill's INSERT ... SELECT is a single statement.
      await src.query(`DELETE FROM items`);
      await src.query(ITEMS.fill(src, ROWS));
      await src.query(`UPDATE items SET qty = qty + 1, note = 'updated'`);
      await src.query(`INSERT INTO items (id, name, qty) VALUES (${ROWS + 1}, 'after', 1)`);
      const written = Date.now();
      // Cheap aggregates while waiting (a full comparison of a million rows per poll would load the machine
      // more than the job does), then one row-by-row comparison.
      const summary = async (db: DbHandle, table: string) =>
        JSON.stringify((await db.query<{ n: unknown; q: unknown }>(`SELECT count(*) AS n, sum(qty) AS q FROM ${table}`)).map((r) => [String(r.n), String(r.q)]));
      const want = await summary(src, 'items');
      await waitFor(() => summary(dst, dstTable), (got) => got === want, CONVERGE_MS, 'destination count and sum');
      const caughtUp = Date.now() - written;
      const rows = await expectConverged(src, 'items', dst, dstTable, 60_000);
      expect(rows).toBe(ROWS + 1);
      const j = await getJob(gw.url, job.id);
      expect(j.status).toBe('RUNNING');
      expect(j.error).toBeNull();
      // No task went through a retry to get there.
      expect(j.tasks.filter((t: any) => t.error)).toEqual([]);
      console.log(`${from} -> ${to}: ${ROWS} rows inserted then updated in one transaction each, caught up ${caughtUp} ms after the writes, equal row by row (${Date.now() - t0} ms in all)`);
      expect((await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`)).body.data.deleteJob).toBe(true);
    }, CONVERGE_MS + 120_000);
  }
});
