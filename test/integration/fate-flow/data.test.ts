/**
 * FATE-Flow v1 data endpoints on real servers: upload a 100k-row CSV from a
 * server path, table_info, download it again byte for byte; a multipart
 * upload with a tab delimiter into MariaDB; a ragged CSV is refused naming
 * its line with nothing loaded; a missing file, an existing table without
 * drop, and missing arguments answer the right retcode. FATEFLOW_PORT serves
 * the same routes on their own listener. `partition` is applied: the tables
 * are hash-partitioned on their key in the databases themselves; table_info
 * `create` creates the table.
 */
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, type DbHandle } from '../../support/databases.ts';
import { fate, gqlCreateConnection, waitJob } from './support.ts';
import { freePort } from '../../../src/devtools/private-servers.ts';

let gw: TestGateway;
let pg: DbHandle;
let maria: DbHandle;
let dir: string;
let fatePort = 0;
const N = 100_000;

function bigCsv(): string {
  const lines = ['id,name,city,score,note'];
  for (let i = 1; i <= N; i++) lines.push(`${i},user_${i},${['Paris', 'Oslo', 'São Paulo', 'Kyiv'][i % 4]},${(i * 7919) % 1000},${i % 10 === 0 ? '"has, comma"' : i % 13 === 0 ? '' : `n${i % 97}`}`);
  return `${lines.join('\n')}\n`;
}

beforeAll(async () => {
  fatePort = await freePort();
  gw = await startTestGateway({ workerConcurrency: 2, fateFlowPort: fatePort });
  pg = await pgDatabase(inject('pgUrl'));
  maria = await mariaDatabase(inject('mariaUrl'));
  dir = mkdtempSync(path.join(tmpdir(), 'fate-data-'));
  await gqlCreateConnection(gw.url, { name: 'pgdata', kind: 'POSTGRES', host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database });
  await gqlCreateConnection(gw.url, { name: 'mariadata', kind: 'MYSQL', host: maria.host, port: maria.port, user: maria.user, password: maria.password, database: maria.database });
}, 120_000);

