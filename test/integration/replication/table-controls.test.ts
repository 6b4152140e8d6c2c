/**
 * Issue 15 item 4: column and row controls on a job's tables and on a feed,
 * in all four directions.
 * `accounts` is copied with `secret` excluded, `ssn` masked, `email` hashed
 * (HMAC-SHA256 with the job's salt, read here from the metadata database and
 * decrypted with the test's key) and the filter `region = 'eu' AND amount >= 10`,
 * while a writer inserts, updates (moving rows into and out of the filter)
 * and deletes during the snapshot and after it. The destination must then
 * hold exactly the source's rows that pass the filter, shaped by the column
 * controls, row by row; a row updated out of the filter is deleted there and
 * one updated into it inserted. Bad controls answer BAD_USER_INPUT.
 */
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, diffRows, endpoint, getJob, qname, waitJob } from '../../support/replication.ts';
import { SecretBox } from '../../../src/store/secrets.ts';

const ROWS = 3000;
const WHERE = "region = 'eu' AND amount >= 10";
const COLUMNS = { exclude: ['secret'], mask: ['ssn'], hash: ['email', 'score'] };
const TEST_SECRET_KEY = 'test-secret-key-0123456789';

function createAccounts(db: DbHandle, identityFull = false): string {
  return db.kind === 'postgres'
    ? `CREATE TABLE accounts (id int PRIMARY KEY, email varchar(100), ssn varchar(20), secret text, region varchar(10), amount numeric(12,2) NOT NULL, score numeric(10,3), _change_selector text DEFAULT 'a')${identityFull ? '; ALTER TABLE accounts REPLICA IDENTITY FULL' : ''}`
    : `CREATE TABLE accounts (id int PRIMARY KEY, email varchar(100), ssn varchar(20), secret text, region varchar(10), amount decimal(12,2) NOT NULL, score decimal(10,3), _change_selector varchar(10) DEFAULT 'a') ENGINE=InnoDB`;
}

function fillAccounts(db: DbHandle, n: number): string {
  return db.kind === 'postgres'
    ? `INSERT INTO accounts (id, email, ssn, secret, region, amount, score) SELECT g, 'user' || g || '@x.org', CASE WHEN g % 11 = 0 THEN NULL ELSE 'ssn-' || g END, 'pw' || g, CASE WHEN g % 3 = 0 THEN 'us' ELSE 'eu' END, (g % 50) + 0.25, CASE WHEN g % 13 = 0 THEN NULL ELSE g / 8.0 END FROM generate_series(1, ${n}) g`
    : `INSERT INTO accounts (id, email, ssn, secret, region, amount, score) SELECT seq, CONCAT('user', seq, '@x.org'), IF(seq % 11 = 0, NULL, CONCAT('ssn-', seq)), CONCAT('pw', seq), IF(seq % 3 = 0, 'us', 'eu'), (seq % 50) + 0.25, IF(seq % 13 = 0, NULL, seq / 8) FROM seq_1_to_${n}`;
}

interface SourceRow { id: number; email: string | null; ssn: string | null; region: string | null; amount: string; score: string | null }

async function sourceRows(db: DbHandle): Promise<SourceRow[]> {
  const sql = db.kind === 'postgres'
    ? 'SELECT id, email, ssn, region, amount::text AS amount, score::text AS score FROM accounts ORDER BY id'
    : 'SELECT id, email, ssn, region, CAST(amount AS CHAR) AS amount, CAST(score AS CHAR) AS score FROM accounts ORDER BY id';
  return (await db.query<SourceRow>(sql)).map((r) => ({ ...r, id: Number(r.id) }));
}

const hmac = (salt: string, v: string) => createHmac('sha256', salt).update(v, 'utf8').digest('hex');
/** A decimal is hashed without trailing zeros ("2.125", "3.5", "4"), whatever scale it was stored with. */
const decimalText = (v: string) => (v.includes('.') ? v.replace(/0+$/, '').replace(/\.$/, '') : v);

