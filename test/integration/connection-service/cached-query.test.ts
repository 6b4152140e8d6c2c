/**
 * The Debezium-style connection service (seed 002) on real capture: the
 * seed's curl examples (same endpoints, same form fields, `-H 'Accept:
 * application/json' -d '...'`) against a private PostgreSQL and MariaDB,
 * cached aggregates equal to a fresh run of the same SQL after a random
 * workload of inserts, updates (moving rows between groups) and deletes
 * (including each group's current MAX), a join kept fresh by re-run,
 * refusals, the live subscription, checkJobStatus and deletion.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import pg from 'pg';
import { startTestGateway, gql, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, waitFor, type DbHandle } from '../../support/databases.ts';
import { listFeeds } from '../../../src/replication/feed/feed-registry.ts';

const AGG_SQL = 'SELECT status, count(*), sum(amount), min(amount), max(amount), avg(amount) FROM orders WHERE amount > 0 GROUP BY status';
const JOIN_SQL = 'SELECT c.region, count(*) AS n, sum(o.amount) AS total FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.region';

const PRISMA_SCHEMA = `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Order {
  id         Int      @id
  status     String
  amount     Decimal  @db.Decimal(10, 2)
  customerId Int      @map("customer_id")
  customer   Customer @relation(fields: [customerId], references: [id])

  @@map("orders")
}

model Customer {
  id     Int     @id
  region String
  orders Order[]

  @@map("customers")
}
`;

const STATUSES = ['new', 'paid', 'shipped', 'returned'];

/** curl -i -H 'Accept: application/json' -d '<body>' <url> */
async function curl(url: string, body: string): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' }, body });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/** Rows as arrays of numbers/strings, numbers rounded, sorted: comparable across the source and the cache. */
function normalise(rows: unknown[][]): unknown[][] {
  const norm = rows.map((r) => r.map((v) => {
    if (v === null || v === undefined) return null;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
    return Number.isNaN(n) ? String(v) : Math.round(n * 1e6) / 1e6;
  }));
  return norm.sort((a, b) => String(a[0]).localeCompare(String(b[0])));
}

function rand(n: number): number { return Math.floor(Math.random() * n); }
function amount(): string { return (rand(100_000) / 100 - 50).toFixed(2); }

async function workload(db: DbHandle, ops: number, nextId: { v: number }): Promise<void> {
  const q = (sql: string, params: unknown[]) => db.query(db.kind === 'postgres' ? sql : sql.replace(/\$\d+/g, '?'), params);
  for (let i = 0; i < ops; i++) {
    const r = rand(10);
    if (r < 4) {
      const id = nextId.v++;
      await q('INSERT INTO orders (id, status, amount, customer_id) VALUES ($1, $2, $3, $4)', [id, STATUSES[rand(4)], amount(), 1 + rand(5)]);
    } else if (r < 6) {
      // Move a row to another group (and maybe across the WHERE boundary).
      await q('UPDATE orders SET status = $1, amount = $2 WHERE id = $3', [STATUSES[rand(4)], amount(), 1 + rand(nextId.v)]);
    } else if (r < 7) {
      await q('UPDATE orders SET amount = $1 WHERE id = $2', [amount(), 1 + rand(nextId.v)]);
    } else if (r < 8) {
      await q('DELETE FROM orders WHERE id = $1', [1 + rand(nextId.v)]);
    } else if (r < 9) {
      // Delete the current maximum of a group: its MAX must be recomputed.
      const s = STATUSES[rand(4)];
      const sql = db.kind === 'postgres'
        ? 'DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE status = $1 AND amount > 0 ORDER BY amount DESC, id LIMIT 1)'
        : 'DELETE FROM orders WHERE status = ? AND amount > 0 ORDER BY amount DESC, id LIMIT 1';
      await q(sql, [s]);
    } else {
      // A small transaction moving several rows at once.
      await q(`UPDATE orders SET status = $1 WHERE id IN (${[0, 1, 2].map(() => 1 + rand(nextId.v)).join(',')})`, [STATUSES[rand(4)]]);
    }
  }
}

async function cachedRows(gw: TestGateway, id: string): Promise<{ version: number; rows: unknown[][]; columns: string[]; mode: string; status: string; error: string | null }> {
  const r = await gql(gw.url, 'query($id: ID!) { cachedQuery(id: $id) { version rows columns mode status error } }', { id });
  const q = r.body.data.cachedQuery;
  return { version: q.version, columns: q.columns, mode: q.mode, status: q.status, error: q.error, rows: (q.rows ?? []).map((row: Record<string, unknown>) => q.columns.map((c: string) => row[c])) };
}

