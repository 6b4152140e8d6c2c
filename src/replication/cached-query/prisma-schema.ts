/**
 * The Prisma schema text old callers send with createCachedQuery, read with
 * @mrleebo/prisma-ast (pinned to 0.15: 0.16 needs chevrotain 12, which needs Node 22): models become tables (`@@map` renames), scalar fields
 * become columns (`@map` renames); relation fields (typed by another model)
 * have no column and are left out.
 */
// The package's CommonJS build require()s chevrotain, which is ESM-only: load its ES module build.
import { getSchema, type Model, type Field } from '@mrleebo/prisma-ast/dist/prisma-ast.esm.js';
import { QueryRefusedError, RefusalCode } from './query-errors.ts';

export interface SchemaTable {
  /** Prisma model name. */
  model: string;
  /** Table name in the database. */
  table: string;
  /** Column names in the database. */
  columns: Set<string>;
}

/** Tables by lower-cased table name. */
export type SchemaTables = Map<string, SchemaTable>;

function attrString(attrs: { name: string; args?: { value: unknown }[] }[] | undefined, name: string): string | undefined {
  const a = attrs?.find((x) => x.name === name);
  const v = a?.args?.[0]?.value as unknown;
  // A positional string argument is quoted text; a named one (`map: "x"`) is a key/value pair.
  const text = typeof v === 'string' ? v : (v as { type?: string; value?: unknown } | undefined)?.type === 'keyValue' ? (v as { value: unknown }).value : undefined;
  return typeof text === 'string' ? text.replace(/^"|"$/g, '') : undefined;
}

export function parsePrismaSchema(text: string): SchemaTables {
  let schema;
  try {
    schema = getSchema(text);
  } catch (err) {
    const tok = (err as { token?: { startLine?: number; startColumn?: number } }).token;
    const where = tok?.startLine ? ` at line ${tok.startLine}, column ${tok.startColumn}` : '';
    throw new QueryRefusedError(RefusalCode.BadSchema, `schema is not a valid Prisma schema${where}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const models = schema.list.filter((b): b is Model => b.type === 'model');
  if (models.length === 0) throw new QueryRefusedError(RefusalCode.BadSchema, 'schema declares no model: send the Prisma schema of the connected database');
  const modelNames = new Set(models.map((m) => m.name));
  const out: SchemaTables = new Map();
  for (const m of models) {
    const blockAttrs = m.properties.filter((p) => p.type === 'attribute' && (p as { kind?: string }).kind === 'object') as unknown as { name: string; args?: { value: unknown }[] }[];
    const table = attrString(blockAttrs, 'map') ?? m.name;
    const columns = new Set<string>();
    for (const p of m.properties) {
      if (p.type !== 'field') continue;
      const f = p as Field;
      const type = typeof f.fieldType === 'string' ? f.fieldType : String((f.fieldType as { name?: string }).name ?? '');
      const attrs = (f.attributes ?? []) as unknown as { name: string; args?: { value: unknown }[] }[];
      if (modelNames.has(type) || attrs.some((a) => a.name === 'relation')) continue;
      columns.add(attrString(attrs, 'map') ?? f.name);
    }
    out.set(table.toLowerCase(), { model: m.name, table, columns });
  }
  return out;
}