/** What the destination must hold: the source rows passing the filter, with the column controls applied. */
function expected(rows: SourceRow[], salt: string): string[] {
  return rows
    .filter((r) => r.region === 'eu' && Number(r.amount) >= 10)
    .map((r) => [r.id, r.email === null ? '~' : hmac(salt, r.email), r.ssn === null ? '~' : '****', r.region ?? '~', r.amount, r.score === null ? '~' : hmac(salt, decimalText(r.score))].join('|'));
}

async function destRows(db: DbHandle, table: string): Promise<string[]> {
  const sql = db.kind === 'postgres'
    ? `SELECT concat_ws('|', id, coalesce(email, '~'), coalesce(ssn, '~'), coalesce(region, '~'), amount::text, coalesce(score, '~')) AS r FROM ${table} ORDER BY id`
    : `SELECT CONCAT_WS('|', id, COALESCE(email, '~'), COALESCE(ssn, '~'), COALESCE(region, '~'), CAST(amount AS CHAR), COALESCE(score, '~')) AS r FROM ${table} ORDER BY id`;
  return (await db.query<{ r: string }>(sql)).map((x) => x.r);
}

async function destColumns(db: DbHandle, schema: string): Promise<Record<string, string>> {
  const rows = await db.query<{ c: string; t: string }>(
    db.kind === 'postgres'
      ? `SELECT column_name AS c, data_type || coalesce('(' || character_maximum_length || ')', '') AS t FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'accounts'`
      : `SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'accounts'`,
    [schema],
  );
  return Object.fromEntries(rows.map((r) => [r.c, String(r.t)]));
}

/** Moves rows into and out of the filter, changes hashed and masked values, inserts and deletes. */
function startControlWriter(db: DbHandle, opts: { firstNewId: number; maxId: number; durationMs: number; seed: number }) {
  const stats = { inserts: 0, updates: 0, deletes: 0 };
  let seed = opts.seed;
  let nextId = opts.firstNewId;
  // The high bits: the low bits of this generator cycle with a short period.
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return (seed >>> 12) % n; };
  const deadline = Date.now() + opts.durationMs;
  const region = () => (rnd(3) === 0 ? 'us' : 'eu');
  const one = (): string => {
    const r = rnd(10);
    const id = 1 + rnd(opts.maxId);
    if (r < 3) { stats.inserts++; const n = nextId++; return `INSERT INTO accounts (id, email, ssn, secret, region, amount, score) VALUES (${n}, 'new${n}@x.org', ${n % 5 ? `'s${n}'` : 'NULL'}, 'pw', '${region()}', ${rnd(50)}.50, ${rnd(7) ? `${rnd(900)}.${rnd(1000)}` : 'NULL'})`; }
    if (r < 6) { stats.updates++; return `UPDATE accounts SET region = '${region()}', amount = ${rnd(50)}.75 WHERE id = ${id}`; }
    if (r < 8) { stats.updates++; return `UPDATE accounts SET email = 'changed${id}.${rnd(1000)}@x.org', ssn = ${rnd(4) ? `'n${id}'` : 'NULL'}, score = ${rnd(900)}.${rnd(10)}0 WHERE id = ${id}`; }
    if (r < 9) { stats.updates++; return `UPDATE accounts SET secret = 'only the excluded column ${rnd(99)}' WHERE id = ${id}`; }
    stats.deletes++; return `DELETE FROM accounts WHERE id = ${id}`;
  };
  const done = (async () => {
    while (Date.now() < deadline) {
      if (rnd(4) === 0) {
        const stmts = [one(), one(), one()];
        await db.query(db.kind === 'postgres' ? `BEGIN; ${stmts.join('; ')}; COMMIT` : `START TRANSACTION; ${stmts.join('; ')}; COMMIT`);
      } else {
        await db.query(one());
      }
      await new Promise((r) => setTimeout(r, 3));
    }
    return stats;
  })();
  return { done, stats };
}

