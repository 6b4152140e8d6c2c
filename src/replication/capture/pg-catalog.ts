/**
 * Catalog look-ups shared by the pgoutput capture and the snapshot reader, so
 * both describe a table with the same ColumnType[] and key.
 */
import type pg from 'pg';
import type { ColumnType } from '../change-event.ts';
import { pgColumnType, type PgTypeInfo } from './pg-values.ts';

export type Queryable = pg.ClientBase | pg.Pool;

interface TypeRow {
  oid: string | number;
  typmod: string | number;
  formatted: string;
  typtype: string;
  basename: string;
  basetypmod: string | number;
  category: string;
  labels: string[] | null;
  portable: string;
}

const typeKey = (oid: number, typmod: number): string => `${oid}:${typmod}`;

/**
 * Type facts for (oid, typmod) pairs, one round trip. A domain is resolved to
 * its base type (one level), so a domain over int4 maps like int4.
 */
export async function loadTypeInfos(q: Queryable, pairs: { oid: number; typmod: number }[]): Promise<Map<string, PgTypeInfo>> {
  const out = new Map<string, PgTypeInfo>();
  if (pairs.length === 0) return out;
  const res = await q.query<TypeRow>(
    `SELECT p.oid::int8 AS oid, p.typmod, format_type(p.oid, NULLIF(p.typmod, -1)) AS formatted,
            COALESCE(b.typtype, t.typtype)::text AS typtype,
            COALESCE(b.typname, t.typname)::text AS basename,
            CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE p.typmod END AS basetypmod,
            t.typcategory::text AS category,
            (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e
              WHERE e.enumtypid = COALESCE(b.oid, t.oid)) AS labels,
            -- A type every PostgreSQL destination has, with the same text form: user-defined
            -- domains, composites and arrays of them are the source database's own.
            CASE
              WHEN t.typtype = 'c' THEN 'text'
              WHEN t.typtype = 'd' AND b.typtype = 'c' THEN 'text'
              WHEN t.typtype = 'd' AND b.typcategory = 'A' AND be.typtype IN ('c', 'd') THEN 'text'
              WHEN t.typtype = 'd' AND b.typcategory = 'A' AND be.typtype = 'e' THEN 'text[]'
              WHEN t.typtype = 'd' THEN format_type(t.typbasetype, NULLIF(t.typtypmod, -1))
              WHEN t.typcategory = 'A' AND te.typtype IN ('c', 'd') THEN 'text'
              WHEN t.typcategory = 'A' AND te.typtype = 'e' THEN 'text[]'
              ELSE format_type(p.oid, NULLIF(p.typmod, -1))
            END AS portable
       FROM unnest($1::oid[], $2::int4[]) AS p(oid, typmod)
       JOIN pg_type t ON t.oid = p.oid
       LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
       LEFT JOIN pg_type te ON te.oid = t.typelem AND t.typcategory = 'A'
       LEFT JOIN pg_type be ON be.oid = b.typelem AND b.typcategory = 'A'`,
    [pairs.map((p) => p.oid), pairs.map((p) => p.typmod)],
  );
  for (const r of res.rows) {
    const info: PgTypeInfo = {
      oid: Number(r.oid),
      typmod: Number(r.typmod),
      formatted: r.formatted,
      typtype: r.typtype,
      baseName: r.basename,
      baseTypmod: Number(r.basetypmod),
      category: r.category,
      enumLabels: r.labels,
      portable: r.portable,
    };
    out.set(typeKey(info.oid, info.typmod), info);
  }
  return out;
}

export function typeInfoFor(infos: Map<string, PgTypeInfo>, oid: number, typmod: number): PgTypeInfo {
  return infos.get(typeKey(oid, typmod)) ?? {
    // A type dropped since the change was written: keep the value as text.
    oid, typmod, formatted: `oid ${oid}`, typtype: 'b', baseName: 'unknown', baseTypmod: typmod, category: 'X', enumLabels: null,
  };
}

interface AttrRow { attname: string; atttypid: string | number; atttypmod: string | number; attnotnull: boolean }

