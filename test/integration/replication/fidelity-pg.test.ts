/**
 * Issue 17, PostgreSQL-source cases: the destination equals the source row by
 * row (compared with plain database clients), in both destination engines.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, waitJob } from '../../support/replication.ts';

describe('fidelity, PostgreSQL source', () => {
  let gw: TestGateway;
  const handles: DbHandle[] = [];
  beforeAll(async () => { gw = await startTestGateway(); });
  afterAll(async () => {
    await gw?.close();
    for (const h of handles) await h.close().catch(() => undefined);
  });

  for (const to of ['postgres', 'mysql'] as const) {
    it(`unchanged TOAST values of a table created after the job started stay intact (-> ${to})`, async () => {
      const src = await pgDatabase(inject('pgUrl'), uniq('toast_src')); handles.push(src);
      const dst = to === 'postgres' ? await pgDatabase(inject('pgUrl'), uniq('toast_dst')) : await mariaDatabase(inject('mariaUrl'), uniq('toast_dst'));
      handles.push(dst);
      await src.query(`CREATE TABLE early (id int PRIMARY KEY, v int)`);
      const job = await createJob(gw.url, {
        name: uniq('toast'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
        tables: [{ schema: 'public' }], ...(to === 'mysql' ? { rename: { schemas: { public: dst.database } } } : {}),
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
      await src.query(`CREATE TABLE late (id int PRIMARY KEY, n int, big text, doc jsonb, bin bytea)`);
      await src.query(`INSERT INTO late SELECT g, 0, r, jsonb_build_object('k', r), decode(r, 'hex')
        FROM (SELECT g, (SELECT string_agg(md5(random()::text || i || g), '') FROM generate_series(1, 1000) i) AS r FROM generate_series(1, 5) g) x`);
      // Random hex of 32 kB does not compress below the TOAST threshold: stored out of line, sent as 'u' when unchanged.
      await src.query(`UPDATE late SET n = n + 1`);
      await src.query(`UPDATE late SET n = n + 1 WHERE id <= 2`);
      const dstTable = to === 'postgres' ? 'public.late' : `\`${dst.database}\`.late`;
      const srcRows = await src.query<{ r: string }>(`SELECT concat_ws('|', id, n, md5(big), length(big), md5(doc->>'k'), md5(bin)) AS r FROM late ORDER BY id`);
      const sql = to === 'postgres'
        ? `SELECT concat_ws('|', id, n, md5(big), length(big), md5(doc->>'k'), md5(bin)) AS r FROM ${dstTable} ORDER BY id`
        : `SELECT CONCAT_WS('|', id, n, MD5(big), CHAR_LENGTH(big), MD5(JSON_UNQUOTE(JSON_EXTRACT(doc, '$.k'))), MD5(bin)) AS r FROM ${dstTable} ORDER BY id`;
      const got = await waitFor(async () => (await dst.query<{ r: string }>(sql).catch(() => [])).map((x) => x.r), (rows) => rows.length === 5 && rows.join() === srcRows.map((x) => x.r).join(), 30_000, 'late converged').catch(async () => (await dst.query<{ r: string }>(sql)).map((x) => x.r));
      expect(got).toEqual(srcRows.map((x) => x.r));
      const j = (await gql(gw.url, `query { job(id: "${job.id}") { status error } }`)).body.data.job;
      expect(j.status).toBe('RUNNING');
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    });
  }

  for (const [to, byName] of [['postgres', false], ['mysql', true], ['postgres', true]] as const) {
    it(`partitioned tables arrive as their root table, snapshot and stream (${byName ? 'parent by name' : 'whole schema'} -> ${to})`, async () => {
      const src = await pgDatabase(inject('pgUrl'), uniq('part_src')); handles.push(src);
      const dst = to === 'postgres' ? await pgDatabase(inject('pgUrl'), uniq('part_dst')) : await mariaDatabase(inject('mariaUrl'), uniq('part_dst'));
      handles.push(dst);
      await src.query(`CREATE TABLE meas (id int, region varchar(8), v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region)`);
      await src.query(`CREATE TABLE meas_eu PARTITION OF meas FOR VALUES IN ('eu')`);
      await src.query(`CREATE TABLE meas_us PARTITION OF meas FOR VALUES IN ('us')`);
      await src.query(`CREATE TABLE meas_other PARTITION OF meas DEFAULT`);
      await src.query(`INSERT INTO meas SELECT g, (ARRAY['eu','us','asia'])[1 + g % 3], g FROM generate_series(1, 30) g`);
      const job = await createJob(gw.url, {
        name: uniq('part'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
        tables: [byName ? { schema: 'public', tables: ['meas'] } : { schema: 'public' }],
        ...(to === 'mysql' ? { rename: { schemas: { public: dst.database } } } : {}),
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
      await src.query(`INSERT INTO meas SELECT g, (ARRAY['eu','us','asia'])[1 + g % 3], g FROM generate_series(31, 40) g`);
      await src.query(`UPDATE meas SET v = v * 10 WHERE id % 4 = 0`);
      // A row moving to another partition: a delete in one, an insert in the other at the source.
      await src.query(`UPDATE meas SET region = 'us' WHERE id IN (3, 6)`);
      await src.query(`DELETE FROM meas WHERE id IN (5, 7, 35)`);
      const want = (await src.query<{ r: string }>(`SELECT concat_ws('|', id, region, v) AS r FROM meas ORDER BY id, region`)).map((x) => x.r);
      const dstTable = to === 'postgres' ? 'public.meas' : `\`${dst.database}\`.meas`;
      const sql = to === 'postgres' ? `SELECT concat_ws('|', id, region, v) AS r FROM ${dstTable} ORDER BY id, region` : `SELECT CONCAT_WS('|', id, region, v) AS r FROM ${dstTable} ORDER BY id, region`;
      const got = await waitFor(async () => (await dst.query<{ r: string }>(sql).catch(() => [])).map((x) => x.r), (rows) => rows.join() === want.join(), 30_000, 'meas converged')
        .catch(async () => (await dst.query<{ r: string }>(sql)).map((x) => x.r));
      expect(got).toEqual(want);
      const j = (await gql(gw.url, `query { job(id: "${job.id}") { status error } }`)).body.data.job;
      expect(j).toEqual({ status: 'RUNNING', error: null });
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    });
  }

  it('-0 in real and double precision survives snapshot and stream (-> postgres)', async () => {
    const src = await pgDatabase(inject('pgUrl'), uniq('negz_src')); handles.push(src);
    const dst = await pgDatabase(inject('pgUrl'), uniq('negz_dst')); handles.push(dst);
    await src.query(`CREATE TABLE f (id int PRIMARY KEY, r real, d double precision)`);
    await src.query(`INSERT INTO f VALUES (1, '-0', '-0'), (2, 0, 0), (3, '-1.5e-40', '-4.9e-324')`);
    const job = await createJob(gw.url, { name: uniq('negz'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public', tables: ['f'] }] });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
    await src.query(`INSERT INTO f VALUES (4, '-0', '-0')`);
    await src.query(`UPDATE f SET d = '-0' WHERE id = 2`);
    // float8send shows the sign bit, which the text form of -0 and 0 also shows ('-0' vs '0').
    const read = async (db: DbHandle) => (await db.query<{ r: string }>(`SELECT concat_ws('|', id, r::text, d::text, encode(float8send(d), 'hex')) AS r FROM ${db === src ? 'f' : 'public.f'} ORDER BY id`)).map((x) => x.r);
    const want = await read(src);
    expect(want[0]).toBe('1|-0|-0|8000000000000000');
    const got = await waitFor(() => read(dst).catch(() => [] as string[]), (rows) => rows.join() === want.join(), 30_000, 'f converged').catch(() => read(dst));
    expect(got).toEqual(want);
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });

  for (const to of ['postgres', 'mysql'] as const) {
    it(`RENAME COLUMN on the source while streaming keeps every value (-> ${to})`, async () => {
      const src = await pgDatabase(inject('pgUrl'), uniq('ren_src')); handles.push(src);
      const dst = to === 'postgres' ? await pgDatabase(inject('pgUrl'), uniq('ren_dst')) : await mariaDatabase(inject('mariaUrl'), uniq('ren_dst'));
      handles.push(dst);
      await src.query(`CREATE TABLE r (id int PRIMARY KEY, label text, n int)`);
      await src.query(`INSERT INTO r SELECT g, 'before ' || g, g FROM generate_series(1, 20) g`);
      const job = await createJob(gw.url, {
        name: uniq('ren'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public', tables: ['r'] }],
        ...(to === 'mysql' ? { rename: { schemas: { public: dst.database } } } : {}),
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
      await src.query(`INSERT INTO r VALUES (21, 'streamed 21', 21)`);
      await src.query(`ALTER TABLE r RENAME COLUMN label TO title`);
      await src.query(`INSERT INTO r VALUES (22, 'after 22', 22)`);
      await src.query(`UPDATE r SET title = title || '!' WHERE id IN (2, 21)`);
      await src.query(`UPDATE r SET n = n + 100 WHERE id = 3`);
      const want = (await src.query<{ r: string }>(`SELECT concat_ws('|', id, title, n) AS r FROM r ORDER BY id`)).map((x) => x.r);
      const dstTable = to === 'postgres' ? 'public.r' : `\`${dst.database}\`.r`;
      const sql = to === 'postgres' ? `SELECT concat_ws('|', id, title, n) AS r FROM ${dstTable} ORDER BY id` : `SELECT CONCAT_WS('|', id, title, n) AS r FROM ${dstTable} ORDER BY id`;
      const got = await waitFor(async () => (await dst.query<{ r: string }>(sql).catch(() => [])).map((x) => x.r), (rows) => rows.join() === want.join(), 30_000, 'r converged')
        .catch(async () => (await dst.query<{ r: string }>(sql).catch((e) => [{ r: String(e) }])).map((x) => x.r));
      expect(got).toEqual(want);
      const j = (await gql(gw.url, `query { job(id: "${job.id}") { status error } }`)).body.data.job;
      expect(j).toEqual({ status: 'RUNNING', error: null });
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    });
  }

  it('domains over arrays, composite types and arrays of them (-> postgres): created as types the destination has, values equal as text', async () => {
    const src = await pgDatabase(inject('pgUrl'), uniq('udt_src')); handles.push(src);
    const dst = await pgDatabase(inject('pgUrl'), uniq('udt_dst')); handles.push(dst);
    await src.query(`CREATE DOMAIN intlist AS int[] CHECK (cardinality(VALUE) < 10)`);
    await src.query(`CREATE TYPE pair AS (a int, b text)`);
    await src.query(`CREATE TYPE mood AS ENUM ('sad', 'ok')`);
    await src.query(`CREATE DOMAIN pos AS int CHECK (VALUE > 0)`);
    await src.query(`CREATE TABLE u (id int PRIMARY KEY, l intlist, p pair, ps pair[], ms mood[], n pos)`);
    await src.query(`INSERT INTO u VALUES (1, '{1,2,3}', '(1,"a b")', ARRAY['(2,x)'::pair, '(3,"y,z")'::pair], '{sad,ok}', 5), (2, NULL, NULL, NULL, NULL, NULL)`);
    const job = await createJob(gw.url, { name: uniq('udt'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public', tables: ['u'] }] });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
    await src.query(`INSERT INTO u VALUES (3, '{}', '(,)', '{}', '{ok}', 7)`);
    await src.query(`UPDATE u SET l = '{9}', p = '(4,"q\\"r")' WHERE id = 1`);
    const read = async (db: DbHandle) => (await db.query<{ r: string }>(`SELECT concat_ws('|', id, l::text, p::text, ps::text, ms::text, n::text) AS r FROM public.u ORDER BY id`)).map((x) => x.r);
    const want = await read(src);
    const got = await waitFor(() => read(dst).catch(() => [] as string[]), (rows) => rows.join() === want.join(), 30_000, 'u converged').catch(() => read(dst).catch((e) => [String(e)]));
    expect(got).toEqual(want);
    const j = (await gql(gw.url, `query { job(id: "${job.id}") { status error } }`)).body.data.job;
    expect(j).toEqual({ status: 'RUNNING', error: null });
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });

  for (const to of ['postgres', 'mysql'] as const) {
    it(`ALTER TYPE ... ADD VALUE while streaming, then rows with the new label (-> ${to})`, async () => {
      const src = await pgDatabase(inject('pgUrl'), uniq('lab_src')); handles.push(src);
      const dst = to === 'postgres' ? await pgDatabase(inject('pgUrl'), uniq('lab_dst')) : await mariaDatabase(inject('mariaUrl'), uniq('lab_dst'));
      handles.push(dst);
      await src.query(`CREATE TYPE mood AS ENUM ('sad', 'ok')`);
      await src.query(`CREATE TABLE m (id int PRIMARY KEY, md mood)`);
      await src.query(`INSERT INTO m VALUES (1, 'sad'), (2, 'ok')`);
      const job = await createJob(gw.url, {
        name: uniq('lab'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public', tables: ['m'] }],
        ...(to === 'mysql' ? { rename: { schemas: { public: dst.database } } } : {}),
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
      await src.query(`INSERT INTO m VALUES (3, 'ok')`);
      await src.query(`ALTER TYPE mood ADD VALUE 'great'`);
      await src.query(`ALTER TYPE mood ADD VALUE 'it''s fine' BEFORE 'ok'`);
      await src.query(`INSERT INTO m VALUES (4, 'great'), (5, 'it''s fine')`);
      await src.query(`UPDATE m SET md = 'great' WHERE id = 1`);
      const want = (await src.query<{ r: string }>(`SELECT concat_ws('|', id, md::text) AS r FROM m ORDER BY id`)).map((x) => x.r);
      const dstTable = to === 'postgres' ? 'public.m' : `\`${dst.database}\`.m`;
      const sql = to === 'postgres' ? `SELECT concat_ws('|', id, md) AS r FROM ${dstTable} ORDER BY id` : `SELECT CONCAT_WS('|', id, md) AS r FROM ${dstTable} ORDER BY id`;
      const got = await waitFor(async () => (await dst.query<{ r: string }>(sql).catch(() => [])).map((x) => x.r), (rows) => rows.join() === want.join(), 30_000, 'm converged')
        .catch(async () => (await dst.query<{ r: string }>(sql).catch((e) => [{ r: String(e) }])).map((x) => x.r));
      const j = (await gql(gw.url, `query { job(id: "${job.id}") { status error } }`)).body.data.job;
      expect(got).toEqual(want);
      expect(j).toEqual({ status: 'RUNNING', error: null });
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    });
  }
});
