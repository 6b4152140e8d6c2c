/**
 * `npm run services:up` starts private PostgreSQL, MariaDB and Redis for a
 * person to use (printing their URLs); `npm run services:down` stops them.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startMariadb, startPostgres, startRedis, writeState } from '../src/devtools/private-servers.ts';

const stateFile = path.resolve('.tmp/services.json');
const cmd = process.argv[2];

if (cmd === 'up') {
  const servers = await Promise.all([startPostgres(), startMariadb(), startRedis()]);
  writeState(stateFile, servers);
  for (const s of servers) console.log(`${s.kind.padEnd(8)} ${s.url}  (data ${s.dir})`);
  console.log(`state in ${stateFile}; stop with: npm run services:down`);
  process.exit(0);
} else if (cmd === 'down') {
  if (!existsSync(stateFile)) { console.log('no private services are recorded'); process.exit(0); }
  const list = JSON.parse(readFileSync(stateFile, 'utf8')) as { kind: string; pid?: number; dir: string }[];
  for (const s of list) {
    if (s.pid) { try { process.kill(-s.pid, 'SIGTERM'); } catch { try { process.kill(s.pid, 'SIGTERM'); } catch { /* gone */ } } }
  }
  await new Promise((r) => setTimeout(r, 2000));
  for (const s of list) rmSync(s.dir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
  console.log(`stopped ${list.length} private services`);
} else {
  console.error('usage: services (up|down)');
  process.exit(2);
}
