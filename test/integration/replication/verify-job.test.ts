/**
 * verifyJob (issue 17): a running job's destination compared with its source
 * range by range, in all four directions. Equal while a writer runs (rows in
 * flight settle on re-read, no false alarm); then rows removed, changed and
 * added behind the job's back at the destination are reported in the ranges
 * that hold them, and the job keeps RUNNING.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, expectConverged, ITEMS, qname, useReplicationSuite, waitJob } from '../../support/replication.ts';

const VERIFY = `mutation($id: ID!, $i: VerifyJobInput) { verifyJob(id: $id, input: $i) {
  jobId jobStatus equal lagMs
  tables { schema table destinationSchema destinationTable status ranges sourceRows destinationRows missingColumns settledRanges message
    differingRanges { index after upTo sourceRows destinationRows sourceChecksum destinationChecksum missing extra different sampleKeys } } } }`;

/** A table of many kinds, created and filled alike on both engines. */
const WIDE = {
  create(db: DbHandle): string {
    return db.kind === 'postgres'
      ? `CREATE TABLE wide (id bigint PRIMARY KEY, t text, n numeric(12,3), f double precision, b boolean, ts timestamp(6), d date, j jsonb, bin bytea)`
      : `CREATE TABLE wide (id bigint PRIMARY KEY, t text, n decimal(12,3), f double, b boolean, ts datetime(6), d date, j json, bin blob)`;
  },
  fill(db: DbHandle): string {
    return db.kind === 'postgres'
      ? `INSERT INTO wide SELECT g, 'é ' || g || ' "q" \\', g * 1.5, g / 3.0, g % 2 = 0, timestamp '2024-02-29 23:59:59.5' + g * interval '1 hour', date '2000-01-01' + g, jsonb_build_object('k', g, 'a', jsonb_build_array(1, 'x', null)), decode(md5(g::text), 'hex') FROM generate_series(1, 300) g`
      : `INSERT INTO wide SELECT seq, CONCAT('é ', seq, ' "q" \\\\'), seq * 1.5, seq / 3.0, seq % 2 = 0, TIMESTAMPADD(HOUR, seq, '2024-02-29 23:59:59.5'), DATE_ADD('2000-01-01', INTERVAL seq DAY), JSON_OBJECT('k', seq, 'a', JSON_ARRAY(1, 'x', NULL)), UNHEX(MD5(seq)) FROM seq_1_to_300`;
  },
};