describe('column and row controls (exclude, mask, hash, where) on jobs and feeds', () => {
  let gw: TestGateway;
  let meta: pg.Client;
  const handles: DbHandle[] = [];
  const open = async (kind: 'mysql' | 'postgres', name: string) => {
    const h = kind === 'postgres' ? await pgDatabase(inject('pgUrl'), name) : await mariaDatabase(inject('mariaUrl'), name);
    handles.push(h);
    return h;
  };
  /** The job's salt as the server stored it (encrypted in the metadata database). */
  const saltOf = async (jobId: string): Promise<string> => {
    const r = await meta.query<{ s: string | null }>('SELECT control_salt_enc AS s FROM jobs WHERE id = $1', [jobId]);
    expect(r.rows[0]?.s, 'salt stored').toBeTruthy();
    expect(r.rows[0]!.s!.startsWith('v1:'), 'salt stored encrypted').toBe(true);
    return new SecretBox(TEST_SECRET_KEY).decrypt(r.rows[0]!.s!);
  };
  beforeAll(async () => {
    gw = await startTestGateway();
    meta = new pg.Client({ connectionString: gw.config.databaseUrl });
    await meta.connect();
  });
  afterAll(async () => {
    await meta?.end().catch(() => undefined);
    await gw?.close();
    for (const h of handles) await h.close().catch(() => undefined);
  });

  const cases: { name: string; src: 'mysql' | 'postgres'; dst: 'mysql' | 'postgres'; identityFull?: boolean; restart?: boolean }[] = [
    // Default replica identity: updates carry no old image, so leaving the filter is a key delete.
    { name: 'PostgreSQL -> PostgreSQL', src: 'postgres', dst: 'postgres', restart: true },
    { name: 'MariaDB -> PostgreSQL', src: 'mysql', dst: 'postgres' },
    { name: 'PostgreSQL -> MariaDB', src: 'postgres', dst: 'mysql', identityFull: true },
    { name: 'MariaDB -> MariaDB', src: 'mysql', dst: 'mysql' },
  ];

  for (const c of cases) {
    it(`${c.name}: snapshot and stream with a writer; excluded, masked, hashed, filtered`, async () => {
      const src = await open(c.src, uniq(`tc_src_${c.src}`));
      const dst = await open(c.dst, uniq(`tc_dst_${c.dst}`));
      await src.query(createAccounts(src, c.identityFull));
      await src.query(fillAccounts(src, ROWS));
      const srcSchema = c.src === 'postgres' ? 'public' : src.database;
      const dstSchema = c.dst === 'mysql' ? dst.database : srcSchema;
      const rename = dstSchema !== srcSchema ? { schemas: { [srcSchema]: dstSchema } } : undefined;
      const job = await createJob(gw.url, {
        name: uniq('controls'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
        tables: [{ schema: srcSchema, tables: ['accounts'], columns: COLUMNS, where: WHERE }],
        parallelWorkers: 2, chunkRows: 500, ...(rename ? { rename } : {}),
      });
      const writer = startControlWriter(src, { firstNewId: ROWS + 1, maxId: ROWS, durationMs: 4000, seed: 11 + c.name.length });
      const snap = await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'snapshot done');
      expect(snap.status, JSON.stringify(snap)).toBe('RUNNING');
      const duringSnapshot = writer.stats.inserts + writer.stats.updates + writer.stats.deletes;
      expect(duringSnapshot).toBeGreaterThan(0);
      if (c.restart) {
        // The salt survives a restart of every task: hashes written after it match those before.
        await writer.done;
        expect((await gql(gw.url, `mutation { pauseJob(id: "${job.id}") { status } }`)).body.errors).toBeUndefined();
        await src.query(`UPDATE accounts SET email = 'while-paused@x.org' WHERE id = 2`);
        expect((await gql(gw.url, `mutation { resumeJob(id: "${job.id}") { status } }`)).body.errors).toBeUndefined();
      }
      const stats = await writer.done;
      const salt = await saltOf(job.id);
      const table = qname(dst, dstSchema, 'accounts');

      const converge = async (label: string) => {
        let diff: string[] = ['not compared'];
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          diff = diffRows(expected(await sourceRows(src), salt), await destRows(dst, table).catch(() => []));
          if (diff.length === 0) break;
          await new Promise((r) => setTimeout(r, 500));
        }
        expect(diff, `${c.name} ${label}`).toEqual([]);
      };
      await converge('after the writer');

      // The destination's shape: no excluded column; hashed char(64), masked varchar(4).
      const cols = await destColumns(dst, dstSchema);
      expect(Object.keys(cols)).not.toContain('secret');
      expect(Object.keys(cols).sort()).toEqual(['_change_selector', 'amount', 'email', 'id', 'region', 'score', 'ssn']);
      expect(cols.email).toMatch(/^(character\(64\)|char\(64\))$/);
      expect(cols.score).toMatch(/^(character\(64\)|char\(64\))$/);
      expect(cols.ssn).toMatch(/^(character varying\(4\)|varchar\(4\))$/);

      // Stream: a row updated out of the filter is deleted downstream, one updated into it inserted.
      const inside = (await sourceRows(src)).find((r) => r.region === 'eu' && Number(r.amount) >= 10)!;
      const outside = (await sourceRows(src)).find((r) => r.region === 'us')!;
      await src.query(`UPDATE accounts SET region = 'us' WHERE id = ${inside.id}`);
      await src.query(`UPDATE accounts SET region = 'eu', amount = 42.00, email = 'moved-in@x.org' WHERE id = ${outside.id}`);
      const idsAtDest = async () => (await destRows(dst, table)).map((r) => Number(r.split('|')[0]));
      await waitFor(idsAtDest, (ids) => !ids.includes(inside.id) && ids.includes(outside.id), 30_000, 'moved rows');
      const movedIn = (await destRows(dst, table)).find((r) => r.startsWith(`${outside.id}|`))!;
      expect(movedIn.split('|')[1]).toBe(hmac(salt, 'moved-in@x.org'));
      expect(movedIn.split('|')[4]).toBe('42.00');
      // Still out: an update of a row outside the filter changes nothing downstream.
      await src.query(`UPDATE accounts SET amount = amount + 1 WHERE id = ${inside.id}`);
      await converge('after moves');
      // verifyJob reads the source through the same controls: the controlled table is EQUAL.
      const v = await gql(gw.url, `mutation { verifyJob(id: "${job.id}", input: { recheckDelayMs: 200 }) { equal tables { status sourceRows destinationRows missingColumns differingRanges { missing extra different sampleKeys } } } }`);
      expect(v.body.errors, JSON.stringify(v.body.errors)).toBeUndefined();
      expect(v.body.data.verifyJob, JSON.stringify(v.body.data.verifyJob)).toMatchObject({ equal: true, tables: [{ status: 'EQUAL', missingColumns: [] }] });
      expect(v.body.data.verifyJob.tables[0].sourceRows).toBe((await destRows(dst, table)).length);

      const j = await getJob(gw.url, job.id);
      expect(j.status).toBe('RUNNING');
      expect(j.error).toBeNull();
      // The salt is never returned: not in the spec, not anywhere in the job.
      const full = await gql(gw.url, `query { job(id: "${job.id}") { spec } }`);
      expect(JSON.stringify(full.body)).not.toContain(salt);
      expect(full.body.data.job.spec.tables.schemas[0]).toMatchObject({ columns: COLUMNS, where: WHERE });
      console.log(`${c.name}: ${(await destRows(dst, table)).length} of ${(await sourceRows(src)).length} rows pass the filter, equal; writer ${JSON.stringify(stats)} (${duringSnapshot} during the snapshot)`);
      expect((await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`)).body.data.deleteJob).toBe(true);
    });
  }

  it('a SUBSCRIBE feed read through GraphQL carries the controlled changes', async () => {
    const src = await open('postgres', uniq('tc_feed'));
    // REPLICA IDENTITY FULL: with old images, every move is told exactly (without, a row updated
    // while outside the filter reads as "left it" and becomes a key delete: idempotent, but noisier).
    await src.query(createAccounts(src, true));
    const feed = uniq('tcfeed');
    const job = await createJob(gw.url, {
      name: feed, type: 'SUBSCRIBE', source: endpoint(src),
      tables: [{ schema: 'public', tables: ['accounts'], columns: COLUMNS, where: WHERE }],
    });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 30_000, 'streaming');
    await src.query(fillAccounts(src, 30));
    await src.query(`UPDATE accounts SET region = 'us' WHERE id = 10`); // in -> out: delete
    await src.query(`UPDATE accounts SET region = 'eu', amount = 20 WHERE id = 3`); // out -> in: insert
    await src.query(`UPDATE accounts SET amount = 30 WHERE id = 6`); // out -> out (us): nothing
    await src.query(`UPDATE accounts SET secret = 'x' WHERE id = 11`); // in -> in: update
    await src.query(`DELETE FROM accounts WHERE id = 4`); // out: nothing
    await src.query(`DELETE FROM accounts WHERE id = 13`); // in: delete
    const passing = (id: number) => id % 3 !== 0 && (id % 50) + 0.25 >= 10;
    const initialIds = Array.from({ length: 30 }, (_, i) => i + 1).filter(passing);
    const read = async () => (await gql(gw.url, `query($f: String!) { changes(feed: $f, scopes: ["a"], limit: 1000) { changes { op table key newRow oldRow columnTypes { name kind sourceType } } } }`, { f: feed })).body;
    const body = await waitFor(read, (b) => (b.data?.changes.changes.length ?? 0) >= initialIds.length + 4, 30_000, 'feed changes');
    expect(body.errors).toBeUndefined();
    const salt = await saltOf(job.id);
    const changes = body.data.changes.changes as { op: string; newRow: Record<string, unknown> | null; oldRow: Record<string, unknown> | null; columnTypes: { name: string; kind: string; sourceType: string }[] }[];
    expect(changes.length).toBe(initialIds.length + 4);
    // The initial inserts are exactly the passing rows of the 30.
    const initial = changes.slice(0, initialIds.length);
    expect(initial.map((x) => [x.op, x.newRow!.id])).toEqual(initialIds.map((id) => ['insert', id]));
    for (const x of changes) {
      for (const img of [x.newRow, x.oldRow]) {
        if (!img) continue;
        expect(Object.keys(img)).not.toContain('secret');
        expect(img.ssn === null || img.ssn === '****').toBe(true);
        expect(img.email).toBe(hmac(salt, `user${String(img.id)}@x.org`));
      }
      expect(x.columnTypes.map((t) => t.name)).not.toContain('secret');
      expect(x.columnTypes.find((t) => t.name === 'email')).toMatchObject({ kind: 'text', sourceType: 'character(64)' });
      expect(x.columnTypes.find((t) => t.name === 'score')).toMatchObject({ kind: 'text', sourceType: 'character(64)' });
    }
    const after = changes.slice(initialIds.length);
    expect(after.map((x) => [x.op, Number((x.newRow ?? x.oldRow)!.id)])).toEqual([['delete', 10], ['insert', 3], ['update', 11], ['delete', 13]]);
    expect(after[1]!.newRow).toMatchObject({ id: 3, region: 'eu', amount: '20.00', ssn: '****' });
    expect(after[1]!.oldRow).toBeNull();
    expect(after[0]!.newRow).toBeNull();
    // Controls shape the feed and the destination: updateJob cannot drop or change them.
    const upd = await gql(gw.url, `mutation($id: ID!, $t: [TableSelectionInput!]) { updateJob(id: $id, input: { tables: $t }) { id } }`, { id: job.id, t: [{ schema: 'public', tables: ['accounts'] }] });
    expect(upd.body.errors?.[0]?.extensions?.code, JSON.stringify(upd.body)).toBe('INVALID_STATE');
    const same = await gql(gw.url, `mutation($id: ID!, $t: [TableSelectionInput!]) { updateJob(id: $id, input: { tables: $t }) { id } }`, { id: job.id, t: [{ schema: 'public', tables: ['accounts'], columns: COLUMNS, where: WHERE }] });
    expect(same.body.errors, JSON.stringify(same.body)).toBeUndefined();
    expect((await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`)).body.data.deleteJob).toBe(true);
  });

  it('a controlled column renamed at the source fails the job instead of flowing unprotected under its new name', async () => {
    const src = await open('postgres', uniq('tc_ren_src'));
    const dst = await open('postgres', uniq('tc_ren_dst'));
    await src.query(createAccounts(src));
    await src.query(fillAccounts(src, 20));
    const job = await createJob(gw.url, {
      name: uniq('controls_ren'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
      tables: [{ schema: 'public', tables: ['accounts'], columns: COLUMNS }],
    });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 30_000, 'streaming');
    await src.query(`ALTER TABLE accounts RENAME COLUMN secret TO secret2`);
    await src.query(`UPDATE accounts SET secret2 = 'leak?' WHERE id = 1`);
    const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 30_000, 'job fails');
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/"secret" of public\.accounts is excluded, masked or hashed and was renamed to "secret2"/);
    const cols = await destColumns(dst, 'public');
    expect(Object.keys(cols)).not.toContain('secret2');
    expect(Object.keys(cols)).not.toContain('secret');
    expect((await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`)).body.data.deleteJob).toBe(true);
  });

  it('bad controls are refused with BAD_USER_INPUT and no job is created', async () => {
    const src = await open('postgres', uniq('tc_bad'));
    await src.query(createAccounts(src));
    const attempt = async (sel: Record<string, unknown>) => {
      const name = uniq('badctl');
      const r = await gql(gw.url, `mutation($i: JobInput!) { createJob(input: $i) { id } }`, { i: { name, type: 'SUBSCRIBE', source: endpoint(src), tables: [{ schema: 'public', tables: ['accounts'], ...sel }] } });
      const jobs = await gql(gw.url, `query($n: String) { jobs(name: $n) { totalCount } }`, { n: name });
      expect(jobs.body.data.jobs.totalCount).toBe(0);
      return r.body.errors?.[0];
    };
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ columns: { exclude: ['nope'] } }, 'UNKNOWN_COLUMN', /no column "nope"/],
      [{ columns: { hash: ['email', 'nope2'] } }, 'UNKNOWN_COLUMN', /no column "nope2"/],
      [{ where: 'amount >' }, 'WHERE', /where/],
      [{ where: "region = 'eu'; DROP TABLE accounts" }, 'WHERE', /one condition/],
      [{ where: 'nope = 1' }, 'UNKNOWN_COLUMN', /no column "nope"/],
      [{ where: "email LIKE 'a%'" }, 'WHERE', /LIKE/],
      [{ columns: { mask: ['id'] } }, 'KEY_COLUMN', /key/],
      [{ columns: { exclude: ['ssn'], mask: ['ssn'] } }, 'CONFLICT', /both/],
      [{ tables: ['missing_table'], columns: { exclude: ['ssn'] } }, 'UNKNOWN_TABLE', /does not exist/],
    ];
    for (const [sel, problem, msg] of cases) {
      const err = await attempt(sel);
      expect(err, JSON.stringify(sel)).toBeDefined();
      expect(err!.extensions, JSON.stringify(sel)).toMatchObject({ code: 'BAD_USER_INPUT', problem });
      expect(err!.message).toMatch(msg);
    }
    // Still serving.
    expect((await gql(gw.url, '{ jobs { totalCount } }')).body.errors).toBeUndefined();
  });
});
