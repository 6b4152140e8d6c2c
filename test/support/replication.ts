/**
 * Helpers for the end-to-end replication suites: the gateway and database
 * handles a describe block shares, create jobs through GraphQL, run bounded
 * concurrent writers against a source, read a table in a canonical text form
 * on either engine, and wait for source and destination to converge.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import type { Config } from '../../src/config/config.ts';
import { forwardTo, gql, startTestGateway, type TestGateway } from './gateway.ts';
import { connInput, openDatabase, uniq, waitFor, type DbHandle } from './databases.ts';

export interface ReplicationSuite {
  /** Started in `beforeAll`; read it inside hooks and tests. */
  gw: TestGateway;
  /** Closed in `afterAll`, after the gateway; a case may push handles it opened itself. */
  handles: DbHandle[];
  /** A database named `name` (as given) on the private server of `kind`, closed with the others. */
  open(kind: DbHandle['kind'], name: string): Promise<DbHandle>;
  /** The same, named `uniq(prefix)`. */
  openUniq(kind: DbHandle['kind'], prefix: string): Promise<DbHandle>;
}

/**
 * The set-up of a describe block that runs jobs: one in-process gateway
 * (`startTestGateway(overrides, opts)`) and the database handles its cases
 * open; `afterAll` closes the gateway, then every handle.
 */
export function useReplicationSuite(overrides: Partial<Config> = {}, opts: Parameters<typeof startTestGateway>[1] = {}): ReplicationSuite {
  let gw: TestGateway | undefined;
  const handles: DbHandle[] = [];
  beforeAll(async () => { gw = await startTestGateway(overrides, opts); });
  afterAll(async () => {
    await gw?.close();
    for (const h of handles) await h.close().catch(() => undefined);
  });
  const open = async (kind: DbHandle['kind'], name: string): Promise<DbHandle> => {
    const h = await openDatabase(kind, name);
    handles.push(h);
    return h;
  };
  return { gw: forwardTo(() => gw, 'the test gateway'), handles, open, openUniq: (kind, prefix) => open(kind, uniq(prefix)) };
}

export const KIND = { mysql: 'MYSQL', postgres: 'POSTGRES' } as const;

export function endpoint(db: DbHandle) {
  return { ...connInput(db), kind: KIND[db.kind] };
}

export const JOB_FIELDS = `id name type status udupStatus error
  progress { phase rowsDone rowsEstimated percent chunksDone chunksTotal }
  metrics { changesCaptured rowsApplied lagMs capturedSequence appliedSequence }
  tasks { kind name status error }`;

export async function createJob(url: string, input: Record<string, unknown>): Promise<any> {
  const r = await gql(url, `mutation($i: JobInput!) { createJob(input: $i) { ${JOB_FIELDS} } }`, { i: input });
  expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
  return r.body.data.createJob;
}

