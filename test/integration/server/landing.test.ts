/**
 * GET / (issue 14 item 8): a landing page that links what the gateway serves
 * (GraphiQL, queue dashboard, metrics, health, each dialect's OpenAPI
 * document, the docs), with nothing from another origin and no script, in
 * open mode and with tokens set (then it says how to pass one). Every link
 * it lists answers on this gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { Role } from '../../../src/auth/roles.ts';

describe('landing page', () => {
  let gw: TestGateway;
  beforeAll(async () => { gw = await startTestGateway(); });
  afterAll(async () => { await gw?.close(); });

  const links = (html: string) => [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]!.replace(/&#38;/g, '&'));

  it('links every local page, each of which answers; offline-safe', async () => {
    const res = await fetch(`${gw.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const html = await res.text();
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    expect(html).toContain('No API token is set');
    const hrefs = links(html);
    for (const p of ['/graphiql', '/admin/queues', '/metrics', '/health', '/ready', '/v1/openapi.json', '/v2/openapi.json', '/v1/fate-flow/openapi.json', '/connection-service/openapi.json', '/docs/README.md', '/docs/types.md', '/docs/consistency.md']) {
      expect(hrefs, p).toContain(p);
    }
    for (const h of hrefs) {
      const r = await fetch(`${gw.url}${h}`);
      expect(r.status, h).toBe(200);
      await r.arrayBuffer();
    }
    const doc = await fetch(`${gw.url}/docs/types.md`);
    expect(doc.headers.get('content-type')).toMatch(/text\/markdown/);
    expect(await doc.text()).toContain('# Type mapping');
    // Only the docs folder's own files.
    for (const bad of ['/docs/..%2Fpackage.json', '/docs/nope.md', '/docs/.env']) expect((await fetch(`${gw.url}${bad}`)).status, bad).toBe(404);
  });

  it('with tokens set, the page still answers and says how to pass a token', async () => {
    await gw.app.services.tokens.create('landing-admin', Role.Admin);
    gw.app.services.auth.invalidate();
    const res = await fetch(`${gw.url}/`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('/graphiql?token=YOUR_TOKEN');
    expect(html).toContain('/admin/queues?token=ADMIN_TOKEN');
    // GraphiQL's page itself tells the same.
    expect(await (await fetch(`${gw.url}/graphiql`)).text()).toContain('/graphiql?token=YOUR_TOKEN');
  });
});
