/**
 * GraphiQL in a real headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core) against an in-process gateway: the page loads with no
 * request leaving 127.0.0.1, a query runs, a mutation dispatches a noop task
 * through BullMQ, and a subscription over graphql-ws shows it completing.
 * A screenshot lands in .tmp/graphiql.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { VERSION } from '../../src/app.ts';

/** The little of the page's DOM these tests touch (tsconfig has no DOM lib). */
interface BrowserGlobals {
  document: { querySelector(selector: string): { CodeMirror?: { getValue(): string; setValue(v: string): void } } | null };
}

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic', '--no-first-run',
];

describe('GraphiQL in headless Chromium', () => {
  let gw: TestGateway | undefined;
  let context: BrowserContext | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let userDataDir: string | undefined;
  const requests: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y --no-install-recommends chromium); .ci/run does this`);
    }
    gw = await startTestGateway();
    userDataDir = mkdtempSync(path.join(os.tmpdir(), 'tributary-chromium-'));
    // A persistent context gives a fresh, private user data directory per run.
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 900 },
    });
    browser = context.browser() ?? undefined;
    context.on('request', (req) => { requests.push(req.url()); });
    page = context.pages()[0] ?? await context.newPage();
    // WebSockets are not 'request' events in Playwright: record them too.
    page.on('websocket', (ws) => { requests.push(ws.url()); });
    page.on('pageerror', (err) => { pageErrors.push(err.message); });
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await gw?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  /** Replace the query editor's text through its CodeMirror 5 instance. */
  async function setQuery(text: string): Promise<void> {
    await page.evaluate((q) => {
      const el = (globalThis as unknown as BrowserGlobals).document.querySelector('.graphiql-query-editor .CodeMirror');
      if (!el?.CodeMirror) throw new Error('query editor not found');
      el.CodeMirror.setValue(q);
    }, text);
  }

  /** The result pane's full text (CodeMirror renders only visible lines, so read its model). */
  async function resultText(): Promise<string> {
    return page.evaluate(() => {
      const el = (globalThis as unknown as BrowserGlobals).document.querySelector('.graphiql-response .CodeMirror');
      return el?.CodeMirror?.getValue() ?? '';
    });
  }

  async function run(text: string, until: (result: string) => boolean, timeoutMs = 15_000): Promise<string> {
    await setQuery(text);
    const before = await resultText();
    await page.click('.graphiql-execute-button');
    const deadline = Date.now() + timeoutMs;
    let last = before;
    while (Date.now() < deadline) {
      last = await resultText();
      if (last !== before && until(last)) return last;
      await page.waitForTimeout(100);
    }
    throw new Error(`GraphiQL result did not reach the expected state within ${timeoutMs} ms; last result:\n${last}`);
  }

  it('loads with no request leaving 127.0.0.1', async () => {
    const res = await page.goto(`${gw!.url}/graphiql`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 30_000 });
    await page.waitForSelector('.graphiql-execute-button');
    expect(requests.length).toBeGreaterThan(0);
    const foreign = requests.filter((u) => {
      const { protocol, hostname } = new URL(u);
      return !(protocol === 'data:' || protocol === 'blob:' || hostname === '127.0.0.1');
    });
    expect(foreign).toEqual([]);
  });

  it('runs a query and shows the version', async () => {
    const out = await run('{ version }', (r) => r.includes('"version"'));
    expect(JSON.parse(out)).toEqual({ data: { version: VERSION } });
  });

  it('dispatches a task and follows it to completion over a subscription', async () => {
    const started = Date.now();
    const out = await run('mutation { runNoop(steps: 3, stepMs: 300) { taskId } }', (r) => r.includes('taskId') || r.includes('errors'));
    const taskId = (JSON.parse(out) as { data: { runNoop: { taskId: string } } }).data.runNoop.taskId;
    expect(taskId).toMatch(/^[0-9a-f-]{36}$/);

    // Clicked right after the text changes, before GraphiQL's debounced re-parse:
    // the page must still send it over graphql-ws, not as an HTTP POST.
    const final = await run(`subscription { taskEvents(taskId: "${taskId}") { state progress } }`, (r) => {
      const m = /"state":\s*"(\w+)"/.exec(r);
      return m?.[1] === 'completed' || m?.[1] === 'failed' || r.includes('"errors"');
    }, 20_000);
    expect(JSON.parse(final)).toEqual({ data: { taskEvents: { state: 'completed', progress: 100 } } });
    // The subscription went over graphql-ws on the same origin.
    expect(requests.some((u) => u.startsWith(`${gw!.wsUrl}`))).toBe(true);
    expect(Date.now() - started).toBeLessThan(20_000);

    mkdirSync('.tmp', { recursive: true });
    await page.screenshot({ path: '.tmp/graphiql.png' });
  });

  it('made no request outside 127.0.0.1 and raised no page error over the whole session', () => {
    expect(pageErrors).toEqual([]);
    const foreign = requests.filter((u) => {
      const { protocol, hostname } = new URL(u);
      return !(protocol === 'data:' || protocol === 'blob:' || hostname === '127.0.0.1');
    });
    expect(foreign).toEqual([]);
  });
});
