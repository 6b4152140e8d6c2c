/**
 * GET /: a small page that says what this gateway serves and where, so a
 * newcomer who opens http://127.0.0.1:8190/ finds GraphiQL, the queue
 * dashboard, metrics, health, the OpenAPI document of each legacy dialect
 * and the docs. Plain HTML with no script and nothing from another origin,
 * so it works offline and under any token setting (the page itself holds no
 * data; each link says what credential it needs). GET /docs/<name>.md serves
 * the repository's docs as text.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';

export interface LandingOptions {
  version: string;
  /** Whether API tokens exist (then the GraphQL API and the dashboard need one). */
  tokensRequired: () => Promise<boolean>;
  /** The legacy REST documents served on this port: [title, path]. */
  openApi: [string, string][];
  /** Other listeners and what they serve (the changeserver port, legacy ports): [title, url]. */
  elsewhere: () => [string, string][];
}

const DOCS_DIR = fileURLToPath(new URL('../../docs/', import.meta.url));
const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const DOC_NAME = /^[a-z0-9-]+\.md$/;

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function docNames(): string[] {
  try { return readdirSync(DOCS_DIR).filter((f) => DOC_NAME.test(f)).sort(); } catch { return []; }
}

export function landingPage(opts: LandingOptions, tokens: boolean): string {
  const li = (href: string, title: string, note = ''): string => `<li><a href="${esc(href)}">${esc(title)}</a>${note ? ` <span>${esc(note)}</span>` : ''}</li>`;
  const auth = tokens
    ? 'API tokens are set on this gateway: open GraphiQL as /graphiql?token=YOUR_TOKEN (it keeps the token in this browser and sends it as "Authorization: Bearer"), and the queue dashboard as /admin/queues?token=ADMIN_TOKEN.'
    : 'No API token is set: callers on this machine have every role. Create tokens with "npx tributary token create --role admin" before listening on another address.';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>Tributary</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1f23}
h1{margin-bottom:0}h1+p{margin-top:.2rem;color:#57606a}h2{margin-top:1.6rem;font-size:1.1rem}
span{color:#57606a;font-size:.9rem}code{background:#f3f4f6;padding:0 .25rem;border-radius:3px}
.auth{background:#fff8c5;padding:.6rem .8rem;border-radius:6px}
</style>
</head>
<body>
<h1>Tributary</h1>
<p>Change-data-capture and replication gateway, version ${esc(opts.version)}</p>
<p class="auth">${esc(auth)}</p>
<h2>Explore and operate</h2>
<ul>
${li('/graphiql', 'GraphiQL', 'the GraphQL API: queries, mutations, subscriptions (createJob, verifyJob, changes)')}
${li('/admin/queues', 'Queue dashboard', 'tasks per queue, with job and task names; admin role')}
${li('/metrics', 'Metrics', 'Prometheus text: HTTP, GraphQL, queues, per-job lag and backlog')}
${li('/health', 'Health', 'PostgreSQL and Redis reachable')}
${li('/ready', 'Readiness', 'started and not shutting down')}
</ul>
<h2>Legacy REST APIs (OpenAPI documents)</h2>
<ul>
${opts.openApi.map(([t, p]) => li(p, t)).join('\n')}
${opts.elsewhere().map(([t, u]) => li(u, t)).join('\n')}
</ul>
<h2>Documentation</h2>
<ul>
${li('/docs/README.md', 'README', 'start here: first job, configuration, tests')}
${docNames().map((d) => li(`/docs/${d}`, d)).join('\n')}
</ul>
<p><span>A first job from the command line: <code>npm run demo</code> starts private source and destination databases with a live job.</span></p>
</body>
</html>`;
}

export function landingRouter(opts: LandingOptions): Router {
  const router = express.Router();
  router.get('/', async (_req, res) => {
    const tokens = await opts.tokensRequired().catch(() => true);
    res.type('html').set('Cache-Control', 'no-store').set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'").send(landingPage(opts, tokens));
  });
  router.get('/docs/:name', (req, res, next) => {
    const name = req.params.name;
    if (name === 'README.md') { res.type('text/markdown; charset=utf-8').sendFile(README); return; }
    if (!DOC_NAME.test(name) || !docNames().includes(name)) { next(); return; }
    res.type('text/markdown; charset=utf-8').sendFile(`${DOCS_DIR}${name}`);
  });
  return router;
}