/** Live columns of a relation, in attribute order, as ColumnType[]. */
export async function loadTableColumns(q: Queryable, relOid: number): Promise<ColumnType[]> {
  const attrs = await q.query<AttrRow>(
    `SELECT attname::text, atttypid::int8 AS atttypid, atttypmod, attnotnull FROM pg_attribute
      WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [relOid],
  );
  const pairs = attrs.rows.map((a) => ({ oid: Number(a.atttypid), typmod: Number(a.atttypmod) }));
  const infos = await loadTypeInfos(q, pairs);
  return attrs.rows.map((a, i) => pgColumnType(a.attname, typeInfoFor(infos, pairs[i]!.oid, pairs[i]!.typmod), !a.attnotnull));
}

/** A generated column: PostgreSQL computes it from `refs` (other columns of the same row) with `expr`. */
export interface GeneratedColumn {
  name: string;
  attnum: number;
  /** The generation expression as pg_get_expr prints it for this session. */
  expr: string;
  /** Columns the expression reads (pg_depend of the column's default, less its own internal entry). */
  refs: string[];
  oid: number;
  typmod: number;
  notNull: boolean;
}

/** Attribute numbers of a relation's live columns, and its generated columns (none before PostgreSQL 12). */
export interface RelationAttributes {
  attnums: Map<string, number>;
  generated: GeneratedColumn[];
  /**
   * Columns whose existing rows PostgreSQL fills without logging a row change when the column is
   * added (a DEFAULT, an identity, a generated expression): name -> the clause, as the catalog shows it now.
   */
  filled: Map<string, string>;
}

interface GeneratedRow {
  name: string; attnum: number; expr: string | null; refs: string[] | null; typid: string | number; typmod: string | number; attnotnull: boolean;
  def: string | null; identity: string;
}

export async function loadRelationAttributes(q: Queryable, relOid: number): Promise<RelationAttributes> {
  let rows: GeneratedRow[];
  try {
    rows = (await q.query<GeneratedRow>(
      `SELECT a.attname::text AS name, a.attnum::int AS attnum, a.atttypid::int8 AS typid, a.atttypmod AS typmod, a.attnotnull,
              pg_get_expr(d.adbin, d.adrelid) AS def, a.attidentity::text AS identity,
              CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END AS expr,
              CASE WHEN a.attgenerated <> '' THEN ARRAY(
                SELECT r.attname::text FROM pg_depend dp JOIN pg_attribute r ON r.attrelid = dp.refobjid AND r.attnum = dp.refobjsubid
                 WHERE dp.classid = 'pg_attrdef'::regclass AND dp.objid = d.oid AND dp.refclassid = 'pg_class'::regclass
                   AND dp.refobjid = a.attrelid AND dp.refobjsubid > 0 AND dp.refobjsubid <> a.attnum) END AS refs
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [relOid],
    )).rows;
  } catch (err) {
    // PostgreSQL 10 and 11 have no attgenerated, and no generated columns.
    if ((err as { code?: string }).code !== '42703') throw err;
    return { attnums: new Map(), generated: [], filled: new Map() };
  }
  const filled = new Map<string, string>();
  for (const r of rows) {
    if (r.expr !== null) filled.set(r.name, `GENERATED ALWAYS AS (${r.expr}) STORED`);
    else if (r.identity === 'a' || r.identity === 'd') filled.set(r.name, `GENERATED ${r.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY`);
    else if (r.def !== null && !/^NULL(::[\w\s."]+)?$/i.test(r.def)) filled.set(r.name, `DEFAULT ${r.def}`);
  }
  return {
    filled,
    attnums: new Map(rows.map((r) => [r.name, r.attnum])),
    generated: rows.filter((r) => r.expr !== null).map((r) => ({
      name: r.name, attnum: r.attnum, expr: r.expr!, refs: r.refs ?? [], oid: Number(r.typid), typmod: Number(r.typmod), notNull: r.attnotnull,
    })),
  };
}

/** NOT NULL flags by column name, for columns described by a Relation message. */
export async function loadNotNull(q: Queryable, relOid: number): Promise<Map<string, boolean>> {
  const res = await q.query<{ attname: string; attnotnull: boolean }>(
    `SELECT attname::text, attnotnull FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`,
    [relOid],
  );
  return new Map(res.rows.map((r) => [r.attname, r.attnotnull]));
}

/**
 * The table's key: its primary key, else the first valid, non-partial unique
 * index over plain NOT NULL columns; [] when it has neither.
 */
export async function loadKey(q: Queryable, relOid: number): Promise<string[]> {
  const res = await q.query<{ primary: boolean; cols: string[]; notnull: boolean; plain: boolean }>(
    `SELECT i.indisprimary AS primary,
            array_agg(a.attname::text ORDER BY k.ord) AS cols,
            bool_and(COALESCE(a.attnotnull, false)) AS notnull,
            bool_and(k.attnum > 0) AS plain
       FROM pg_index i
       CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
       LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
        AND k.ord <= i.indnkeyatts
      GROUP BY i.indexrelid, i.indisprimary
      ORDER BY i.indisprimary DESC, i.indexrelid`,
    [relOid],
  );
  const pick = res.rows.find((r) => r.primary) ?? res.rows.find((r) => r.notnull && r.plain);
  return pick ? pick.cols : [];
}

/** OID of schema.table, or undefined. */
export async function relationOid(q: Queryable, schema: string, table: string): Promise<number | undefined> {
  const res = await q.query<{ oid: string }>(
    `SELECT c.oid::int8 AS oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, table],
  );
  return res.rows[0] ? Number(res.rows[0].oid) : undefined;
}
