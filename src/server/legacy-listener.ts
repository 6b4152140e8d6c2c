/**
 * A legacy API on its own port (Cello 8080, Udup 8190, ...): one Express app
 * serving one REST compat router, closed with the gateway. Requests still run
 * through the gateway's executor, so auth and resolvers are the same.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Router } from 'express';
import type { Logger } from '../observability/logger.ts';

export interface LegacyListenerOptions {
  /** For logs, e.g. "cello". */
  name: string;
  host: string;
  port: number;
  router: Router;
  logger: Logger;
}

export interface LegacyListener {
  address: AddressInfo;
  /** Stops accepting and waits for open requests. Idempotent. */
  close(): Promise<void>;
}

export async function startLegacyListener(opts: LegacyListenerOptions): Promise<LegacyListener> {
  const app = express();
  app.disable('x-powered-by');
  app.use(opts.router);
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });
  const address = server.address() as AddressInfo;
  opts.logger.info({ api: opts.name, host: address.address, port: address.port }, 'legacy API listening');
  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
