/**
 * Issue 3 end to end: a SYNCHRONOUS job in each of the four directions
 * (MariaDB->PostgreSQL, PostgreSQL->MariaDB, MariaDB->MariaDB,
 * PostgreSQL->PostgreSQL) over a 100k-row table, with a writer inserting,
 * updating and deleting while the snapshot runs and afterwards; source and
 * destination must then be equal row by row.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq } from '../../support/databases.ts';
import { createJob, describeJob, endpoint, expectConverged, getJob, ITEMS, qname, startWriter, useReplicationSuite, waitJob } from '../../support/replication.ts';

const ROWS = 100_000;

describe('four directions: snapshot + concurrent writes + stream converge row by row', () => {
  const { gw, open } = useReplicationSuite();

  const cases: { name: string; src: 'mysql' | 'postgres'; dst: 'mysql' | 'postgres' }[] = [
    { name: 'MariaDB -> PostgreSQL', src: 'mysql', dst: 'postgres' },
    { name: 'PostgreSQL -> MariaDB', src: 'postgres', dst: 'mysql' },
    { name: 'MariaDB -> MariaDB', src: 'mysql', dst: 'mysql' },
    { name: 'PostgreSQL -> PostgreSQL', src: 'postgres', dst: 'postgres' },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const t0 = Date.now();
      const src = await open(c.src, uniq(`fd_src_${c.src}`));
      const dst = await open(c.dst, uniq(`fd_dst_${c.dst}`));
      await src.query(ITEMS.create(src));
      await src.query(ITEMS.fill(src, ROWS));
      const srcSchema = c.src === 'postgres' ? 'public' : src.database;
      // MariaDB destinations get their database by name; keep every job on its own one.
      const dstSchema = c.dst === 'mysql' ? dst.database : srcSchema;
      const rename = dstSchema !== srcSchema ? { schemas: { [srcSchema]: dstSchema } } : undefined;
      const job = await createJob(gw.url, {
        name: uniq('fourdir'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
        tables: [{ schema: srcSchema, tables: ['items'] }], parallelWorkers: 4, chunkRows: 10_000, ...(rename ? { rename } : {}),
      });
      // Writers run while the snapshot is planned and read, then on into streaming.
      const writer = startWriter(src, 'items', { firstNewId: ROWS + 1, maxId: ROWS, durationMs: 5000, seed: 7 + c.name.length });
      const snap = await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'snapshot done');
      expect(snap.status).toBe('RUNNING');
      // The writer really overlapped the snapshot.
      const duringSnapshot = writer.stats.inserts + writer.stats.updates + writer.stats.deletes;
      expect(duringSnapshot).toBeGreaterThan(0);
      const stats = await writer.done;
      const tSnapshot = Date.now() - t0;
      // A little more streaming after the writers of the snapshot phase.
      await src.query(`UPDATE items SET note = 'after' WHERE id % 997 = 0`);
      await src.query(`DELETE FROM items WHERE id BETWEEN 500 AND 520`);
      const rows = await expectConverged(src, 'items', dst, qname(dst, dstSchema, 'items'), 60_000, undefined, () => describeJob(gw.url, job.id));
      const j = await getJob(gw.url, job.id);
      expect(j.status).toBe('RUNNING');
      expect(j.progress.chunksDone).toBe(j.progress.chunksTotal);
      expect(j.progress.chunksTotal).toBeGreaterThanOrEqual(10);
      expect(j.metrics.rowsApplied).toBeGreaterThan(0);
      console.log(`${c.name}: ${rows} rows equal; writer ${JSON.stringify(stats)} (${duringSnapshot} during the snapshot); snapshot+writers ${tSnapshot} ms, total ${Date.now() - t0} ms; chunks ${j.progress.chunksTotal}; applied ${j.metrics.rowsApplied}`);
      expect(j.error).toBeNull();
      expect((await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`)).body.data.deleteJob).toBe(true);
    });
  }
});
