/**
 * Keyless tables written while the snapshot runs (docs/consistency.md,
 * "Keyless tables"). A keyless table has no key to upsert on, so a change
 * both in its snapshot copy and in the replayed stream would be applied
 * twice. The copy must therefore cover exactly the stream's start, or apply
 * must know which stream changes the copy already holds:
 *  - PostgreSQL sources: the chunk reads the slot's exported snapshot (the
 *    stream starts exactly there).
 *  - MariaDB sources: the chunk's consistent snapshot records its binlog
 *    position (binlog_snapshot_file/position), and apply skips that table's
 *    changes below it.
 * An insert-only ledger (unique by seq, so a doubled change is an extra row)
 * is written from before the job is created until after the snapshot.
 */
import { describe, expect, it } from 'vitest';
import { uniq, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, expectConverged, ITEMS, qname, useReplicationSuite, waitJob } from '../../support/replication.ts';

const ROWS = 30_000;

function ledgerWriter(db: DbHandle): { stop(): Promise<number>; readonly last: number } {
  let seq = 0; let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const k = 1 + (seq % 3);
      const values = Array.from({ length: k }, (_, i) => `(${seq + 1 + i}, 'p${seq + 1 + i}')`).join(', ');
      await db.query(`INSERT INTO ledger (seq, payload) VALUES ${values}`);
      seq += k;
      await new Promise((r) => setTimeout(r, 3));
    }
    return seq;
  })();
  return { stop: async () => { stopped = true; return done; }, get last() { return seq; } };
}

const ledgerRows = async (db: DbHandle, table: string) =>
  (await db.query<{ seq: number; payload: string }>(`SELECT seq, payload FROM ${table} ORDER BY seq`)).map((r) => `${r.seq}|${r.payload}`);

describe('keyless table written during the snapshot: no row twice, none missing', () => {
  const { gw, open } = useReplicationSuite();

  for (const [src, dst] of [['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
    it(`${src} -> ${dst}`, async () => {
      const s = await open(src, uniq(`kl_src_${src}`));
      const d = await open(dst, uniq(`kl_dst_${dst}`));
      await s.query(ITEMS.create(s));
      await s.query(ITEMS.fill(s, ROWS));
      await s.query(`CREATE TABLE ledger (seq int NOT NULL, payload varchar(40))${src === 'mysql' ? ' ENGINE=InnoDB' : ''}`);
      const srcSchema = src === 'postgres' ? 'public' : s.database;
      const dstSchema = dst === 'mysql' ? d.database : srcSchema;
      const writer = ledgerWriter(s);
      await new Promise((r) => setTimeout(r, 200));
      const job = await createJob(gw.url, {
        name: uniq('keyless_snap'), type: 'SYNCHRONOUS', source: endpoint(s), destination: endpoint(d),
        tables: [{ schema: srcSchema }], parallelWorkers: 2, chunkRows: 2000,
        ...(dstSchema !== srcSchema ? { rename: { schemas: { [srcSchema]: dstSchema } } } : {}),
      });
      const atCreate = writer.last;
      const snap = await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 120_000, 'snapshot done');
      expect(snap.status).toBe('RUNNING');
      // The ledger kept changing while the snapshot was planned and read.
      expect(writer.last).toBeGreaterThan(atCreate);
      await new Promise((r) => setTimeout(r, 500));
      const last = await writer.stop();
      await expectConverged(s, 'ledger', d, qname(d, dstSchema, 'ledger'), 60_000, ledgerRows);
      const [n] = await d.query<{ n: number | string; dist: number | string }>(`SELECT count(*) AS n, count(DISTINCT seq) AS dist FROM ${qname(d, dstSchema, 'ledger')}`);
      expect({ rows: Number(n!.n), distinct: Number(n!.dist) }).toEqual({ rows: last, distinct: last });
      await expectConverged(s, 'items', d, qname(d, dstSchema, 'items'), 60_000);
    });
  }
});