describe('verifyJob: range checksums on a running job, four directions', () => {
  const { gw, open } = useReplicationSuite();

  for (const [from, to] of [['mysql', 'postgres'], ['postgres', 'mysql'], ['mysql', 'mysql'], ['postgres', 'postgres']] as const) {
    it(`${from} -> ${to}: equal under writes, then the tampered ranges and nothing else`, async () => {
      const src = await open(from, uniq('vf_src'));
      const dst = await open(to, uniq('vf_dst'));
      await src.query(ITEMS.create(src));
      await src.query(ITEMS.fill(src, 1000));
      await src.query(WIDE.create(src));
      await src.query(WIDE.fill(src));
      await src.query(from === 'postgres' ? `CREATE TABLE tags (code varchar(20) PRIMARY KEY, v int)` : `CREATE TABLE tags (code varchar(20) PRIMARY KEY, v int)`);
      await src.query(`INSERT INTO tags VALUES ('b', 1), ('a', 2), ('B2', 3), ('a-1', 4), ('Z', 5)`);
      const srcSchema = from === 'postgres' ? 'public' : src.database;
      const dstSchema = to === 'mysql' ? dst.database : srcSchema;
      const job = await createJob(gw.url, {
        name: uniq('verify'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
        tables: [{ schema: srcSchema, tables: ['items', 'wide', 'tags'] }], parallelWorkers: 2,
        ...(dstSchema !== srcSchema ? { rename: { schemas: { [srcSchema]: dstSchema } } } : {}),
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 90_000, 'streaming');
      await expectConverged(src, 'items', dst, qname(dst, dstSchema, 'items'));

      // A gentle writer (about 20 changes/s) runs through the whole verification.
      let stop = false;
      const writer = (async () => {
        let i = 0;
        while (!stop) {
          const id = 1 + ((i * 37) % 1000);
          await src.query(`UPDATE items SET qty = qty + 1, note = 'w${i}' WHERE id = ${id}`);
          if (i % 5 === 0) await src.query(`UPDATE wide SET t = 'w${i}', n = n + 1 WHERE id = ${1 + (i % 300)}`);
          i++;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      let v: any;
      try {
        const r = await gql(gw.url, VERIFY, { id: job.id, i: { chunkRows: 100, rechecks: 6, recheckDelayMs: 500 } });
        expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
        v = r.body.data.verifyJob;
      } finally {
        stop = true;
        await writer;
      }
      expect(v.tables.map((t: any) => `${t.table}:${t.status}`).sort(), JSON.stringify(v.tables, null, 1)).toEqual(['items:EQUAL', 'tags:EQUAL', 'wide:EQUAL']);
      expect(v.equal).toBe(true);
      const items = v.tables.find((t: any) => t.table === 'items');
      expect(items.ranges).toBe(11); // 1,000 keys in ranges of 100: ten bounds, eleven ranges
      expect(items.sourceRows).toBe(1000);
      expect(items.destinationSchema).toBe(dstSchema);
      expect(v.tables.find((t: any) => t.table === 'tags').ranges).toBe(1); // text key: one range

      // Behind the job's back: one row gone, one changed, one added.
      const dItems = qname(dst, dstSchema, 'items');
      await dst.query(`DELETE FROM ${dItems} WHERE id = 5`);
      await dst.query(`UPDATE ${dItems} SET name = 'tampered' WHERE id = 250`);
      await dst.query(`INSERT INTO ${dItems} (id, name, qty) VALUES (5000, 'extra', 1)`);
      await dst.query(`UPDATE ${qname(dst, dstSchema, 'wide')} SET j = ${to === 'postgres' ? `'{"k": 0}'::jsonb` : `'{"k": 0}'`} WHERE id = 7`);
      const r2 = await gql(gw.url, VERIFY, { id: job.id, i: { chunkRows: 100, rechecks: 1, recheckDelayMs: 200 } });
      expect(r2.body.errors, JSON.stringify(r2.body.errors)).toBeUndefined();
      const v2 = r2.body.data.verifyJob;
      expect(v2.equal).toBe(false);
      const it2 = v2.tables.find((t: any) => t.table === 'items');
      expect(it2.status).toBe('DIFFERENT');
      const byIndex = Object.fromEntries(it2.differingRanges.map((d: any) => [d.index, d]));
      expect(Object.keys(byIndex).map(Number).sort((a, b) => a - b)).toEqual([0, 2, 10]);
      expect(byIndex[0]).toMatchObject({ missing: 1, extra: 0, different: 0, sampleKeys: ['[5]'], sourceRows: 100, destinationRows: 99, upTo: '[100]' });
      expect(byIndex[2]).toMatchObject({ missing: 0, extra: 0, different: 1, sampleKeys: ['[250]'], after: '[200]', upTo: '[300]' });
      expect(byIndex[2].sourceChecksum).not.toBe(byIndex[2].destinationChecksum);
      expect(byIndex[10]).toMatchObject({ missing: 0, extra: 1, different: 0, sampleKeys: ['[5000]'], after: '[1000]' });
      const wide = v2.tables.find((t: any) => t.table === 'wide');
      expect(wide.differingRanges.map((d: any) => [d.index, d.different, d.sampleKeys])).toEqual([[0, 1, ['[7]']]]);
      expect(v2.tables.find((t: any) => t.table === 'tags').status).toBe('EQUAL');

      // One table by name; the job kept running throughout.
      const r3 = await gql(gw.url, VERIFY, { id: job.id, i: { tables: ['tags'] } });
      expect(r3.body.data.verifyJob.tables.map((t: any) => t.table)).toEqual(['tags']);
      const j = (await gql(gw.url, `query { job(id: "${job.id}") { status error } }`)).body.data.job;
      expect(j).toEqual({ status: 'RUNNING', error: null });
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    });
  }

  it('keyless tables compare as multisets; errors in the GraphQL dialect', async () => {
    const src = await open('postgres', uniq('vf_kl_src'));
    const dst = await open('postgres', uniq('vf_kl_dst'));
    await src.query(`CREATE TABLE logs (msg text, n int)`);
    await src.query(`INSERT INTO logs VALUES ('a', 1), ('a', 1), ('b', NULL)`);
    const job = await createJob(gw.url, {
      name: uniq('verifykl'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
      tables: [{ schema: 'public', tables: ['logs'] }],
    });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 90_000, 'streaming');
    await expectConverged(src, 'logs', dst, 'public.logs', 30_000, async (db, t) => (await db.query<{ r: string }>(`SELECT concat_ws('|', msg, coalesce(n::text, '~')) AS r FROM ${t} ORDER BY 1`)).map((x) => x.r));
    let v = (await gql(gw.url, VERIFY, { id: job.id, i: { rechecks: 0 } })).body.data.verifyJob;
    expect(v.tables[0]).toMatchObject({ status: 'EQUAL', sourceRows: 3, destinationRows: 3, ranges: 1 });
    // One of two identical rows gone at the destination: a multiset difference.
    await dst.query(`DELETE FROM public.logs WHERE ctid = (SELECT min(ctid) FROM public.logs WHERE msg = 'a')`);
    v = (await gql(gw.url, VERIFY, { id: job.id, i: { rechecks: 0 } })).body.data.verifyJob;
    expect(v.tables[0].status).toBe('DIFFERENT');
    expect(v.tables[0].differingRanges[0]).toMatchObject({ missing: 1, extra: 0, different: 0, sourceRows: 3, destinationRows: 2 });
    expect(v.tables[0].differingRanges[0].sampleKeys[0]).toMatch(/^row /);
    // A destination table dropped: said so.
    await dst.query(`DROP TABLE public.logs`);
    v = (await gql(gw.url, VERIFY, { id: job.id, i: { rechecks: 0 } })).body.data.verifyJob;
    expect(v.tables[0]).toMatchObject({ status: 'MISSING_DESTINATION' });

    const bad = await gql(gw.url, VERIFY, { id: job.id, i: { tables: ['nope'] } });
    expect(bad.body.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    expect(bad.body.errors![0]!.message).toContain('nope');
    const range = await gql(gw.url, VERIFY, { id: job.id, i: { chunkRows: 1 } });
    expect(range.body.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    const missing = await gql(gw.url, VERIFY, { id: 'no-such-job' });
    expect(missing.body.errors![0]!.extensions?.code).toBe('NOT_FOUND');
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });
});
