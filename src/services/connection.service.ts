/**
 * Connections: validate, reach the database once before storing (so a bad
 * host or password never leaves a half-created job behind), and report what
 * capture still lacks.
 */
import type { ConnectionRepo, ConnectionRow, NewConnection } from '../store/connection.repo.ts';
import type { DbConnectionConfig, DbKind } from '../replication/connection-config.ts';
import { checkCapture } from '../replication/factory.ts';
import { AppError, ErrorCode, badInput } from '../errors.ts';
import { maskSecrets } from '../observability/logger.ts';
import { UniqueViolationError } from '../store/store-errors.ts';

export interface ConnectionInputData {
  name?: string | null;
  kind: DbKind;
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string | null;
  tls?: { enabled: boolean; rejectUnauthorized?: boolean | null; ca?: string | null } | null;
  environmentId?: string | null;
}

export interface CheckResult { ok: boolean; reachable: boolean; missing: string[]; details: Record<string, string>; error?: string }

export function validateConnectionInput(c: ConnectionInputData): void {
  if (c.kind !== 'mysql' && c.kind !== 'postgres') throw badInput(`unknown database kind "${String(c.kind)}": use mysql or postgres`, 'kind');
  if (!c.host || !/^[A-Za-z0-9._:-]{1,253}$/.test(c.host)) throw badInput(`invalid host "${c.host}"`, 'host');
  if (!Number.isInteger(c.port) || c.port < 1 || c.port > 65535) throw badInput(`invalid port ${c.port}`, 'port');
  if (!c.user) throw badInput('user is required', 'user');
  if (c.name !== undefined && c.name !== null && !/^[A-Za-z0-9_.:@-]{1,128}$/.test(c.name)) throw badInput(`invalid connection name "${c.name}"`, 'name');
}

function toConfig(c: ConnectionInputData): DbConnectionConfig {
  return {
    kind: c.kind, host: c.host, port: c.port, user: c.user, password: c.password ?? '', database: c.database ?? undefined,
    tls: c.tls ? { enabled: c.tls.enabled, rejectUnauthorized: c.tls.rejectUnauthorized ?? undefined, ca: c.tls.ca ?? undefined } : undefined,
  };
}

export class ConnectionService {
  constructor(readonly repo: ConnectionRepo) {}

  /** Reach the database and report capture readiness. Never throws for an unreachable database: `reachable` says so. */
  async check(config: DbConnectionConfig): Promise<CheckResult> {
    try {
      const r = await checkCapture(config);
      return { ok: r.ok, reachable: true, missing: r.missing, details: r.details };
    } catch (err) {
      return { ok: false, reachable: false, missing: [], details: {}, error: maskSecrets((err as Error).message) };
    }
  }

  async test(id?: string, input?: ConnectionInputData): Promise<CheckResult> {
    if (id) {
      const row = await this.repo.get(id);
      if (!row) throw new AppError(ErrorCode.NotFound, `connection ${id} not found`);
      return this.check(await this.repo.config(row.id));
    }
    if (!input) throw badInput('give an id or an input');
    validateConnectionInput(input);
    return this.check(toConfig(input));
  }

  /** Validate, reach, then store. A database that cannot be reached (or refuses the login) is not stored. */
  async create(input: ConnectionInputData, opts: { requireReachable?: boolean } = {}): Promise<ConnectionRow> {
    validateConnectionInput(input);
    const config = toConfig(input);
    if (opts.requireReachable !== false) {
      const r = await this.check(config);
      if (!r.reachable) {
        throw new AppError(ErrorCode.ConnectionFailed, `cannot connect to ${input.kind} at ${input.host}:${input.port}: ${r.error}`, { host: input.host, port: input.port });
      }
    }
    const name = input.name || `${input.kind}-${input.host}-${input.port}-${Date.now().toString(36)}`;
    const data: NewConnection = { name, kind: input.kind, host: input.host, port: input.port, user: input.user, password: input.password ?? '', database: input.database, tls: config.tls, environmentId: input.environmentId };
    try {
      return await this.repo.create(data);
    } catch (err) {
      if (err instanceof UniqueViolationError) throw new AppError(ErrorCode.Conflict, `a connection named "${name}" (or with that environment id) already exists`);
      throw err;
    }
  }

  list(): ReturnType<ConnectionRepo['list']> { return this.repo.list(); }

  /** The connection, or undefined. */
  find(id: string): ReturnType<ConnectionRepo['get']> { return this.repo.get(id); }

  /** Several connections in one query (GraphQL's per-request loader), in the order of `ids`. */
  getMany(ids: readonly string[]): ReturnType<ConnectionRepo['getMany']> { return this.repo.getMany(ids); }

  async delete(id: string): Promise<boolean> {
    try {
      return await this.repo.delete(id);
    } catch (err) {
      if ((err as { code?: string }).code === '23503') throw new AppError(ErrorCode.InvalidState, 'the connection is used by a job: delete the job first');
      throw err;
    }
  }
}
