'use strict';
/**
 * The changefeed benchmark's peer server: PostGraphile 4 with live queries
 * (`live: true`, `subscriptions: true`, @graphile/subscriptions-lds reading
 * changes through a temporary wal2json slot), in a process of its own as it
 * would be deployed. Started by bench/support/postgraphile-peer.ts:
 *   node server.cjs DATABASE_URL
 * Listens on a free loopback port and prints `READY <port>` once the schema is
 * built, the LDS slot exists and the WebSocket endpoint is attached; stops on
 * SIGTERM. PostGraphile's own defaults are kept (LD_WAIT, LIVE_THROTTLE and
 * the pool size come from the environment or PostGraphile's defaults), and it
 * speaks both subscriptions-transport-ws and graphql-ws on /graphql.
 * Lives in its own package (graphql 15) apart from the gateway (graphql 16).
 */
const http = require('node:http');
const { postgraphile, enhanceHttpServerWithWebSockets } = require('postgraphile');
const lds = require('@graphile/subscriptions-lds').default;

const dbUrl = process.argv[2];
if (!dbUrl) {
  console.error('usage: node server.cjs DATABASE_URL');
  process.exit(2);
}

const middleware = postgraphile(dbUrl, 'public', {
  live: true,
  subscriptions: true,
  ownerConnectionString: dbUrl,
  appendPlugins: [lds],
  graphiql: false,
  disableQueryLog: true,
  retryOnInitFail: false,
  ignoreRBAC: true,
});

const server = http.createServer(middleware);
server.listen(0, '127.0.0.1', async () => {
  try {
    await enhanceHttpServerWithWebSockets(server, middleware);
    await middleware.getGraphQLSchema();
    process.stdout.write(`READY ${server.address().port}\n`);
  } catch (err) {
    console.error(`postgraphile peer failed to start: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  }
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 5000).unref();
  server.close();
  try { await middleware.release(); } catch { /* exiting anyway */ }
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
