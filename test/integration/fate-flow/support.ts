/** Helpers of the FATE-Flow suites: POST with the seed's field names, wait for a job status. */
import { expect } from 'vitest';
import { waitFor } from '../../support/databases.ts';

export interface FateAnswer { status: number; body: { retcode: number; retmsg: string; data?: any; jobId?: string; meta?: any } }

export async function fate(url: string, path: string, body: unknown): Promise<FateAnswer> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as FateAnswer['body'] };
}

export async function jobOf(url: string, jobId: string): Promise<any> {
  const r = await fate(url, '/v1/job/query', { job_id: jobId });
  expect(r.body.retcode).toBe(0);
  return r.body.data[0];
}

/** Wait until the job reaches one of `statuses` (FATE names); fails fast on an unexpected end status. */
export async function waitJob(url: string, jobId: string, statuses: string[], timeoutMs = 60_000): Promise<any> {
  const ends = ['success', 'failed', 'canceled', 'timeout'];
  const job = await waitFor(() => jobOf(url, jobId), (j) => statuses.includes(j?.f_status) || (ends.includes(j?.f_status) && !statuses.includes(j.f_status)), timeoutMs, `job ${jobId} ${statuses.join('|')}`);
  if (!statuses.includes(job.f_status)) {
    const log = await fate(url, '/v1/job/log', { job_id: jobId });
    throw new Error(`job ${jobId} is ${job.f_status}: ${job.f_error}\n${(log.body.data?.lines ?? []).join('\n')}`);
  }
  return job;
}

export async function gqlCreateConnection(url: string, input: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'mutation($i: ConnectionInput!) { createConnection(input: $i) { id name } }', variables: { i: input } }),
  });
  const body = (await res.json()) as { errors?: unknown };
  expect(body.errors).toBeUndefined();
}
