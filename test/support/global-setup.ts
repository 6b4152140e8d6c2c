/**
 * Starts one private PostgreSQL (wal_level=logical), MariaDB (row binlog,
 * GTID) and Redis for the suite, and hands their URLs to tests through
 * vitest's provide/inject. Suites that kill servers start their own.
 */
import type { TestProject } from 'vitest/node';
import 'vitest';
import { startMariadb, startPostgres, startRedis, type PrivateServer } from '../../src/devtools/private-servers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    mariaUrl: string;
    redisUrl: string;
  }
}

let servers: PrivateServer[] = [];

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  servers = await Promise.all([startPostgres(), startMariadb(), startRedis()]);
  const [pg, maria, redis] = servers as [PrivateServer, PrivateServer, PrivateServer];
  project.provide('pgUrl', pg.url);
  project.provide('mariaUrl', maria.url);
  project.provide('redisUrl', redis.url);
  return async () => {
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
  };
}
