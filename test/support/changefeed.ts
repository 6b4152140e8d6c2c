/** Helpers of the change feed suites: capture jobs on throwaway databases and changeserver calls. */
import { expect } from 'vitest';
import { gql } from './gateway.ts';
import type { DbHandle } from './databases.ts';
import { endpoint } from './replication.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Creates a SUBSCRIBE job capturing `db` into a feed named `name`. */
export async function subscribeJob(url: string, name: string, db: DbHandle, schema: string): Promise<{ id: string; name: string }> {
  const r = await gql(url, `mutation($i: JobInput!) { createJob(input: $i) { id name status } }`, {
    i: { name, type: 'SUBSCRIBE', source: endpoint(db), tables: [{ schema }] },
  });
  expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
  return r.body.data.createJob;
}

export async function getChanges(base: string, path: string, params: Record<string, string | number | (string | number)[]>, headers: Record<string, string> = {}): Promise<{ status: number; body: any; type: string | null; ms: number }> {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) qs.append(k, String(x));
  const t0 = Date.now();
  const res = await fetch(`${base}${path}?${qs}`, { headers });
  const type = res.headers.get('content-type');
  const body = type?.includes('json') ? await res.json() : new Uint8Array(await res.arrayBuffer());
  return { status: res.status, body, type, ms: Date.now() - t0 };
}

/**
 * A SUBSCRIBE job captures only what is committed after its slot/binlog
 * position is taken: insert probe rows (scope "probe") until one shows up.
 */
export async function untilCapturing(db: DbHandle, table: string, base: string, feed: string, probe: (n: number) => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let n = 1; Date.now() < deadline; n++) {
    await db.query(probe(n));
    const r = await getChanges(base, `/feeds/${feed}/changes`, { scope: 'probe', limit: 1, block: 1 });
    if (r.status === 200 && r.body.changes.length > 0) return;
  }
  throw new Error(`capture of ${table} into feed ${feed} did not start within ${timeoutMs} ms`);
}
