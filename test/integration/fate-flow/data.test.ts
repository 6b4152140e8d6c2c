/**
 * FATE-Flow v1 data endpoints on real servers: upload a 100k-row CSV from a
 * server path, table_info, download it again byte for byte; a multipart
 * upload with a tab delimiter into MariaDB; a ragged CSV is refused naming
 * its line with nothing loaded; a missing file, an existing table without
 * drop, and missing arguments answer the right retcode. FATEFLOW_PORT serves
 * the same routes on their own listener.
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

    const ragged = new FormData();
    ragged.append('file', new Blob(['id,a\n1,x\n2\n'], { type: 'text/csv' }), 'r.csv');
    const r = (await (await fetch(`${gw.url}/v1/data/upload?namespace=mariadata&table_name=r1&head=1&partition=1`, { method: 'POST', body: ragged })).json()) as any;
    expect(r).toMatchObject({ retcode: 102 });
    expect(r.retmsg).toMatch(/line 3/);
  });
});