export async function getJob(url: string, id: string): Promise<any> {
  const r = await gql(url, `query($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id });
  if (r.body.errors) throw new Error(JSON.stringify(r.body.errors));
  return r.body.data.job;
}

/** A job's state, metrics, tasks and last log lines as one string (for assertion messages). */
export async function describeJob(url: string, id: string): Promise<string> {
  const r = await gql(url, `query($id: ID!) { job(id: $id) { ${JOB_FIELDS} metrics { backlog lastCommitAt } logs(last: 30) { at level message } } }`, { id });
  return JSON.stringify(r.body.data?.job ?? r.body.errors, null, 1);
}

export async function waitJob(url: string, id: string, ok: (j: any) => boolean, timeoutMs = 60_000, label = 'job state'): Promise<any> {
  return waitFor(() => getJob(url, id), ok, timeoutMs, label);
}

/** `schema.table` quoted for the handle's engine. */
export function qname(db: DbHandle, schema: string, table: string): string {
  return db.kind === 'postgres' ? `"${schema}"."${table}"` : `\`${schema}\`.\`${table}\``;
}

/**
 * The `items` table used by the convergence suites: key, text, int, decimal,
 * datetime. `canonical` reads it as one string per row, the same on both engines.
 */
export const ITEMS = {
  create(db: DbHandle, t = 'items'): string {
    return db.kind === 'postgres'
      ? `CREATE TABLE ${t} (id int PRIMARY KEY, name varchar(100), qty int, price numeric(12,2), at timestamp(6), note text)`
      : `CREATE TABLE ${t} (id int PRIMARY KEY, name varchar(100), qty int, price decimal(12,2), at datetime(6), note text) ENGINE=InnoDB`;
  },
  fill(db: DbHandle, n: number, t = 'items'): string {
    return db.kind === 'postgres'
      ? `INSERT INTO ${t} SELECT g, 'item ' || g, g % 1000, (g * 1.25)::numeric(12,2), timestamp '2024-01-01' + g * interval '1 second 1 microsecond', CASE WHEN g % 7 = 0 THEN NULL ELSE md5(g::text) END FROM generate_series(1, ${n}) g`
      : `INSERT INTO ${t} SELECT seq, CONCAT('item ', seq), seq % 1000, seq * 1.25, TIMESTAMPADD(MICROSECOND, seq * 1000001, '2024-01-01 00:00:00'), IF(seq % 7 = 0, NULL, MD5(seq)) FROM seq_1_to_${n}`;
  },
  async canonical(db: DbHandle, table: string): Promise<string[]> {
    const sql = db.kind === 'postgres'
      ? `SELECT concat_ws('|', id, coalesce(name, '~'), coalesce(qty::text, '~'), coalesce(price::text, '~'), coalesce(to_char(at, 'YYYY-MM-DD HH24:MI:SS.US'), '~'), coalesce(note, '~')) AS r FROM ${table} ORDER BY id`
      : `SELECT CONCAT_WS('|', id, COALESCE(name, '~'), COALESCE(qty, '~'), COALESCE(price, '~'), COALESCE(DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), '~'), COALESCE(note, '~')) AS r FROM ${table} ORDER BY id`;
    return (await db.query<{ r: string }>(sql)).map((x) => x.r);
  },
};

/** Row-by-row comparison that reports the first differences instead of 100k-line diffs. */
export function diffRows(src: string[], dst: string[]): string[] {
  const a = new Set(src); const b = new Set(dst);
  const out: string[] = [];
  if (src.length !== dst.length) out.push(`row count ${src.length} (source) vs ${dst.length} (destination)`);
  for (const r of src) if (!b.has(r)) { out.push(`missing at destination: ${r}`); if (out.length > 10) break; }
  for (const r of dst) if (!a.has(r)) { out.push(`extra at destination: ${r}`); if (out.length > 20) break; }
  return out;
}

/** Waits until the canonical forms are equal, then asserts so (with the differences on failure). */
export async function expectConverged(src: DbHandle, srcTable: string, dst: DbHandle, dstTable: string, timeoutMs = 60_000, read = ITEMS.canonical, explain?: () => Promise<string>): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let diff: string[] = ['not compared'];
  let rows = 0;
  while (Date.now() < deadline) {
    const a = await read(src, srcTable);
    const b = await read(dst, dstTable).catch(() => [] as string[]);
    diff = diffRows(a, b);
    rows = a.length;
    if (diff.length === 0) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  // What the job says about itself, when it did not converge (CI logs carry nothing else).
  const why = diff.length && explain ? await explain().catch((e: Error) => `(explain failed: ${e.message})`) : '';
  expect(diff, `${srcTable} -> ${dstTable}${why ? `\n${why}` : ''}`).toEqual([]);
  return rows;
}

export interface WriterStats { inserts: number; updates: number; deletes: number; txs: number }

/**
 * A bounded writer: inserts new ids from `nextId`, updates and deletes random
 * existing ids below `maxId`, some in multi-statement transactions, until
 * `stop()` or `durationMs`.
 */
export function startWriter(db: DbHandle, table: string, opts: { firstNewId: number; maxId: number; durationMs: number; seed?: number }): { stop(): Promise<WriterStats>; done: Promise<WriterStats>; stats: WriterStats } {
  const stats: WriterStats = { inserts: 0, updates: 0, deletes: 0, txs: 0 };
  let stopped = false;
  let nextId = opts.firstNewId;
  let seed = opts.seed ?? 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const pg = db.kind === 'postgres';
  const now = pg ? `localtimestamp(6)` : `NOW(6)`;
  const deadline = Date.now() + opts.durationMs;
  const one = async (): Promise<string> => {
    const r = rnd(10);
    if (r < 4) { stats.inserts++; const id = nextId++; return `INSERT INTO ${table} (id, name, qty, price, at, note) VALUES (${id}, 'new ${id}', ${id % 500}, ${id}.75, ${now}, 'w')`; }
    if (r < 8) { stats.updates++; const id = 1 + rnd(opts.maxId); return `UPDATE ${table} SET qty = qty + 1, name = 'upd ${id}', price = price + 0.01, note = NULL WHERE id = ${id}`; }
    stats.deletes++; const id = 1 + rnd(opts.maxId); return `DELETE FROM ${table} WHERE id = ${id}`;
  };
  const done = (async () => {
    while (!stopped && Date.now() < deadline) {
      if (rnd(5) === 0) {
        const stmts = [await one(), await one(), await one()];
        stats.txs++;
        await db.query(pg ? `BEGIN; ${stmts.join('; ')}; COMMIT` : `START TRANSACTION; ${stmts.join('; ')}; COMMIT`);
      } else {
        await db.query(await one());
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    return stats;
  })();
  return { stop: async () => { stopped = true; return done; }, done, stats };
}

/** Changes in a feed, by its stream key (meta.count: the stream holds one entry per append piece, not per change). */
export async function feedLength(redis: { hget(key: string, field: string): Promise<string | null> }, streamKey: string): Promise<number> {
  return Number((await redis.hget(streamKey.replace(/:stream$/, ':meta'), 'count')) ?? 0);
}
