import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { freePort } from '../../../src/devtools/private-servers.ts';

describe('legacy ports', () => {
  let gw: TestGateway;
  const ports: Record<string, number> = {};
  beforeAll(async () => {
    for (const k of ['udupPort', 'celloPort', 'connectionServicePort', 'fateFlowPort', 'changeserverPort']) ports[k] = await freePort();
    gw = await startTestGateway({ ...ports, changeserverBasePath: '/cs' } as never);
  });
  afterAll(async () => { await gw?.close(); });

  it('serves each legacy API on its own port as well as on the main one', async () => {
    const udup = await fetch(`http://127.0.0.1:${ports.udupPort}/v1/jobs`);
    expect(udup.status).toBe(200);
    expect(Array.isArray(await udup.json())).toBe(true);
    const cello = await fetch(`http://127.0.0.1:${ports.celloPort}/v2/clusters`);
    expect(((await cello.json()) as { status: string }).status).toBe('OK');
    const fate = await fetch(`http://127.0.0.1:${ports.fateFlowPort}/v1/job/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(((await fate.json()) as { retcode: number }).retcode).toBe(0);
    const conn = await fetch(`http://127.0.0.1:${ports.connectionServicePort}/checkJobStatus`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'environmentId=nope' });
    expect(conn.status).toBeGreaterThanOrEqual(400);
    expect(await conn.json()).toHaveProperty('code');
    // The main port answers the same routes.
    expect((await fetch(`${gw.url}/v1/jobs`)).status).toBe(200);
  });

  it('OpenAPI servers list the gateway\'s real address and the API\'s own port, on either listener', async () => {
    const gatewayPort = gw.app.address()!.port;
    const docs: [string, string, number][] = [
      ['/v1/openapi.json', '', ports.udupPort!],
      ['/v2/openapi.json', '', ports.celloPort!],
      ['/connection-service/openapi.json', '', ports.connectionServicePort!],
      ['/v1/fate-flow/openapi.json', '', ports.fateFlowPort!],
    ];
    for (const [path, base, legacy] of docs) {
      const expected = [`http://127.0.0.1:${gatewayPort}${base}`, `http://127.0.0.1:${legacy}${base}`];
      for (const port of [gatewayPort, legacy]) {
        const doc = await (await fetch(`http://127.0.0.1:${port}${path}`)).json() as { servers: { url: string }[] };
        expect(doc.servers.map((s) => s.url), `${path} on ${port}`).toEqual(expected);
        // Every listed server answers the document's own path.
        for (const s of doc.servers) expect((await fetch(`${s.url}${path}`)).status).toBe(200);
      }
    }
    // changeserver's document (on its listener, under CHANGESERVER_BASE_PATH): the gateway serves its routes too.
    const cs = await (await fetch(`http://127.0.0.1:${ports.changeserverPort}/cs/openapi.json`)).json() as { servers: { url: string }[] };
    expect(cs.servers.map((s) => s.url)).toEqual([`http://127.0.0.1:${gatewayPort}/cs`, `http://127.0.0.1:${ports.changeserverPort}/cs`]);
    for (const s of cs.servers) expect(await (await fetch(`${s.url}/feeds/none/changes`)).json()).toMatchObject({ code: 'MISSING_PARAMETER' });
  });

  it('without legacy ports the documents list only the gateway', async () => {
    const plain = await startTestGateway({}, { worker: false });
    try {
      const doc = await (await fetch(`${plain.url}/v2/openapi.json`)).json() as { servers: { url: string }[] };
      expect(doc.servers.map((s) => s.url)).toEqual([plain.url]);
    } finally {
      await plain.close();
    }
  });
});
