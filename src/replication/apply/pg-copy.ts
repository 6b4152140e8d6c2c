/**
 * COPY ... FROM STDIN (text format) for the PostgreSQL applier's snapshot
 * loads. Values are the same ones `toPgParam` gives the parameterised path
 * (checked and converted there), written as the text PostgreSQL's input
 * functions read for a bind parameter, so both paths store the same values:
 * bytea as \x hex, text[] as an array literal, booleans as t/f.
 */
import type pg from 'pg';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import type { ColumnType, Row } from '../change-event.ts';
import type { TableRef } from './batch-plan.ts';
import { arrayLiteral, qi, qt } from './pg-sql.ts';
import { toPgParam, type ValueSite } from './value-params.ts';

const SPECIAL = /[\\\n\r\t]/;
const SPECIAL_G = /[\\\n\r\t]/g;
const ESC: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeText(s: string): string {
  return SPECIAL.test(s) ? s.replace(SPECIAL_G, (ch) => ESC[ch]!) : s;
}

/** One parameter value (as toPgParam returns it) in COPY text form. */
export function copyField(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  switch (typeof v) {
    case 'string': return escapeText(v);
    case 'number': case 'bigint': return String(v);
    case 'boolean': return v ? 't' : 'f';
    default:
      if (Buffer.isBuffer(v)) return `\\\\x${v.toString('hex')}`;
      if (Array.isArray(v)) return escapeText(arrayLiteral(v));
      return escapeText(String(v));
  }
}

/**
 * Rows in COPY text form, a few hundred rows per string. Every value is
 * converted before COPY starts: an unmappable value then fails the load with
 * its own message and the connection never has a COPY to abort.
 */
export function copyText(rows: Row[], sites: ValueSite[]): string[] {
  const parts: string[] = [];
  const per = 500;
  for (let i = 0; i < rows.length; i += per) {
    let out = '';
    const end = Math.min(rows.length, i + per);
    for (let r = i; r < end; r++) {
      const row = rows[r]!;
      for (let c = 0; c < sites.length; c++) {
        const s = sites[c]!;
        if (c > 0) out += '\t';
        out += copyField(toPgParam(row[s.column.name], s));
      }
      out += '\n';
    }
    parts.push(out);
  }
  return parts;
}

/** COPY text in pieces: strings made here, or bytes a source made (snapshot-reader.ts readChunkCopyText). */
export type CopyChunk = string | Buffer;

/** COPY `rows` into `target` (a table reference or an already quoted name) on `client`, inside the caller's transaction. */
export async function copyRows(client: pg.PoolClient, target: TableRef | string, columns: ColumnType[], text: CopyChunk[]): Promise<void> {
  if (text.length === 0) return;
  const name = typeof target === 'string' ? target : qt(target);
  const stream = client.query(copyFrom(`COPY ${name} (${columns.map((c) => qi(c.name)).join(', ')}) FROM STDIN`));
  await pipeline(Readable.from(text, { objectMode: false }), stream);
}
