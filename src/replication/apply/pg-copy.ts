/**
 * COPY ... FROM STDIN (text format) for the PostgreSQL applier. Values are
 * the same ones `toPgParam` gives the parameterised path (checked and
 * converted there), written as the text PostgreSQL's input functions read
 * for a bind parameter, so both paths store the same values: bytea as \x
 * hex, text[] as an array literal, booleans as t/f.
 *
 * The COPY travels pipelined (copyIn): the simple query holding it, its
 * data as CopyData messages and CopyDone go out in one socket write, without
 * waiting for the server's CopyInResponse, and the query may hold statements
 * before and after the COPY (SAVEPOINT, TRUNCATE of a staging table, the
 * upsert from it). The protocol allows it: a backend drops CopyData, CopyDone
 * and CopyFail that arrive outside a COPY (one that failed, or never began).
 * Why (issue 12 profile): pg-copy-streams waited a round trip for
 * CopyInResponse, wrote every chunk as two socket writes, and each statement
 * around the COPY was a round trip of its own: a 1,000-row upsert took six
 * round trips and about ten writes, now one; and its text was built as
 * strings V8 must flatten and encode into fresh memory, now it is written
 * once into a reused buffer (byte-sink.ts).
 */
import pg from 'pg';
import { putByte, putText, reserve, SinkPool, type ByteSink } from '../byte-sink.ts';
import type { ColumnType, Row } from '../change-event.ts';
import { wireOf } from '../pg-wire-rows.ts';
import { putTupleLine, tupleFits } from './pg-wire-copy.ts';
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
 * Rows in COPY text form, a few hundred rows per string (snapshot chunks,
 * made before their transaction). Every value is converted before COPY
 * starts: an unmappable value then fails the load with its own message and
 * the connection never has a COPY to abort.
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

/** A CopyData message holds about this many bytes of rows at most. */
const FRAME_BYTES = 64 * 1024;
const COPY_DATA = 0x64; // 'd'
/** The CopyDone message ('c', length 4) that ends a COPY's data. */
export const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]);

/** Sinks the streaming apply writes its COPY data into (see putCopyRows). */
export const copySinks = new SinkPool(256 * 1024, 16 * 1024 * 1024, 4);

/** Rows written by putCopyRows, from their source's bytes (wire) and from their values: for tests and benches. */
export const copyRowStats = { wire: 0, values: 0 };

/**
 * `rows` as COPY text in CopyData messages, written into `sink` from its current length on (the same text copyText
 * makes). A value that cannot be converted throws before anything is sent.
 *
 * `wireSafe` (per site): the destination column takes the PostgreSQL source's text of its value as that value (see
 * pg-wire-copy.ts DestTypes.wireSafe). A row the capture read from pgoutput bytes it kept (pg-wire-rows.ts wireOf), whose
 * tuple has exactly the sites' columns in order, every one of them wire-safe, is then written from those bytes,
 * escaped for COPY: the server's own text of each value, as pg_dump would carry it, without making the value's text
 * again from its JavaScript value (issue 12: toPgParam, its conversions and the text they made were about a tenth
 * of the PG -> PG apply's process).
 */
export function putCopyRows(sink: ByteSink, rows: Row[], sites: ValueSite[], wireSafe?: boolean[]): void {
  let head = -1;
  // The relation columns of the last kept row, and whether its tuples fit the sites (asked once per relation).
  let wireCols: ColumnType[] | undefined;
  let wireFits = false;
  for (let r = 0; r < rows.length; r++) {
    if (head < 0) {
      reserve(sink, 5);
      head = sink.len;
      sink.buf[head] = COPY_DATA;
      sink.len += 5;
    }
    const row = rows[r]!;
    const w = wireSafe === undefined ? undefined : wireOf(row);
    if (w !== undefined) {
      const cols = w.ev!.columns;
      if (cols !== wireCols) { wireCols = cols; wireFits = tupleFits(cols, sites, wireSafe!); }
    }
    if (w !== undefined && wireFits && putTupleLine(sink, w.ab!, w.as, w.ae, sites.length)) {
      copyRowStats.wire++;
    } else {
      putValueLine(sink, row, sites);
      copyRowStats.values++;
    }
    if (sink.len - head >= FRAME_BYTES || r === rows.length - 1) {
      sink.buf.writeUInt32BE(sink.len - head - 1, head + 1);
      head = -1;
    }
  }
}

