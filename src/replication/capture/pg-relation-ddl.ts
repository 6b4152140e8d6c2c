/**
 * A PostgreSQL table's column changes, as pgoutput shows them (a Relation
 * message with the table's new shape), turned into the clauses of one ALTER
 * TABLE: the capture's schema-change events (pg-transaction-assembler.ts).
 */
import type { ColumnType } from '../change-event.ts';
import { quoteIdent } from './pg-connection.ts';

/** The table's shape as last known: source type by column name, and attribute numbers where the catalog gave them. */
export interface KnownShape { types: Map<string, string>; attnums?: Map<string, number> }

/** The shape the relation message shows, with the catalog's attribute numbers and fill clauses of added columns. */
export interface NextShape { columns: ColumnType[]; attnums: Map<string, number>; filled: Map<string, string> }

/**
 * The column clauses of the one ALTER TABLE that turns `known` into `next`.
 *
 * Columns are matched by attribute number where the catalog knew it on both
 * sides: PostgreSQL keeps a column's number through RENAME and ALTER TYPE and
 * gives an added column a new one, so a rename, a type change (or both at
 * once) and a drop plus an add are told apart exactly. Where a number is
 * unknown (the catalog read at decode time no longer has that name), a column
 * gone and a new one at the same position with the same type is taken as a
 * rename; with another type the statement says it cannot tell, and the
 * applier refuses it (the job fails quoting it) rather than guess.
 *
 * A column added with a value for the rows it already has (a DEFAULT, an
 * identity, a generated expression) carries that clause: PostgreSQL logs no
 * row change for the fill, so the applier refuses it too, instead of leaving
 * NULLs at the destination.
 */
export function columnClauses(known: KnownShape, next: NextShape): string[] {
  const nextNames = new Set(next.columns.map((c) => c.name));
  const knownNames = [...known.types.keys()];
  const gone = knownNames.filter((n) => !nextNames.has(n));
  const added = next.columns.filter((c) => !known.types.has(c.name));
  const renamedFrom = new Map<string, string>();
  const unsure: string[] = [];
  const byAttnum = new Map<number, string>();
  for (const c of added) { const n = next.attnums.get(c.name); if (n !== undefined) byAttnum.set(n, c.name); }
  for (const name of gone) {
    const n = known.attnums?.get(name);
    const to = n === undefined ? undefined : byAttnum.get(n);
    if (to !== undefined) { renamedFrom.set(to, name); byAttnum.delete(n!); }
  }
  // A gone column whose number the catalog no longer had (renamed again before it was read) still lies between
  // its neighbours' numbers; a column added since has a number above every one then in use. So a new name whose
  // number falls below a later neighbour's is that old column, renamed (matched in order where several are).
  const numbers = knownNames.map((n) => known.attnums?.get(n));
  const runs = new Map<string, { names: string[]; lower: number; upper: number }>();
  knownNames.forEach((name, i) => {
    if (numbers[i] !== undefined || nextNames.has(name)) return;
    const lower = Math.max(0, ...numbers.slice(0, i).filter((x): x is number => x !== undefined));
    const upper = numbers.slice(i + 1).find((x): x is number => x !== undefined);
    if (upper === undefined) return;
    const run = runs.get(`${lower}:${upper}`) ?? { names: [], lower, upper };
    run.names.push(name);
    runs.set(`${lower}:${upper}`, run);
  });
  for (const run of runs.values()) {
    const inside = [...byAttnum.keys()].filter((a) => a > run.lower && a < run.upper).sort((a, b) => a - b);
    if (inside.length !== run.names.length) continue;
    inside.forEach((a, k) => { renamedFrom.set(byAttnum.get(a)!, run.names[k]!); byAttnum.delete(a); });
  }
  const matched = new Set(renamedFrom.values());
  gone.forEach((name) => {
    if (matched.has(name)) return;
    const i = knownNames.indexOf(name);
    const now = next.columns[i];
    if (!now || known.types.has(now.name) || renamedFrom.has(now.name)) return;
    // Both numbers known and different: a drop and an add, exactly.
    if (known.attnums?.get(name) !== undefined && next.attnums.get(now.name) !== undefined) return;
    if (known.types.get(name) === now.sourceType) renamedFrom.set(now.name, name);
    else unsure.push(`REPLACE COLUMN ${quoteIdent(name)} ${known.types.get(name)} WITH ${quoteIdent(now.name)} ${now.sourceType} (a rename with a type change, or a drop and an add: cannot tell which)`);
  });
  if (unsure.length) return unsure;
  // Every column change of one relation message goes out as ONE statement: the event's columns are the shape
  // after all of them, so an applier that took them one statement at a time would add a column that a later
  // rename in the same message still has to create from its old name (and lose that column's values).
  const clauses: string[] = [];
  for (const [to, from] of renamedFrom) clauses.push(`RENAME COLUMN ${quoteIdent(from)} TO ${quoteIdent(to)}`);
  const renamed = new Set(renamedFrom.values());
  for (const name of gone) if (!renamed.has(name)) clauses.push(`DROP COLUMN ${quoteIdent(name)}`);
  for (const c of next.columns) {
    const from = renamedFrom.get(c.name);
    const was = known.types.get(from ?? c.name);
    if (was === undefined) {
      const fill = next.filled.get(c.name);
      clauses.push(`ADD COLUMN ${quoteIdent(c.name)} ${c.sourceType}${fill ? ` ${fill}` : ''}`);
    } else if (was !== c.sourceType) clauses.push(`ALTER COLUMN ${quoteIdent(c.name)} TYPE ${c.sourceType}`);
  }
  return clauses;
}