async function sourceRows(db: DbHandle, sql: string): Promise<unknown[][]> {
  return (await db.query(sql)).map((r: Record<string, unknown>) => Object.values(r));
}

async function expectConverged(gw: TestGateway, db: DbHandle, id: string, sql: string, label: string): Promise<void> {
  let last: unknown;
  await waitFor(async () => {
    const [mine, theirs] = await Promise.all([cachedRows(gw, id), sourceRows(db, sql)]);
    last = { mine: normalise(mine.rows), theirs: normalise(theirs), status: mine.status, error: mine.error };
    return JSON.stringify(normalise(mine.rows)) === JSON.stringify(normalise(theirs));
  }, (ok) => ok, 90_000, `${label}: cached result equal to the source`).catch((err) => { console.log(JSON.stringify(last)); throw err; });
}

async function setUp(db: DbHandle): Promise<void> {
  await db.query('CREATE TABLE customers (id int primary key, region varchar(20) not null)');
  await db.query('CREATE TABLE orders (id int primary key, status varchar(20) not null, amount decimal(10,2) not null, customer_id int not null)');
  await db.query("INSERT INTO customers VALUES (1, 'north'), (2, 'south'), (3, 'east'), (4, 'west'), (5, 'north')");
  const values = Array.from({ length: 400 }, (_, i) => `(${i + 1}, '${STATUSES[i % 4]}', ${amount()}, ${1 + (i % 5)})`).join(',');
  await db.query(`INSERT INTO orders VALUES ${values}`);
}