afterAll(async () => {
  await gw?.close();
  await pg?.close();
  await maria?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('FATE-Flow v1 data', () => {
  it('/v1/data/upload a 100k-row CSV, /v1/table/table_info, /v1/data/download: the file comes back equal', async () => {
    const src = path.join(dir, 'users.csv');
    const text = bigCsv();
    writeFileSync(src, text);
    const up = await fate(gw.url, '/v1/data/upload', { file: src, head: 1, partition: 8, work_mode: 0, namespace: 'pgdata', table_name: 'users', local: { role: 'local', party_id: 0 }, role: {}, data_type: 'csv', gen_table_info: true });
    expect(up.body).toMatchObject({ retcode: 0, retmsg: 'success', data: { namespace: 'pgdata', table_name: 'users' } });
    const job = await waitJob(gw.url, up.body.jobId!, ['success'], 60_000);
    expect(job.f_progress).toBe(100);
    const task = (await fate(gw.url, '/v1/job/task/query', { job_id: up.body.jobId })).body.data[0];
    expect(task).toMatchObject({ f_component_name: 'upload_0', f_status: 'success', f_progress: { rowsOut: N, total: N } });

    const info = await fate(gw.url, '/v1/table/table_info', { namespace: 'pgdata', table_name: 'users', local: { role: 'local', party_id: 0 }, create: false });
    expect(info.body).toMatchObject({ retcode: 0, data: { table_name: 'users', namespace: 'pgdata', exist: 1, count: N, partition: 8, schema: { header: 'name,city,score,note', sid: 'id' } } });
    const onLegacyPort = await fate(`http://127.0.0.1:${fatePort}`, '/v1/table/table_info', { namespace: 'pgdata', table_name: 'users' });
    expect(onLegacyPort.body).toEqual(info.body);
    expect(info.body.data.schema.columns.map((c: any) => `${c.name}:${c.kind}`)).toEqual(['id:int', 'name:text', 'city:text', 'score:int', 'note:text']);
    // partition: 8 is how PostgreSQL stores the table: hash-partitioned on the key into 8 partitions, every one holding rows.
    const parts = await pg.query(`SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'public.users'::regclass ORDER BY c.relname`);
    expect(parts.map((p) => p.name)).toEqual(Array.from({ length: 8 }, (_, i) => `users_p${i}`));
    expect(parts[3].bound).toBe('FOR VALUES WITH (modulus 8, remainder 3)');
    expect(await pg.query("SELECT pg_get_partkeydef('public.users'::regclass) AS k")).toEqual([{ k: 'HASH (id)' }]);
    const perPartition = await pg.query('SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM public.users GROUP BY 1');
    expect(perPartition).toHaveLength(8);
    expect(perPartition.reduce((a, r) => a + r.n, 0)).toBe(N);

    const out = path.join(dir, 'users-out.csv');
    const down = await fate(gw.url, '/v1/data/download', { output_path: out, namespace: 'pgdata', table_name: 'users', delimitor: ',', work_mode: 0, local: { role: 'local', party_id: 0 }, role: {} });
    expect(down.body.retcode).toBe(0);
    await waitJob(gw.url, down.body.jobId!, ['success'], 60_000);
    expect(readFileSync(out, 'utf8')).toBe(text);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const again = await fate(gw.url, '/v1/data/upload', { file: src, head: 1, partition: 1, namespace: 'pgdata', table_name: 'users' });
    expect(again.body.retcode).toBe(100);
    expect(again.body.retmsg).toMatch(/already exists/);
  }, 90_000);

  it('a ragged CSV is refused naming the line, and nothing is loaded', async () => {
    const bad = path.join(dir, 'ragged.csv');
    const lines = ['id,a,b'];
    for (let i = 1; i <= 5000; i++) lines.push(i === 4321 ? `${i},x` : `${i},x,y`);
    writeFileSync(bad, `${lines.join('\n')}\n`);
    const r = await fate(gw.url, '/v1/data/upload', { file: bad, head: 1, partition: 1, namespace: 'pgdata', table_name: 'ragged' });
    expect(r.status).toBe(200);
    expect(r.body.retcode).toBe(102);
    expect(r.body.retmsg).toMatch(/line 4322: 2 fields where the header has 3/);
    expect(r.body.jobId).toBeUndefined();
    const info = await fate(gw.url, '/v1/table/table_info', { namespace: 'pgdata', table_name: 'ragged', local: {} });
    expect(info.body.data).toMatchObject({ exist: 0, count: 0 });
    expect(await pg.query("SELECT to_regclass('public.ragged') AS t")).toEqual([{ t: null }]);
  });

  it('a file that does not exist, an unknown namespace, missing arguments', async () => {
    const missing = await fate(gw.url, '/v1/data/upload', { file: path.join(dir, 'nope.csv'), head: 1, partition: 1, namespace: 'pgdata', table_name: 't1' });
    expect(missing.body.retcode).toBe(102);
    expect(missing.body.retmsg).toMatch(/nope\.csv does not exist/);
    const ns = await fate(gw.url, '/v1/data/download', { output_path: path.join(dir, 'x.csv'), namespace: 'no-such-ns', table_name: 'users' });
    expect(ns.body.retcode).toBe(102);
    const nodir = await fate(gw.url, '/v1/data/download', { output_path: '/no/such/dir/x.csv', namespace: 'pgdata', table_name: 'users' });
    expect(nodir.body.retcode).toBe(102);
    const notable = await fate(gw.url, '/v1/data/download', { output_path: path.join(dir, 'x.csv'), namespace: 'pgdata', table_name: 'ghost' });
    expect(notable.body.retcode).toBe(102);
    expect((await fate(gw.url, '/v1/data/download', { namespace: 'pgdata', table_name: 'users' })).body).toEqual({ retcode: 101, retmsg: 'required parameters are missing: output_path' });
    expect((await fate(gw.url, '/v1/data/upload', { namespace: 'pgdata', table_name: 'users' })).body).toEqual({ retcode: 101, retmsg: 'required parameters are missing: file' });
    expect((await fate(gw.url, '/v1/table/table_info', { table_name: 'users' })).body.retcode).toBe(101);
  });

  it('multipart upload (the file in the request) with a tab delimiter into MariaDB; drop=1 replaces', async () => {
    const body = 'id\tword\tqty\n1\talpha\t10\n2\tbeta\t\n3\t"ga\tmma"\t30\n';
    const form = new FormData();
    form.append('file', new Blob([body], { type: 'text/csv' }), 'words.tsv');
    const q = new URLSearchParams({ namespace: 'mariadata', table_name: 'words', head: '1', partition: '2', delimiter: '\t' });
    const res = await fetch(`${gw.url}/v1/data/upload?${q}`, { method: 'POST', body: form });
    const up = (await res.json()) as any;
    expect(up).toMatchObject({ retcode: 0, data: { namespace: 'mariadata', table_name: 'words' } });
    await waitJob(gw.url, up.jobId, ['success']);
    expect(await maria.query('SELECT id, word, qty FROM words ORDER BY id')).toEqual([{ id: '1', word: 'alpha', qty: '10' }, { id: '2', word: 'beta', qty: null }, { id: '3', word: 'ga\tmma', qty: '30' }]);
    const info = await fate(gw.url, '/v1/table/table_info', { namespace: 'mariadata', table_name: 'words' });
    expect(info.body.data).toMatchObject({ exist: 1, count: 3, partition: 2 });
    const mariaParts = () => maria.query(`SELECT PARTITION_NAME AS p, PARTITION_METHOD AS m, PARTITION_EXPRESSION AS e FROM information_schema.PARTITIONS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'words' AND PARTITION_NAME IS NOT NULL ORDER BY PARTITION_ORDINAL_POSITION`);
    expect(await mariaParts()).toEqual([{ p: 'p0', m: 'KEY', e: '`id`' }, { p: 'p1', m: 'KEY', e: '`id`' }]);
    const stagedDir = path.join(tmpdir(), 'tributary-fate-uploads');
    if (existsSync(stagedDir)) expect(readdirSync(stagedDir).filter((f) => f.endsWith('words.tsv'))).toEqual([]);

    // FATE clients >= 1.5.1 send the config as one JSON-encoded query key.
    const form2 = new FormData();
    form2.append('file', new Blob(['id,word\n7,seven\n'], { type: 'text/csv' }), 'w2.csv');
    const cfg = encodeURIComponent(JSON.stringify({ namespace: 'mariadata', table_name: 'words', head: 1, partition: 1, drop: 1 }));
    const up2 = (await (await fetch(`${gw.url}/v1/data/upload?${cfg}`, { method: 'POST', body: form2 })).json()) as any;
    expect(up2.retcode).toBe(0);
    await waitJob(gw.url, up2.jobId, ['success']);
    expect(await maria.query('SELECT id, word FROM words ORDER BY id')).toEqual([{ id: '7', word: 'seven' }]);
    // Replaced with partition 1: no longer partitioned.
    expect(await mariaParts()).toEqual([]);
    expect((await fate(gw.url, '/v1/table/table_info', { namespace: 'mariadata', table_name: 'words' })).body.data).toMatchObject({ exist: 1, count: 1, partition: 1 });

    const ragged = new FormData();
    ragged.append('file', new Blob(['id,a\n1,x\n2\n'], { type: 'text/csv' }), 'r.csv');
    const r = (await (await fetch(`${gw.url}/v1/data/upload?namespace=mariadata&table_name=r1&head=1&partition=1`, { method: 'POST', body: ragged })).json()) as any;
    expect(r).toMatchObject({ retcode: 102 });
    expect(r.retmsg).toMatch(/line 3/);
  });

  it('/v1/table/table_info with create: the table is created, partitioned on its key; an existing one is left as it is', async () => {
    // The seed's request structure: create, namespace, table_name, local, role, data_type, gen_table_info.
    const seedFields = { local: { role: 'local', party_id: 0 }, role: { local: [0] }, data_type: 'csv', gen_table_info: true };
    const made = await fate(gw.url, '/v1/table/table_info', { create: true, namespace: 'pgdata', table_name: 'scores', ...seedFields });
    expect(made.body).toMatchObject({ retcode: 0, data: { table_name: 'scores', namespace: 'pgdata', exist: 1, count: 0, partition: 1, schema: { sid: 'id', header: 'value' } } });
    expect(await pg.query("SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'scores' ORDER BY ordinal_position"))
      .toEqual([{ c: 'id', t: 'text' }, { c: 'value', t: 'text' }]);
    // Without create the same name is only read.
    expect((await fate(gw.url, '/v1/table/table_info', { namespace: 'pgdata', table_name: 'scores', create: false })).body.data).toMatchObject({ exist: 1, count: 0 });

    // partition and the table schema (FATE's {sid, header}, as table_info answers it), on both databases.
    const body = { create: true, table_name: 'features', partition: 4, schema: { sid: 'uid', header: 'x0,x1,x2' }, ...seedFields };
    const onPg = await fate(gw.url, '/v1/table/table_info', { ...body, namespace: 'pgdata' });
    expect(onPg.body.data).toMatchObject({ exist: 1, count: 0, partition: 4, schema: { sid: 'uid', header: 'x0,x1,x2' } });
    expect(await pg.query("SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'public.features'::regclass")).toEqual([{ n: 4 }]);
    const onMaria = await fate(gw.url, '/v1/table/table_info', { ...body, namespace: 'mariadata' });
    expect(onMaria.body.data).toMatchObject({ exist: 1, count: 0, partition: 4, schema: { sid: 'uid', header: 'x0,x1,x2' } });
    expect(await maria.query("SELECT count(*) AS n FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'features' AND PARTITION_NAME IS NOT NULL")).toEqual([{ n: '4' }]);
    // Rows go in and spread over the partitions.
    await pg.query("INSERT INTO public.features SELECT 'u' || g, g::text, '', '' FROM generate_series(1, 400) g");
    expect((await pg.query('SELECT count(DISTINCT tableoid)::int AS n FROM public.features'))[0].n).toBe(4);
    expect((await fate(gw.url, '/v1/table/table_info', { namespace: 'pgdata', table_name: 'features' })).body.data).toMatchObject({ count: 400, partition: 4 });

    // Creating again leaves the table and its rows as they are.
    const again = await fate(gw.url, '/v1/table/table_info', { ...body, namespace: 'pgdata', partition: 2, schema: { sid: 'k', header: 'v' } });
    expect(again.body.data).toMatchObject({ exist: 1, count: 400, partition: 4, schema: { sid: 'uid' } });

    // No table_name: FATE made one up (a commit id); so does Tributary, and the table is there.
    const named = await fate(gw.url, '/v1/table/table_info', { create: true, namespace: 'mariadata', ...seedFields });
    expect(named.body.retcode).toBe(0);
    expect(named.body.data.table_name).toMatch(/^[0-9a-f]{32}$/);
    expect(await maria.query(`SELECT count(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${named.body.data.table_name}'`)).toEqual([{ n: '1' }]);
    // An upload replaces a created table (drop: 1), as any other.
    const csv = path.join(dir, 'scores.csv');
    writeFileSync(csv, 'id,score\na,1\nb,2\n');
    expect((await fate(gw.url, '/v1/data/upload', { file: csv, head: 1, partition: 1, namespace: 'pgdata', table_name: 'scores' })).body.retcode).toBe(100);
    const up = await fate(gw.url, '/v1/data/upload', { file: csv, head: 1, partition: 3, drop: 1, namespace: 'pgdata', table_name: 'scores' });
    await waitJob(gw.url, up.body.jobId!, ['success']);
    expect((await fate(gw.url, '/v1/table/table_info', { namespace: 'pgdata', table_name: 'scores' })).body.data).toMatchObject({ count: 2, partition: 3, schema: { sid: 'id', header: 'score' } });

    // Argument and data errors.
    expect((await fate(gw.url, '/v1/table/table_info', { create: true, table_name: 'x' })).body).toEqual({ retcode: 101, retmsg: 'required parameters are missing: namespace' });
    expect((await fate(gw.url, '/v1/table/table_info', { create: true, namespace: 'no-such-ns', table_name: 'x' })).body.retcode).toBe(102);
    expect((await fate(gw.url, '/v1/table/table_info', { create: true, namespace: 'pgdata', table_name: 'x', partition: 0 })).body.retcode).toBe(101);
    expect((await fate(gw.url, '/v1/table/table_info', { create: true, namespace: 'pgdata', table_name: 'x', schema: { sid: 'a', header: 'a' } })).body.retcode).toBe(101);
    expect(await pg.query("SELECT to_regclass('public.x') AS t")).toEqual([{ t: null }]);
  });
});
