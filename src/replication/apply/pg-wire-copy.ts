/**
 * PostgreSQL -> PostgreSQL rows written into COPY from the pgoutput bytes the
 * capture kept for them (pg-wire-rows.ts), for pg-copy.ts putCopyRows.
 *
 * Why (issue 12 profile of the PG -> PG apply bench): each value was turned
 * from the server's text into a JavaScript value by the capture, and back
 * into text by toPgParam and the COPY writer, about a tenth of the process's
 * CPU on that path. A destination column of the source column's very type
 * reads the source's text of a value as that value (each type's output and
 * input functions, pg_dump's round trip), so a row still as the capture read
 * it goes as those bytes, escaped for COPY.
 */
import type { ColumnType, Row } from '../change-event.ts';
import { reserve, type ByteSink } from '../byte-sink.ts';
import { wireOf } from '../pg-wire-rows.ts';
import type { TableRef } from './batch-plan.ts';
import { qt } from './pg-sql.ts';
import type { ValueSite } from './value-params.ts';

/** The part of a pg client DestTypes uses. */
interface Queryable { query<R>(sql: string, params: unknown[]): Promise<{ rows: R[] }> }

/** How long DestTypes.wireSafe trusts the destination's column types it read (a change made there by hand is seen after this). */
const DEST_TYPES_TTL_MS = 30_000;

/** $1 a quoted table name: its live columns and their types as format_type prints them (the capture's sourceType). */
const DEST_TYPES_SQL = `SELECT a.attname::text AS n, format_type(a.atttypid, NULLIF(a.atttypmod, -1)) AS t
  FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`;

/** Destination tables' column types (PgApplier): which columns take a PostgreSQL source's text of a value as that value. */
export class DestTypes {
  /** Per destination table (quoted name): its columns' types as format_type prints them, and when read. */
  private readonly known = new Map<string, { at: number; types: Map<string, string> }>();

  /**
   * For putCopyRows: which of `columns` take a PostgreSQL source's text of a value as that very value, so that rows
   * the capture read from bytes it kept are written from them: the destination column has the source
   * column's type exactly as format_type prints it on both sides (the text then goes through the type's own output
   * and input functions, pg_dump's round trip, under the capture's pinned DateStyle, IntervalStyle and
   * extra_float_digits), no type of the destination's own (pgType), and not money, whose text follows lc_monetary.
   * Undefined when the step's first row was not read so (a MariaDB source, a row a transform or merge made). The
   * destination's types are read once per table and again after DDL or DEST_TYPES_TTL_MS.
   */
  async wireSafe(c: Queryable, dest: TableRef, columns: ColumnType[], rows: Row[]): Promise<boolean[] | undefined> {
    if (rows.length === 0 || wireOf(rows[0]!) === undefined) return undefined;
    const name = qt(dest);
    let known = this.known.get(name);
    if (!known || Date.now() - known.at > DEST_TYPES_TTL_MS) {
      const r = await c.query<{ n: string; t: string }>(DEST_TYPES_SQL, [name]);
      known = { at: Date.now(), types: new Map(r.rows.map((x) => [x.n, x.t])) };
      this.known.set(name, known);
    }
    const types = known.types;
    return columns.map((col) => col.pgType === undefined && col.sourceType !== 'money' && types.get(col.name) === col.sourceType);
  }

  /** Forgets every table's types (after DDL). */
  clear(): void {
    this.known.clear();
  }
}

/** The tuple's columns are the sites' columns, in their order, each one wire-safe. */
export function tupleFits(cols: ColumnType[], sites: ValueSite[], wireSafe: boolean[]): boolean {
  if (cols.length !== sites.length) return false;
  for (let i = 0; i < cols.length; i++) if (cols[i]!.name !== sites[i]!.column.name || wireSafe[i] !== true) return false;
  return true;
}

/** COPY text's escape letter for each byte that needs one (backslash, newline, carriage return, tab), else 0. */
const ESCAPE = new Uint8Array(256);
ESCAPE[0x5c] = 0x5c; ESCAPE[0x0a] = 0x6e; ESCAPE[0x0d] = 0x72; ESCAPE[0x09] = 0x74;

/**
 * A COPY line from pgoutput TupleData src[start, end) of `n` text and null columns: false, with nothing written,
 * when the bytes are not that (the caller writes the row from its values). Text is escaped byte by byte: the four
 * bytes COPY reads as special are ASCII, and no byte of a multi-byte UTF-8 sequence is below 0x80. At most two
 * bytes out per byte in (a column's header of one or five bytes covers its tab, and a null's two), so the room is
 * reserved once.
 */
export function putTupleLine(sink: ByteSink, src: Buffer, start: number, end: number, n: number): boolean {
  if (end - start < 2 || ((src[start]! << 8) | src[start + 1]!) !== n) return false;
  reserve(sink, 2 * (end - start) + 2);
  const buf = sink.buf;
  let at = sink.len;
  let p = start + 2;
  for (let i = 0; i < n; i++) {
    if (p >= end) return false;
    const kind = src[p++]!;
    if (i > 0) buf[at++] = 0x09;
    if (kind === 0x6e) { // 'n': SQL NULL
      buf[at++] = 0x5c;
      buf[at++] = 0x4e;
      continue;
    }
    if (kind !== 0x74 || end - p < 4) return false; // text ('t') is the only other kind a kept tuple has
    const size = ((src[p]! << 24) | (src[p + 1]! << 16) | (src[p + 2]! << 8) | src[p + 3]!) >>> 0;
    p += 4;
    if (end - p < size) return false;
    for (const stop = p + size; p < stop; p++) {
      const b = src[p]!;
      const e = ESCAPE[b]!;
      if (e === 0) {
        buf[at++] = b;
      } else {
        buf[at++] = 0x5c;
        buf[at++] = e;
      }
    }
  }
  if (p !== end) return false;
  buf[at++] = 0x0a;
  sink.len = at;
  return true;
}
