import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Role } from '../auth/roles.ts';

export interface TokenRow {
  id: string;
  name: string;
  role: Role;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** API tokens, stored hashed. The clear token is returned once, at creation. */
export class TokenRepo {
  constructor(private readonly pool: pg.Pool) {}

  async create(name: string, role: Role): Promise<{ row: TokenRow; token: string }> {
    const token = `trb_${randomBytes(24).toString('base64url')}`;
    const { rows } = await this.pool.query<TokenRow>(
      `INSERT INTO api_tokens (id, name, role, token_hash, prefix) VALUES ($1, $2, $3, $4, $5)
       RETURNING id, name, role, prefix, created_at, last_used_at, revoked_at`,
      [randomUUID(), name, role, hashToken(token), token.slice(0, 8)],
    );
    return { row: rows[0]!, token };
  }

  async list(): Promise<TokenRow[]> {
    const { rows } = await this.pool.query<TokenRow>(
      'SELECT id, name, role, prefix, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at');
    return rows;
  }

  async revoke(idOrPrefix: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE api_tokens SET revoked_at = now()
       WHERE revoked_at IS NULL AND (id::text = $1 OR prefix = $1 OR name = $1)`, [idOrPrefix]);
    return (rowCount ?? 0) > 0;
  }

  async findActive(token: string): Promise<TokenRow | undefined> {
    const { rows } = await this.pool.query<TokenRow>(
      `UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1 AND revoked_at IS NULL
       RETURNING id, name, role, prefix, created_at, last_used_at, revoked_at`, [hashToken(token)]);
    return rows[0];
  }

  async countActive(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL');
    return Number(rows[0]?.n ?? 0);
  }
}
