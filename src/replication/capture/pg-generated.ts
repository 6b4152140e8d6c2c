/**
 * Values of generated columns for row images of the PostgreSQL capture.
 *
 * pgoutput leaves generated columns out of Relation messages and tuples
 * (always before PostgreSQL 18; on 18 unless the publication sets
 * publish_generated_columns = stored). Their values are a function of the
 * other columns of the same row: a generation expression may read only those
 * and only immutable functions. So the capture evaluates the expression on
 * the source server over the row image it received, batched per transaction
 * piece; the result is what the source stored, without reading the table
 * again (a read by key could see a later version of the row, and a keyless
 * row has no key). docs/types.md K2.
 *
 * An input the image lacks (an unchanged TOASTed value with no old image to
 * take it from) leaves the generated columns that read it out of the image:
 * "unknown", never NULL, as for the TOASTed value itself.
 */
import type { ColumnType, Row } from '../change-event.ts';
import type { Pgoutput } from 'pg-logical-replication';
import { typeInfoFor, type GeneratedColumn, type Queryable, type RelationAttributes } from './pg-catalog.ts';
import { quoteIdent, RAW_TEXT_TYPES } from './pg-connection.ts';
import { pgTextToValue, type PgTypeInfo } from './pg-values.ts';

/** How to compute a relation's missing generated columns. */
export interface GeneratedPlan {
  /** The generated columns absent from the wire, with their ColumnType. */
  columns: { def: GeneratedColumn; column: ColumnType; type: string }[];
  /** The columns the wire carries (`wire`: their name there), named as the expression reads them, with the type to cast their text to. */
  inputs: { name: string; wire: string; type: string }[];
}

/** A row image waiting for its generated values. */
export interface PendingGenerated {
  plan: GeneratedPlan;
  /** Raw wire tuples (text or null; undefined = not sent). */
  after: Record<string, unknown>;
  before: Record<string, unknown> | null;
  /** The event's `after` row, completed in place. */
  row: Row;
}

const ORD = '?tributary ord';
/** Bind parameters per statement, under PostgreSQL's 65535. */
const MAX_PARAMS = 60_000;
const MAX_ROWS = 500;

/** Completes every pending row's generated columns (in place), a few statements per plan. */
export async function fillGenerated(q: Queryable, pending: PendingGenerated[]): Promise<void> {
  const byPlan = new Map<GeneratedPlan, PendingGenerated[]>();
  for (const p of pending) {
    const list = byPlan.get(p.plan);
    if (list) list.push(p); else byPlan.set(p.plan, [p]);
  }
  for (const [plan, rows] of byPlan) {
    if (plan.columns.length === 0) continue;
    const per = Math.max(1, Math.min(MAX_ROWS, Math.floor(MAX_PARAMS / Math.max(1, plan.inputs.length))));
    for (let i = 0; i < rows.length; i += per) await evaluate(q, plan, rows.slice(i, i + per));
  }
}

async function evaluate(q: Queryable, plan: GeneratedPlan, rows: PendingGenerated[]): Promise<void> {
  const params: unknown[] = [];
  const unknown: Set<string>[] = [];
  const tuples = rows.map((p, i) => {
    const missing = new Set<string>();
    const vals = [String(i)];
    for (const inp of plan.inputs) {
      let v = p.after[inp.wire];
      // Unchanged TOAST: the old image (REPLICA IDENTITY FULL) holds the same value.
      if (v === undefined && p.before) v = p.before[inp.wire];
      if (v === undefined) missing.add(inp.name);
      params.push(v ?? null);
      vals.push(`$${params.length}::${inp.type}`);
    }
    unknown.push(missing);
    return `(${vals.join(', ')})`;
  });
  const exprs = plan.columns.map((g) => `((${g.def.expr})::${g.type})`);
  const names = [ORD, ...plan.inputs.map((c) => c.name)].map(quoteIdent).join(', ');
  const res = await q.query<unknown[]>({
    text: `SELECT ${quoteIdent(ORD)}, ${exprs.join(', ')} FROM (VALUES ${tuples.join(', ')}) AS t(${names}) ORDER BY 1`,
    values: params,
    rowMode: 'array',
    types: RAW_TEXT_TYPES,
  });
  for (const r of res.rows) {
    const i = Number(r[0]);
    const p = rows[i]!;
    plan.columns.forEach((g, k) => {
      if (g.def.refs.some((ref) => unknown[i]!.has(ref))) return;
      p.row[g.column.name] = pgTextToValue(r[k + 1] as string | null, g.column);
    });
  }
}

/**
 * How to compute the generated columns from a row of this relation message.
 * The catalog is read now: a column renamed since the message has its new
 * name there (and in the expression), so when the wire names are not all
 * known, wire columns are matched to the catalog's plain columns by position,
 * as a rename keeps it. A generated column whose inputs cannot be matched
 * (the relation also lost or gained a column since) is left out of the
 * images: unknown, never a wrong value.
 */
export function generatedPlan(msg: Pgoutput.MessageRelation, attrs: RelationAttributes, genCols: GeneratedPlan['columns'], infos: Map<string, PgTypeInfo>): GeneratedPlan {
  const generatedNames = new Set(attrs.generated.map((g) => g.name));
  const plainNow = [...attrs.attnums.keys()].filter((n) => !generatedNames.has(n));
  const known = msg.columns.every((c) => attrs.attnums.has(c.name));
  const byPosition = !known && plainNow.length === msg.columns.length;
  const inputs = msg.columns.map((c, i) => ({
    name: known ? c.name : byPosition ? plainNow[i]! : `?unmatched ${c.name}`,
    wire: c.name,
    type: typeInfoFor(infos, c.typeOid, c.typeMod).formatted,
  }));
  const names = new Set(inputs.map((c) => c.name));
  return { columns: genCols.filter((g) => g.def.refs.every((r) => names.has(r))), inputs };
}
