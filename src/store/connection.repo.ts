import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { DbConnectionConfig, DbKind, TlsOptions } from '../replication/connection-config.ts';
import type { SecretBox } from './secrets.ts';
import { translateStoreError } from './store-errors.ts';

export interface ConnectionRow {
  id: string;
  name: string;
  kind: DbKind;
  host: string;
  port: number;
  username: string;
  database: string | null;
  tls: TlsOptions | null;
  environment_id: string | null;
  created_at: Date;
  updated_at: Date;
  modify_index: string;
}

export interface NewConnection {
  name: string;
  kind: DbKind;
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string | null;
  tls?: TlsOptions | null;
  environmentId?: string | null;
}

const COLS = 'id, name, kind, host, port, username, database, tls, environment_id, created_at, updated_at, modify_index';

/** Connections; the password is stored encrypted and only `config()` ever decrypts it (for the engine). */
export class ConnectionRepo {
  constructor(private readonly pool: pg.Pool, private readonly secrets: SecretBox) {}

  async create(c: NewConnection, db: pg.Pool | pg.PoolClient = this.pool): Promise<ConnectionRow> {
    const { rows } = await db.query<ConnectionRow>(
      `INSERT INTO connections (id, name, kind, host, port, username, password_enc, database, tls, environment_id)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING ${COLS}`,
      [randomUUID(), c.name, c.kind, c.host, c.port, c.user, this.secrets.encrypt(c.password), c.database ?? null, c.tls ? JSON.stringify(c.tls) : null, c.environmentId ?? null],
    ).catch(translateStoreError);
    return rows[0]!;
  }

  async get(id: string): Promise<ConnectionRow | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return this.byName(id);
    const { rows } = await this.pool.query<ConnectionRow>(`SELECT ${COLS} FROM connections WHERE id = $1`, [id]);
    return rows[0];
  }

  async byName(name: string): Promise<ConnectionRow | undefined> {
    const { rows } = await this.pool.query<ConnectionRow>(`SELECT ${COLS} FROM connections WHERE name = $1`, [name]);
    return rows[0];
  }

  async byEnvironment(envId: string): Promise<ConnectionRow | undefined> {
    const { rows } = await this.pool.query<ConnectionRow>(`SELECT ${COLS} FROM connections WHERE environment_id = $1`, [envId]);
    return rows[0];
  }

  async list(): Promise<ConnectionRow[]> {
    const { rows } = await this.pool.query<ConnectionRow>(`SELECT ${COLS} FROM connections ORDER BY created_at, name`);
    return rows;
  }

  async getMany(ids: readonly string[]): Promise<(ConnectionRow | undefined)[]> {
    const { rows } = await this.pool.query<ConnectionRow>(`SELECT ${COLS} FROM connections WHERE id = ANY($1::uuid[])`, [ids]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id));
  }

  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('DELETE FROM connections WHERE id = $1', [id]);
    return (rowCount ?? 0) > 0;
  }

  /** The decrypted config the engine needs. Never return this from an API. */
  async config(id: string): Promise<DbConnectionConfig> {
    const { rows } = await this.pool.query<ConnectionRow & { password_enc: string }>(`SELECT ${COLS}, password_enc FROM connections WHERE id = $1`, [id]);
    const r = rows[0];
    if (!r) throw new Error(`connection ${id} not found`);
    return {
      kind: r.kind, host: r.host, port: r.port, user: r.username, password: this.secrets.decrypt(r.password_enc),
      database: r.database ?? undefined, tls: r.tls ?? undefined,
    };
  }
}