/** A row's COPY line from its values. */
function putValueLine(sink: ByteSink, row: Row, sites: ValueSite[]): void {
  for (let c = 0; c < sites.length; c++) {
    const s = sites[c]!;
    if (c > 0) putByte(sink, 0x09);
    const v = row[s.column.name];
    const kind = s.column.kind;
    if (kind === 'text' && typeof v === 'string' && v.length <= SHORT_FIELD && putShortText(sink, v)) continue;
    const p = toPgParam(v, s);
    if (typeof p === 'string') { if (p.length > SHORT_FIELD || !putShortText(sink, p)) putText(sink, escapeText(p)); }
    else if (typeof p === 'number' && kind === 'int') putInteger(sink, p);
    else putText(sink, copyField(p));
  }
  putByte(sink, 0x0a);
}

/** Text values up to this length are escaped and written in one pass (putShortText). */
const SHORT_FIELD = 64;

/**
 * A string's COPY field (copyField's escapeText), escaped and written in one pass, when it is ASCII without NUL:
 * false, with nothing written, otherwise (the caller takes the general path, which for a text column is toPgParam's
 * error for a NUL; a text column's ASCII string without NUL is what toPgParam returns unchanged, so that column
 * skips it). Why (issue 12, the COPY build's stage profile): the NUL check, the escape test and the copy were three
 * passes over each value, two of them regular expressions.
 */
function putShortText(sink: ByteSink, v: string): boolean {
  const n = v.length;
  reserve(sink, n * 2);
  const buf = sink.buf;
  let at = sink.len;
  for (let i = 0; i < n; i++) {
    const ch = v.charCodeAt(i);
    if (ch >= 0x80 || ch === 0) return false;
    if (ch === 0x5c || ch === 0x0a || ch === 0x0d || ch === 0x09) {
      buf[at++] = 0x5c;
      buf[at++] = ch === 0x5c ? 0x5c : ch === 0x0a ? 0x6e : ch === 0x0d ? 0x72 : 0x74;
    } else {
      buf[at++] = ch;
    }
  }
  sink.len = at;
  return true;
}

/** An integer (toPgParam's value of an int column) as its decimal digits, without making its text first. */
function putInteger(sink: ByteSink, n: number): void {
  if (!(n >= -2147483648 && n <= 2147483647 && Number.isInteger(n))) { putText(sink, String(n)); return; }
  reserve(sink, 11);
  const buf = sink.buf;
  let at = sink.len;
  let x = n;
  if (x < 0) { buf[at++] = 0x2d; x = -x; }
  let digits = 1;
  for (let t = x; t >= 10; t = (t / 10) | 0) digits++;
  for (let i = at + digits - 1; i >= at; i--) { const q = (x / 10) | 0; buf[i] = 48 + x - q * 10; x = q; }
  sink.len = at + digits;
}

/** Prepared COPY text (copyText's strings, or a source's bytes) as CopyData messages. */
export function copyFrames(text: CopyChunk[]): Buffer[] {
  const out: Buffer[] = [];
  for (const chunk of text) {
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (data.length === 0) continue;
    const head = Buffer.allocUnsafe(5);
    head[0] = COPY_DATA;
    head.writeUInt32BE(data.length + 4, 1);
    out.push(head, data);
  }
  return out;
}