describe('connection service: createDatabaseConnection / createCachedQuery / checkJobStatus / deleteDatabaseConnection', () => {
  let gw: TestGateway; let pgDb: DbHandle; let maria: DbHandle;
  let pgCs: string; let mariaCs: string;
  const pgEnv = 'env-pg-orders'; const mariaEnv = 'env-maria-orders';
  let aggId = ''; let joinId = '';

  beforeAll(async () => {
    gw = await startTestGateway();
    pgDb = await pgDatabase(inject('pgUrl'));
    maria = await mariaDatabase(inject('mariaUrl'));
    await setUp(pgDb); await setUp(maria);
    const pu = new URL(inject('pgUrl'));
    pgCs = `postgres://${pu.username}${pu.password ? `:${pu.password}` : ''}@${pu.hostname}:${pu.port}/${pgDb.database}?sslmode=disable`;
    mariaCs = `mariadb://root@${maria.host}:${maria.port}/${maria.database}`;
  });
  afterAll(async () => { await gw?.close(); await pgDb?.close(); await maria?.close(); });

  it('POST /createDatabaseConnection (seed curl example) answers 201 with ids and status; a repeat is idempotent, another database conflicts', async () => {
    const r = await curl(`${gw.url}/createDatabaseConnection`, `connectionString=${encodeURIComponent(pgCs)}&environmentId=${pgEnv}`);
    expect(r.status).toBe(201);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    expect(r.headers.get('location')).toBe(`/environments/${pgEnv}`);
    expect(r.json).toMatchObject({ name: pgEnv, environmentId: pgEnv, feed: pgEnv, created: true, status: 'running' });
    expect(r.json.id).toBe(r.json.connectionId);
    const again = await curl(`${gw.url}/createDatabaseConnection`, form({ connectionString: pgCs, environmentId: pgEnv }));
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ created: false, connectionId: r.json.connectionId, jobId: r.json.jobId });
    const other = await curl(`${gw.url}/createDatabaseConnection`, form({ connectionString: mariaCs, environmentId: pgEnv }));
    expect(other.status).toBe(409);
    expect(other.json).toMatchObject({ code: 'ENVIRONMENT_CONFLICT', connectionId: r.json.connectionId });
    // JSON bodies work too.
    const m = await fetch(`${gw.url}/createDatabaseConnection`, { method: 'POST', headers: { Accept: 'application/json', 'Content-Type': 'application/json' }, body: JSON.stringify({ connectionString: mariaCs, environmentId: mariaEnv }) });
    expect(m.status).toBe(201);
    const bad = await curl(`${gw.url}/createDatabaseConnection`, form({ connectionString: 'sqlserver://sa@x/db', environmentId: 'e1' }));
    expect(bad).toMatchObject({ status: 400, json: { code: 'INVALID_CONNECTION_STRING' } });
    const missing = await curl(`${gw.url}/createDatabaseConnection`, form({ connectionString: pgCs }));
    expect(missing).toMatchObject({ status: 400, json: { code: 'MISSING_PARAMETER', message: 'environmentId is required' } });
  });

  it('refuses DDL, DML, two statements, side-effecting functions and schema mismatches, saying why', async () => {
    const cases: [string, string, RegExp, string?][] = [
      ['DROP TABLE orders', 'DDL_NOT_ALLOWED', /DDL/],
      ['DELETE FROM orders', 'NOT_A_SELECT', /DML/],
      ['SELECT 1; SELECT 2', 'MULTIPLE_STATEMENTS', /one statement/],
      ['SELECT pg_sleep(10)', 'SIDE_EFFECT_FUNCTION', /pg_sleep\(\), which sleeps/],
      ['SELECT status, count(*) FROM orders WHERE amount > 0 AND pg_sleep(1) IS NOT NULL GROUP BY status', 'SIDE_EFFECT_FUNCTION', /pg_sleep/],
      ['SELECT lo_import(\'/etc/passwd\')', 'SIDE_EFFECT_FUNCTION', /reads a server file/],
      ['SELECT sleep(1)', 'SIDE_EFFECT_FUNCTION', /sleep\(\)/, mariaEnv],
      ["SELECT load_file('/etc/passwd')", 'SIDE_EFFECT_FUNCTION', /load_file\(\), which reads a server file/, mariaEnv],
      ['SELECT status, count(*) FROM orders GROUP BY statuz', 'UNKNOWN_COLUMN', /statuz/],
      ['SELECT count(*) FROM invoices', 'UNKNOWN_TABLE', /invoices/],
    ];
    for (const [sql, code, message, env] of cases) {
      const r = await curl(`${gw.url}/createCachedQuery`, form({ connectionString: env === mariaEnv ? mariaCs : pgCs, environmentId: env ?? pgEnv, schema: PRISMA_SCHEMA, sqlQuery: sql }));
      expect({ sql, status: r.status, code: r.json.code }).toEqual({ sql, status: 400, code });
      expect(r.json.message).toMatch(message);
    }
    expect((await gql(gw.url, `{ cachedQueries(environmentId: "${pgEnv}") { id } }`)).body.data.cachedQueries).toEqual([]);
  });

  it('keeps an aggregate incrementally and a join by re-run on PostgreSQL, equal to the source after a random workload; pushes results over graphql-ws', async () => {
    const r = await curl(`${gw.url}/createCachedQuery`, `connectionString=${encodeURIComponent(pgCs)}&environmentId=${pgEnv}&schema=${encodeURIComponent(PRISMA_SCHEMA)}&sqlQuery=${encodeURIComponent(AGG_SQL)}`);
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ name: 'cached-query', mode: 'incremental', environmentId: pgEnv });
    expect(r.headers.get('location')).toBe(`/cachedQueries/${r.json.id}`);
    aggId = r.json.id;
    const j = await curl(`${gw.url}/createCachedQuery`, form({ environmentId: pgEnv, schema: PRISMA_SCHEMA, sqlQuery: JOIN_SQL }));
    expect(j.status).toBe(201);
    expect(j.json.mode).toBe('rerun');
    expect(j.json.modeReason).toMatch(/joins/);
    joinId = j.json.id;

    await expectConverged(gw, pgDb, aggId, AGG_SQL, 'initial aggregate');
    const client = createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
    const pushed: any[] = [];
    const dispose = client.subscribe({ query: `subscription { cachedQueryResult(id: "${aggId}") { id version rows changedRows removedRows } }` }, {
      next: (m) => { pushed.push((m.data as any)?.cachedQueryResult); }, error: () => undefined, complete: () => undefined,
    });
    await waitFor(async () => pushed.length, (n) => n >= 1, 10_000, 'current result on subscribe');

    const nextId = { v: 401 };
    await workload(pgDb, 10_000, nextId);
    await expectConverged(gw, pgDb, aggId, AGG_SQL, 'aggregate after workload');
    await expectConverged(gw, pgDb, joinId, JOIN_SQL, 'join after workload');
    const agg = await cachedRows(gw, aggId);
    expect(agg.mode).toBe('INCREMENTAL');
    expect(agg.status).toBe('active');
    expect(agg.version).toBeGreaterThan(1);
    await waitFor(async () => pushed.at(-1)?.version, (v) => v === agg.version, 10_000, 'pushed latest version');
    expect(pushed.some((p) => p.changedRows.length > 0 && p.changedRows.length <= 4)).toBe(true);

    // A whole group disappears and comes back.
    await pgDb.query("DELETE FROM orders WHERE status = 'returned'");
    await expectConverged(gw, pgDb, aggId, AGG_SQL, 'group removed');
    await waitFor(async () => pushed.at(-1), (p) => p?.removedRows?.some((r: any) => r.status === 'returned'), 10_000, 'removed group pushed');
    await pgDb.query("INSERT INTO orders VALUES (100000, 'returned', 5.00, 1)");
    await expectConverged(gw, pgDb, aggId, AGG_SQL, 'group back');
    dispose();
    await client.dispose();
  });

  it('keeps the aggregate on MariaDB equal to the source after a random workload', async () => {
    const r = await curl(`${gw.url}/createCachedQuery`, form({ connectionString: mariaCs, environmentId: mariaEnv, schema: PRISMA_SCHEMA, sqlQuery: AGG_SQL }));
    expect(r.status).toBe(201);
    expect(r.json.mode).toBe('incremental');
    await expectConverged(gw, maria, r.json.id, AGG_SQL, 'maria initial');
    await workload(maria, 10_000, { v: 401 });
    await expectConverged(gw, maria, r.json.id, AGG_SQL, 'maria after workload');
  });

  it('resumes the upkeep from its stored position after the gateway and workers restart', async () => {
    const before = await cachedRows(gw, aggId);
    await gw.close();
    // Changes while no worker runs: the capture resumes from its feed position, the upkeep from its stored sequence.
    await workload(pgDb, 500, { v: 200_000 });
    gw = await startTestGateway({ databaseUrl: gw.config.databaseUrl, queuePrefix: gw.config.queuePrefix });
    await expectConverged(gw, pgDb, aggId, AGG_SQL, 'aggregate after restart');
    await expectConverged(gw, pgDb, joinId, JOIN_SQL, 'join after restart');
    expect((await cachedRows(gw, aggId)).version).toBeGreaterThan(before.version);
  });

  it('POST /checkJobStatus answers the capture and every cached query in one JSON', async () => {
    const r = await curl(`${gw.url}/checkJobStatus`, `connectionString=${encodeURIComponent(pgCs)}&environmentId=${pgEnv}`);
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ name: pgEnv, status: 'running', environmentId: pgEnv, capture: { status: 'running', feed: pgEnv } });
    expect(r.json.cachedQueries.map((q: any) => q.id).sort()).toEqual([aggId, joinId].sort());
    expect(r.json.cachedQueries.every((q: any) => q.status === 'active')).toBe(true);
    const unknown = await curl(`${gw.url}/checkJobStatus`, form({ environmentId: 'nope' }));
    expect(unknown).toMatchObject({ status: 404, json: { code: 'ENVIRONMENT_NOT_FOUND' } });
    const gq = await gql(gw.url, `{ checkJobStatus(environmentId: "${mariaEnv}") }`);
    expect(gq.body.data.checkJobStatus.capture.status).toBe('running');
  });

  it('POST /deleteDatabaseConnection removes the slot, the feed, the cached queries and the connection', async () => {
    const r = await curl(`${gw.url}/deleteDatabaseConnection`, `connectionString=${encodeURIComponent(pgCs)}&environmentId=${pgEnv}`);
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ status: 'deleted', environmentId: pgEnv, cachedQueriesDeleted: 2 });
    const admin = new pg.Client({ connectionString: inject('pgUrl') });
    await admin.connect();
    try {
      const slots = await admin.query('SELECT slot_name FROM pg_replication_slots WHERE database = $1', [pgDb.database]);
      expect(slots.rows).toEqual([]);
    } finally { await admin.end(); }
    expect(await listFeeds(gw.app.redis, gw.config.queuePrefix)).not.toContain(pgEnv);
    expect((await gql(gw.url, `{ cachedQueries(environmentId: "${pgEnv}") { id } }`)).body.data.cachedQueries).toEqual([]);
    expect((await gql(gw.url, `{ cachedQuery(id: "${aggId}") { id } }`)).body.data.cachedQuery).toBeNull();
    expect((await curl(`${gw.url}/checkJobStatus`, form({ environmentId: pgEnv }))).status).toBe(404);
    const m = await curl(`${gw.url}/deleteDatabaseConnection`, form({ connectionString: mariaCs, environmentId: mariaEnv }));
    expect(m.status).toBe(201);
    expect(await listFeeds(gw.app.redis, gw.config.queuePrefix)).not.toContain(mariaEnv);
  });
});
