import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { freePort } from '../../../src/devtools/private-servers.ts';

describe('legacy ports', () => {
  let gw: TestGateway;
  const ports: Record<string, number> = {};
  beforeAll(async () => {
    for (const k of ['udupPort', 'celloPort', 'connectionServicePort', 'fateFlowPort']) ports[k] = await freePort();
    gw = await startTestGateway(ports as never);
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
});
