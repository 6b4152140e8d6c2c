/**
 * The bull-board queue dashboard in a real headless Chromium (Debian's
 * /usr/bin/chromium driven by playwright-core) with an admin token: the
 * `?token=` link stores the cookie and the page renders the `tasks` queue
 * with no request leaving 127.0.0.1 and no script error or CSP violation.
 * A screenshot lands in .tmp/admin-queues.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { Role } from '../../src/auth/roles.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic', '--no-first-run',
];

describe('queue dashboard in headless Chromium', () => {
  let gw: TestGateway | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let userDataDir: string | undefined;
  const requests: string[] = [];
  const problems: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y --no-install-recommends chromium); .ci/run does this`);
    }
    gw = await startTestGateway({ clusters: [{ name: 'east', size: 3 }] } as never);
    userDataDir = mkdtempSync(path.join(os.tmpdir(), 'tributary-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 900 } });
    context.on('request', (req) => { requests.push(req.url()); });
    page = context.pages()[0] ?? await context.newPage();
    page.on('pageerror', (err) => { problems.push(`pageerror: ${err.message}`); });
    page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await gw?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('renders every queue from local assets with an admin token given once as ?token=', async () => {
    const admin = await gw!.app.services.tokens.create('dash-admin', Role.Admin);
    gw!.app.services.auth.invalidate();
    await page.goto(`${gw!.url}/admin/queues?token=${encodeURIComponent(admin.token)}`);
    expect(new URL(page.url()).search).toBe('');
    await page.getByText('tasks-cluster-east').first().waitFor({ timeout: 30_000 });
    await page.getByText(/^tasks$/).first().waitFor({ timeout: 10_000 });
    mkdirSync('.tmp', { recursive: true });
    await page.screenshot({ path: '.tmp/admin-queues.png' });
    const off = requests.filter((u) => new URL(u).hostname !== '127.0.0.1');
    expect(off).toEqual([]);
    expect(problems).toEqual([]);
  });
});
