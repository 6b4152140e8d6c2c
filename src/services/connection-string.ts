/**
 * Connection strings as the Debezium-style service's callers send them:
 * `mysql://`, `mariadb://`, `postgres://` or `postgresql://`
 * user:password@host[:port][/database][?params]. TLS parameters:
 * PostgreSQL `sslmode` (disable|allow|prefer: off; require: on without
 * certificate check; verify-ca|verify-full: on, verified) and `ssl=true`;
 * MariaDB/MySQL `ssl`/`useSSL` (true|1) and `ssl-mode`/`sslMode`
 * (DISABLED|PREFERRED: off; REQUIRED: on without check; VERIFY_CA|VERIFY_IDENTITY: verified).
 */
import { badInput } from '../errors.ts';
import type { ConnectionInputData } from './connection.service.ts';

const SCHEMES: Record<string, 'mysql' | 'postgres'> = { 'mysql:': 'mysql', 'mariadb:': 'mysql', 'postgres:': 'postgres', 'postgresql:': 'postgres' };
const DEFAULT_PORT = { mysql: 3306, postgres: 5432 } as const;

/** A percent-encoded URL part; a malformed escape ("%zz") is the caller's input, never an internal error. The message names the part, not its value (it may be a password). */
function decodePart(text: string, part: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badInput(`connectionString ${part} has a malformed percent-escape (e.g. "%zz"): encode "%" as "%25"`, 'connectionString');
  }
}

export function parseConnectionString(text: string): ConnectionInputData {
  if (typeof text !== 'string' || !text.trim()) throw badInput('connectionString is required: mysql://, mariadb://, postgres:// or postgresql:// URL', 'connectionString');
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw badInput('connectionString is not a URL: expected e.g. postgres://user:password@host:5432/database', 'connectionString');
  }
  const kind = SCHEMES[u.protocol];
  if (!kind) throw badInput(`connectionString scheme "${u.protocol.replace(/:$/, '')}" is not supported: use mysql, mariadb, postgres or postgresql`, 'connectionString');
  if (!u.hostname) throw badInput('connectionString has no host', 'connectionString');
  const user = decodePart(u.username, 'user name');
  if (!user) throw badInput('connectionString has no user name', 'connectionString');
  const port = u.port ? Number(u.port) : DEFAULT_PORT[kind];
  const database = decodePart(u.pathname.replace(/^\//, ''), 'database') || null;
  if (database && database.includes('/')) throw badInput('connectionString path must be just the database name', 'connectionString');
  const param = (...names: string[]) => { for (const n of names) { const v = u.searchParams.get(n); if (v !== null) return v.toLowerCase(); } return undefined; };
  let tls: ConnectionInputData['tls'] = null;
  if (kind === 'postgres') {
    const mode = param('sslmode') ?? (['true', '1'].includes(param('ssl') ?? '') ? 'require' : undefined);
    if (mode && !['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'].includes(mode)) throw badInput(`unknown sslmode "${mode}"`, 'connectionString');
    if (mode === 'require') tls = { enabled: true, rejectUnauthorized: false };
    if (mode === 'verify-ca' || mode === 'verify-full') tls = { enabled: true, rejectUnauthorized: true };
  } else {
    const mode = param('ssl-mode', 'sslmode', 'sslMode'.toLowerCase()) ?? (['true', '1'].includes(param('ssl', 'usessl', 'useSSL') ?? '') ? 'required' : undefined);
    if (mode && !['disabled', 'preferred', 'required', 'verify_ca', 'verify_identity'].includes(mode)) throw badInput(`unknown ssl-mode "${mode}"`, 'connectionString');
    if (mode === 'required') tls = { enabled: true, rejectUnauthorized: false };
    if (mode === 'verify_ca' || mode === 'verify_identity') tls = { enabled: true, rejectUnauthorized: true };
  }
  return { kind, host: u.hostname.replace(/^\[|\]$/g, ''), port, user, password: decodePart(u.password, 'password'), database, tls };
}
