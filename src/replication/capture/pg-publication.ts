/**
 * The capture's publication (PostgreSQL): created from the job's table
 * filter, and kept in step with it when the job's tables change (addTables,
 * removeTables, updateJob). Partitioned tables are published via their root.
 */
import type pg from 'pg';
import type { TableFilter } from '../connection-config.ts';
import { matchesFilter } from '../connection-config.ts';
import { FatalError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { quoteIdent, quoteTable } from './pg-connection.ts';

export const VIA_ROOT = 'WITH (publish_via_partition_root = true)';

export interface PublicationContext {
  pool: pg.Pool;
  publicationName: string;
  tables: TableFilter;
  /** The source user, for error messages. */
  user: string;
  logger: Logger;
}

export async function publicationExists(ctx: Pick<PublicationContext, 'pool' | 'publicationName'>): Promise<boolean> {
  const res = await ctx.pool.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [ctx.publicationName]);
  return res.rowCount! > 0;
}

export async function ensurePublication(ctx: PublicationContext): Promise<void> {
  if (await publicationExists(ctx)) {
    // Publications made before partitioned tables were published via their root.
    await ctx.pool.query(`ALTER PUBLICATION ${quoteIdent(ctx.publicationName)} SET (publish_via_partition_root = true)`)
      .catch((err: unknown) => ctx.logger.warn({ err: String(err) }, 'could not set publish_via_partition_root on an existing publication'));
    await syncPublicationTables(ctx);
    return;
  }
  const pub = quoteIdent(ctx.publicationName);
  const filter = ctx.tables;
  if (filter.schemas.length === 0) {
    try {
      await ctx.pool.query(`CREATE PUBLICATION ${pub} FOR ALL TABLES ${VIA_ROOT}`);
    } catch (err) {
      if ((err as { code?: string }).code === '42501') {
        throw new FatalError(
          `user ${ctx.user} may not create a publication FOR ALL TABLES (superuser required): `
          + `list the tables in the job's filter, or have a superuser run CREATE PUBLICATION ${pub} FOR ALL TABLES`,
          { cause: err },
        );
      }
      if ((err as { code?: string }).code === '42710') return; // created concurrently
      throw err;
    }
    ctx.logger.info('created publication FOR ALL TABLES');
    return;
  }
  const tables = filter.schemas.flatMap((s) => (s.tables?.length ? s.tables.map((t) => quoteTable(s.schema, t)) : []));
  const schemas = filter.schemas.filter((s) => !s.tables?.length).map((s) => s.schema);
  const parts: string[] = [];
  if (tables.length) parts.push(`TABLE ${tables.join(', ')}`);
  if (schemas.length) parts.push(`TABLES IN SCHEMA ${schemas.map(quoteIdent).join(', ')}`);
  try {
    await ctx.pool.query(`CREATE PUBLICATION ${pub} FOR ${parts.join(', ')} ${VIA_ROOT}`);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '42710') return;
    // TABLES IN SCHEMA needs PG15 and superuser: fall back to the schemas' tables as they are now.
    if (schemas.length && (code === '42501' || code === '42601')) {
      const res = await ctx.pool.query<{ schema: string; table: string }>(
        `SELECT n.nspname::text AS schema, c.relname::text AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY($1::text[])`,
        [schemas],
      );
      const all = [...tables, ...res.rows.map((r) => quoteTable(r.schema, r.table))];
      if (all.length === 0) throw new FatalError(`no tables to publish in schemas ${schemas.join(', ')}`, { cause: err });
      await ctx.pool.query(`CREATE PUBLICATION ${pub} FOR TABLE ${all.join(', ')} ${VIA_ROOT}`);
      ctx.logger.warn({ schemas }, 'TABLES IN SCHEMA not allowed: published the current tables only; tables created later are not captured');
      return;
    }
    if (code === '42P01') throw new FatalError(`cannot publish: ${(err as Error).message}`, { cause: err });
    throw err;
  }
  ctx.logger.info({ tables, schemas }, 'created publication');
}

/**
 * A job whose tables were changed (addTables, removeTables, updateJob): the
 * tables its filter names one by one are added to the publication, and
 * tables published one by one that the filter no longer takes are dropped
 * from it. Whole-schema and FOR ALL TABLES publications are left as they are.
 */
export async function syncPublicationTables(ctx: PublicationContext): Promise<void> {
  const filter = ctx.tables;
  if (filter.schemas.length === 0) return;
  const pub = quoteIdent(ctx.publicationName);
  const all = await ctx.pool.query<{ puballtables: boolean }>('SELECT puballtables FROM pg_publication WHERE pubname = $1', [ctx.publicationName]);
  if (all.rows[0]?.puballtables) return;
  const res = await ctx.pool.query<{ schema: string; table: string }>(
    `SELECT schemaname::text AS schema, tablename::text AS table FROM pg_publication_tables WHERE pubname = $1`, [ctx.publicationName]);
  const published = new Set(res.rows.map((r) => `${r.schema}.${r.table}`));
  const wanted = filter.schemas.flatMap((s) => (s.tables?.length ? s.tables.map((t) => ({ schema: s.schema, table: t })) : []));
  const add = wanted.filter((t) => !published.has(`${t.schema}.${t.table}`));
  const wholeSchemas = new Set(filter.schemas.filter((s) => !s.tables?.length).map((s) => s.schema));
  const drop = res.rows.filter((r) => !wholeSchemas.has(r.schema) && !matchesFilter(filter, r.schema, r.table));
  if (add.length) {
    await ctx.pool.query(`ALTER PUBLICATION ${pub} ADD TABLE ${add.map((t) => quoteTable(t.schema, t.table)).join(', ')}`);
    ctx.logger.info({ tables: add }, 'tables added to the publication');
  }
  if (drop.length) {
    await ctx.pool.query(`ALTER PUBLICATION ${pub} DROP TABLE ${drop.map((t) => quoteTable(t.schema, t.table)).join(', ')}`);
    ctx.logger.info({ tables: drop }, 'tables dropped from the publication');
  }
}
