/**
 * GraphiQL served from local node_modules assets: no CDN (machines have no
 * internet). Subscriptions go over graphql-ws on the same /graphql path.
 * A token can be given as ?token=... or stored from the prompt in the page;
 * it is sent as the Authorization header and in connection_init.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import express, { type Router } from 'express';

const require = createRequire(import.meta.url);

const ASSETS: Record<string, string> = {
  'react.js': 'react/umd/react.production.min.js',
  'react-dom.js': 'react-dom/umd/react-dom.production.min.js',
  'graphiql.js': 'graphiql/graphiql.min.js',
  'graphiql.css': 'graphiql/graphiql.min.css',
  'graphql-ws.js': 'graphql-ws/umd/graphql-ws.min.js',
};

function resolveAsset(rel: string): string {
  const [pkg, ...rest] = rel.split('/');
  const pkgJson = require.resolve(`${pkg}/package.json`);
  return path.join(path.dirname(pkgJson), ...rest);
}

const DEFAULT_QUERY = `# Welcome to Tributary. Try:
{
  version
  nodes { totalCount edges { node { id role host pid lastSeen } } }
}

# Then dispatch a task through BullMQ and watch it:
# mutation { runNoop(steps: 5, stepMs: 300) { taskId } }
# subscription { taskEvents(taskId: "...") { state progress message result } }
#
# An UNAUTHENTICATED answer means this gateway has API tokens: open
# /graphiql?token=YOUR_TOKEN once; the page keeps it in this browser and sends
# it as "Authorization: Bearer" (and in the WebSocket's connection_init).
`;

/**
 * Browser-side: the kind ('query', 'mutation', 'subscription') of the
 * operation `name` (or of the only operation) in `query`, from a scan of
 * top-level tokens with strings and comments removed; undefined if unknown.
 */
const OPERATION_KIND = String.raw`function operationKind(query, name) {
    const src = String(query).replace(/"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*/g, ' ');
    const ops = [];
    const re = /[{}()]|[_A-Za-z][_0-9A-Za-z]*/g;
    let depth = 0, cur = null, m;
    while ((m = re.exec(src))) {
      const t = m[0];
      if (t === '{' || t === '(') {
        if (depth === 0 && t === '{') { ops.push(cur || { kind: 'query', name: undefined }); cur = null; }
        depth++;
      } else if (t === '}' || t === ')') depth--;
      else if (depth === 0 && !cur && /^(query|mutation|subscription|fragment)$/.test(t)) cur = { kind: t, name: undefined };
      else if (depth === 0 && cur && cur.name === undefined) cur.name = t;
    }
    const real = ops.filter((o) => o.kind !== 'fragment');
    const op = name ? real.find((o) => o.name === name) : real.length === 1 ? real[0] : undefined;
    return op ? op.kind : undefined;
  }`;

function page(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<title>Tributary GraphiQL</title>
<link rel="stylesheet" href="/graphiql/assets/graphiql.css" />
<style>body{margin:0;height:100vh}#graphiql{height:100vh}</style>
</head>
<body>
<div id="graphiql">Loading…</div>
<script src="/graphiql/assets/react.js"></script>
<script src="/graphiql/assets/react-dom.js"></script>
<script src="/graphiql/assets/graphql-ws.js"></script>
<script src="/graphiql/assets/graphiql.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  const token = params.get('token') || localStorage.getItem('tributary-token') || '';
  if (params.get('token')) localStorage.setItem('tributary-token', token);
  const headers = token ? { Authorization: 'Bearer ' + token } : {};
  const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
  const wsClient = graphqlWs.createClient({ url: wsUrl, connectionParams: token ? { authorization: 'Bearer ' + token } : {}, lazy: true });
  const httpFetcher = GraphiQL.createFetcher({ url: '/graphql', headers, wsClient });
  ${OPERATION_KIND}
  // GraphiQL parses the editor 100 ms after the last edit and sends an
  // operation over the WebSocket only if that (possibly stale) parse says
  // "subscription": run right after a paste, a subscription went over HTTP
  // and failed. Decide from the text actually sent instead.
  const fetcher = (params, opts) => {
    if (operationKind(params.query, params.operationName || undefined) === 'subscription') {
      return { subscribe: (sink) => ({ unsubscribe: wsClient.subscribe(params, {
        next: (v) => sink.next(v), complete: () => sink.complete(),
        error: (e) => sink.error(e instanceof CloseEvent ? new Error(('Socket closed with event ' + e.code + ' ' + (e.reason || '')).trim()) : e),
      }) }) };
    }
    return httpFetcher(params, opts);
  };
  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, { fetcher, defaultQuery: ${JSON.stringify(DEFAULT_QUERY)}, defaultEditorToolsVisibility: true }));
</script>
</body>
</html>`;
}

export function graphiqlRouter(): Router {
  const router = express.Router();
  const html = page();
  router.get('/graphiql', (_req, res) => {
    res.type('html').set('Cache-Control', 'no-store').send(html);
  });
  for (const [name, rel] of Object.entries(ASSETS)) {
    const file = resolveAsset(rel);
    router.get(`/graphiql/assets/${name}`, (_req, res) => {
      res.sendFile(file, { maxAge: '1h' });
    });
  }
  return router;
}
