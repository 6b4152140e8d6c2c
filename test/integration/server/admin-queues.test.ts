/**
 * bull-board at /admin/queues against a real gateway (private PostgreSQL and
 * Redis): open mode lets the loopback caller in; with tokens defined, no
 * token is 401, reader and operator are 403, admin is 200 by header, by
 * ?token= (which sets an HttpOnly cookie and redirects without the token) and
 * by that cookie. The page and its API list the shared `tasks` queue and the
 * configured cluster's queue, and the page loads nothing from another origin.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { pgDatabase, uniq, waitFor } from '../../support/databases.ts';
import { createJob, endpoint, waitJob } from '../../support/replication.ts';
import { startTestGateway, gql, type TestGateway } from '../../support/gateway.ts';
import { Role } from '../../../src/auth/roles.ts';
import { QUEUE_DASHBOARD_COOKIE } from '../../../src/server/queue-dashboard.ts';

interface QueuesResponse { queues: { name: string; counts: Record<string, number> }[] }

describe('queue dashboard (/admin/queues)', () => {
  let gw: TestGateway;
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${gw.url}${path}`, { headers, redirect: 'manual' });

  beforeAll(async () => {
    gw = await startTestGateway({ clusters: [{ name: 'east', size: 3 }] } as never);
  });
  afterAll(async () => { await gw?.close(); });

  it('open mode (no token defined, loopback): the caller is admin and sees every queue', async () => {
    const noop = await gql(gw.url, 'mutation { runNoop(steps: 1, stepMs: 10) { taskId } }');
    expect(noop.body.data).toBeTruthy();

    const page = await get('/admin/queues');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('<base href="/admin/queues/"');
    expect(html).toContain('Tributary queues');
    // No off-origin asset: every src/href is relative or same-origin.
    const urls = [...html.matchAll(/\b(?:src|href)\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1]!);
    expect(urls.length).toBeGreaterThan(2);
    for (const u of urls) expect(u, u).not.toMatch(/^(?:[a-z][a-z0-9+.-]*:)?\/\//i);
    expect(html).not.toMatch(/https?:\/\//);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    // The page's own scripts and styles are served from node_modules by the gateway.
    for (const u of urls.filter((x) => x.startsWith('static/'))) {
      const asset = await get(`/admin/queues/${u}`);
      expect(asset.status, u).toBe(200);
      await asset.arrayBuffer();
    }
    // A deep link into a queue is the same page.
    expect((await get('/admin/queues/queue/tasks')).status).toBe(200);

    const api = await get('/admin/queues/api/queues');
    expect(api.status).toBe(200);
    const body = (await api.json()) as QueuesResponse;
    const names = body.queues.map((q) => q.name);
    expect(names).toContain('tasks');
    expect(names).toContain('tasks-cluster-east');
  });

  it('each task shows its kind with the job and task names, not only ids', async () => {
    const src = await pgDatabase(inject('pgUrl'), uniq('dash_src'));
    const dst = await pgDatabase(inject('pgUrl'), uniq('dash_dst'));
    try {
      await src.query('CREATE TABLE t (id int PRIMARY KEY)');
      const name = uniq('dashjob');
      const job = await createJob(gw.url, { name, type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public', tables: ['t'] }] });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
      const names = await waitFor(async () => {
        const body = (await (await get('/admin/queues/api/queues?activeQueue=tasks&status=active&page=1&jobsPerPage=50')).json()) as { queues: { name: string; jobs: { name: string }[] }[] };
        return body.queues.find((q) => q.name === 'tasks')!.jobs.map((j) => j.name);
      }, (n) => n.includes(`capture · ${name}: Src`) && n.includes(`apply · ${name}: Dest`), 20_000, 'labelled tasks');
      expect(names.filter((n) => n.includes(name)).sort()).toEqual([`apply · ${name}: Dest`, `capture · ${name}: Src`]);
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    } finally {
      await src.close(); await dst.close();
    }
  });

  it('with tokens: none 401, reader/operator 403, admin 200 by header, ?token= (cookie) and cookie', async () => {
    const reader = await gw.app.services.tokens.create('dash-reader', Role.Reader);
    const operator = await gw.app.services.tokens.create('dash-operator', Role.Operator);
    const admin = await gw.app.services.tokens.create('dash-admin', Role.Admin);
    gw.app.services.auth.invalidate();

    for (const path of ['/admin/queues', '/admin/queues/api/queues', '/admin/queues/static/favicon.ico']) {
      const none = await get(path);
      expect(none.status, path).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/Bearer/);
      expect(((await none.json()) as any).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
    const wrong = await get('/admin/queues', { authorization: 'Bearer trb_wrong' });
    expect(wrong.status).toBe(401);
    await wrong.arrayBuffer();

    for (const t of [reader.token, operator.token]) {
      for (const r of [await get('/admin/queues', { authorization: `Bearer ${t}` }), await get(`/admin/queues/api/queues?token=${t}`), await get('/admin/queues', { cookie: `${QUEUE_DASHBOARD_COOKIE}=${t}` })]) {
        expect(r.status).toBe(403);
        expect(r.headers.get('set-cookie')).toBeNull();
        expect(((await r.json()) as any).errors[0].extensions.code).toBe('FORBIDDEN');
      }
    }

    const byHeader = await get('/admin/queues/api/queues', { authorization: `Bearer ${admin.token}` });
    expect(byHeader.status).toBe(200);
    expect(((await byHeader.json()) as QueuesResponse).queues.map((q) => q.name)).toContain('tasks');

    const byQuery = await get(`/admin/queues?token=${encodeURIComponent(admin.token)}&x=1`);
    expect(byQuery.status).toBe(303);
    expect(byQuery.headers.get('location')).toBe('/admin/queues?x=1');
    const setCookie = byQuery.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(new RegExp(`^${QUEUE_DASHBOARD_COOKIE}=`));
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Path=\/admin\/queues/);
    const cookie = setCookie.split(';')[0]!;

    const page = await get('/admin/queues', { cookie });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<base href="/admin/queues/"');
    const api = await get('/admin/queues/api/queues', { cookie: `other=1; ${cookie}` });
    expect(api.status).toBe(200);
    expect(((await api.json()) as QueuesResponse).queues.map((q) => q.name)).toEqual(expect.arrayContaining(['tasks', 'tasks-cluster-east']));

    // A revoked admin token stops working for the cookie too.
    await gw.app.services.tokens.revoke(admin.row.id);
    gw.app.services.auth.invalidate();
    const revoked = await get('/admin/queues/api/queues', { cookie });
    expect(revoked.status).toBe(401);
    await revoked.arrayBuffer();
  });

});
