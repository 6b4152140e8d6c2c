/**
 * The metadata database (PostgreSQL). `ensureDatabase` creates it when
 * missing; `migrate` applies src/store/migrations/NNN_name.sql in order under
 * an advisory lock, each in its own transaction, recording versions in
 * schema_migrations, so running it twice (or from two processes) changes
 * nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import pg from 'pg';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
const LOCK_KEY = 727274; // arbitrary, stable advisory lock id for migrations

export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
}

/** libpq's default: with no user in the URL (and no PGUSER), connect as the OS user. */
export function withDefaultUser(url: string): string {
  const u = new URL(url);
  if (!u.username) u.username = process.env.PGUSER || os.userInfo().username;
  return u.toString();
}

function describe(url: string): string {
  const u = new URL(url);
  return `PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname}`;
}

/** Create the database named in `url` if it does not exist. */
export async function ensureDatabase(rawUrl: string): Promise<void> {
  const url = withDefaultUser(rawUrl);
  const target = new URL(url);
  const dbName = decodeURIComponent(target.pathname.replace(/^\//, '')) || 'postgres';
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await probe.connect();
    await probe.end();
    return;
  } catch (err) {
    await probe.end().catch(() => undefined);
    if ((err as { code?: string }).code !== '3D000') {
      throw new DatabaseUnavailableError(`${describe(url)} is unreachable: ${(err as Error).message}`);
    }
  }
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(dbName)}`);
  } catch (err) {
    if ((err as { code?: string }).code !== '42P04') {
      throw new DatabaseUnavailableError(`cannot create database ${dbName} on ${describe(url)}: ${(err as Error).message}`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function createPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: withDefaultUser(url), max, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 });
  pool.on('error', () => { /* idle client errors surface on next use */ });
  return pool;
}

export interface MigrationResult { applied: string[]; current: number }

export async function migrate(pool: pg.Pool): Promise<MigrationResult> {
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{3}_.+\.sql$/.test(f)).sort();
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    for (const file of files) {
      const version = Number(file.slice(0, 3));
      if (done.has(version)) continue;
      const sql = readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations(version, name) VALUES ($1, $2)', [version, file]);
        await client.query('COMMIT');
        applied.push(file);
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(err as Error).message}`);
      }
    }
    const current = (await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]?.v ?? 0;
    return { applied, current };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => undefined);
    client.release();
  }
}