/** The COPY statement of `columns` into `target` (a table reference or an already quoted name). */
export function copySql(target: TableRef | string, columns: ColumnType[]): string {
  return `COPY ${typeof target === 'string' ? target : qt(target)} (${columns.map((c) => qi(c.name)).join(', ')}) FROM STDIN`;
}

/**
 * The data of several COPYs written one after another into `sink` (putCopyRows), each ending where `ends` says:
 * each COPY's messages followed by its CopyDone.
 */
export function copyParts(sink: ByteSink, ends: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const end of ends) { out.push(sink.buf.subarray(at, end), COPY_DONE); at = end; }
  return out;
}

/**
 * Runs `sql`, a simple query holding COPY ... FROM STDIN statements among others, with `messages` as the COPYs' data:
 * each COPY's CopyData messages and its CopyDone, in the order of the COPYs. Inside the caller's transaction.
 * Resolves once the server answered and the socket took every byte (until then `messages` must not change); rejects
 * with the server's error (the rest of the query is skipped, the data dropped by the server).
 */
export function copyIn(client: pg.PoolClient, sql: string, messages: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    client.query(new PipelinedCopy(sql, messages, (err) => (err ? reject(err) : resolve())));
  });
}

/** COPY `text` into `target` on `client` (copyIn). */
export async function copyRows(client: pg.PoolClient, target: TableRef | string, columns: ColumnType[], text: CopyChunk[]): Promise<void> {
  const frames = copyFrames(text);
  if (frames.length) await copyIn(client, copySql(target, columns), [...frames, COPY_DONE]);
}

/** A simple query message: 'Q', length, the text, NUL. */
function queryMessage(sql: string): Buffer {
  const n = Buffer.byteLength(sql, 'utf8');
  const msg = Buffer.allocUnsafe(n + 6);
  msg[0] = 0x51; // 'Q'
  msg.writeUInt32BE(n + 5, 1);
  msg.write(sql, 5, 'utf8');
  msg[n + 5] = 0;
  return msg;
}

/**
 * pg's Submittable for copyIn: the client routes the active query's protocol messages to these handlers. On an error
 * the client forgets the query (no handleReadyForQuery follows) and sends the next one only after ReadyForQuery.
 */
class PipelinedCopy implements pg.Submittable {
  private error: Error | undefined;
  private answered = false;
  private flushed = false;
  private settled = false;

  constructor(private readonly sql: string, private readonly messages: Buffer[], private readonly done: (err?: Error) => void) {}

  submit(connection: pg.Connection): Error | void {
    const stream = connection.stream;
    if (!stream.writable) {
      this.flushed = true;
      return new Error('the destination connection is closed');
    }
    stream.cork();
    stream.write(queryMessage(this.sql));
    const last = this.messages.length - 1;
    for (let i = 0; i < last; i++) stream.write(this.messages[i]!);
    stream.write(this.messages[last] ?? Buffer.alloc(0), (err) => {
      this.flushed = true;
      if (err && !this.error) this.error = err;
      this.finish();
    });
    stream.uncork();
  }

  handleCopyInResponse(): void { /* the data went with the query */ }
  handleCommandComplete(): void { /* nothing to keep */ }
  handleRowDescription(): void { /* no statement here returns rows */ }
  handleDataRow(): void { /* idem */ }
  handleEmptyQuery(): void { /* idem */ }
  handlePortalSuspended(): void { /* simple queries have no portals to suspend */ }
  handleCopyData(): void { /* no COPY TO here */ }

  handleReadyForQuery(): void {
    this.answered = true;
    this.finish();
  }

  handleError(err: Error): void {
    if (!this.error) this.error = err;
    this.answered = true;
    // The server's answer (ErrorResponse) leaves the socket writing; any other error is the socket's end, whose
    // writes end with an error or not at all.
    if (!(err instanceof pg.DatabaseError)) this.flushed = true;
    this.finish();
  }

  private finish(): void {
    if (this.settled || !this.answered || !this.flushed) return;
    this.settled = true;
    this.done(this.error);
  }
}
