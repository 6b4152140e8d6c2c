/** Helpers to create throwaway databases on the suite's private servers and compare tables. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { inject } from 'vitest';

export interface DbHandle {
  kind: 'postgres' | 'mysql';
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  query<T = any>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export const uniq = (p: string) => `${p}_${randomBytes(3).toString('hex')}`;

export async function pgDatabase(baseUrl: string, name = uniq('db')): Promise<DbHandle> {
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: u.toString(), max: 4 });
  return {
    kind: 'postgres', host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: '', database: name,
    async query(sql, params) { return (await pool.query(sql, params as unknown[])).rows; },
    close: () => pool.end(),
  };
}

/** On MariaDB a "database" handle is a schema (database) on the server. */
export async function mariaDatabase(baseUrl: string, name = uniq('db')): Promise<DbHandle> {
  const u = new URL(baseUrl);
  const pool = mysql.createPool({ host: u.hostname, port: Number(u.port), user: 'root', password: '', connectionLimit: 4, multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
  await pool.query(`CREATE DATABASE \`${name}\``);
  await pool.query(`USE \`${name}\``);
  return {
    kind: 'mysql', host: u.hostname, port: Number(u.port), user: 'root', password: '', database: name,
    async query(sql, params) {
      const conn = await pool.getConnection();
      try { await conn.query(`USE \`${name}\``); const [rows] = await conn.query(sql, params); return rows as any[]; } finally { conn.release(); }
    },
    close: () => pool.end(),
  };
}

/** A throwaway database named `name` on the suite's private PostgreSQL or MariaDB (from inject). */
export function openDatabase(kind: DbHandle['kind'], name: string): Promise<DbHandle> {
  return kind === 'postgres' ? pgDatabase(inject('pgUrl'), name) : mariaDatabase(inject('mariaUrl'), name);
}

export function connInput(db: DbHandle, opts: { withDatabase?: boolean } = {}) {
  return { kind: db.kind, host: db.host, port: db.port, user: db.user, password: db.password, ...(opts.withDatabase === false ? {} : { database: db.database }) };
}

export async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000, label = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    try { last = await fn(); if (ok(last)) return last; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${label}; last value ${JSON.stringify(last)}`);
}
