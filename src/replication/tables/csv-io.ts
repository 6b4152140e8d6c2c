/**
 * CSV files in and out of tables (csv-parse / csv-stringify).
 *
 * A load reads the file twice: `scanCsv` checks its shape (every record as
 * wide as the first: a ragged one is an error naming its line), the key
 * (first column, FATE's table key: present and unique) and infers column
 * types, before anything is written; `csvBatches` then streams the rows.
 * Types: a column whose every non-empty value is an integer without leading
 * zeros (up to 18 digits) is an integer column, anything else is text, so
 * what is downloaded again is what was uploaded.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify';
import type { ColumnType, Row, Value } from '../change-event.ts';

/** The file cannot be loaded as it is: the message names the line. */
export class CsvDataError extends Error {
  override readonly name = 'CsvDataError';
  constructor(message: string, readonly line?: number) { super(message); }
}

export interface CsvReadOptions {
  /** Field delimiter. Default ",". */
  delimiter?: string;
  /** First line is the header (FATE `head`). Default true. */
  head?: boolean;
}

export interface CsvScan {
  header: string[];
  columns: ColumnType[];
  /** Key columns: the first column. */
  key: string[];
  rows: number;
}

const INT_RE = /^-?(0|[1-9]\d{0,17})$/;
const NAME_RE = /^[^\u0000]{1,63}$/;

function parser(path: string, o: CsvReadOptions) {
  return createReadStream(path).pipe(parse({ delimiter: o.delimiter ?? ',', relax_column_count: true, info: true, skip_empty_lines: true, bom: true }));
}

type Parsed = { record: string[]; info: { lines: number } };

/** Default column names without a header: id, x0, x1, ... (FATE's key + features). */
function defaultHeader(width: number): string[] {
  return Array.from({ length: width }, (_, i) => (i === 0 ? 'id' : `x${i - 1}`));
}

export async function fileExists(path: string): Promise<boolean> {
  try { return (await stat(path)).isFile(); } catch { return false; }
}

/** Validate the whole file and infer its columns; throws CsvDataError. */
export async function scanCsv(path: string, o: CsvReadOptions = {}): Promise<CsvScan> {
  const head = o.head ?? true;
  let header: string[] | undefined;
  let width = 0;
  let rows = 0;
  let intOk: boolean[] = [];
  const keys = new Map<string, number>();
  try {
    for await (const { record, info } of parser(path, o) as AsyncIterable<Parsed>) {
      if (!header) {
        width = record.length;
        if (head) {
          header = record.map((h) => h.trim());
          const bad = header.find((h) => !NAME_RE.test(h));
          if (bad !== undefined) throw new CsvDataError(`line ${info.lines}: header has an empty or invalid column name`, info.lines);
          const dup = header.find((h, i) => header!.indexOf(h) !== i);
          if (dup) throw new CsvDataError(`line ${info.lines}: column "${dup}" appears twice in the header`, info.lines);
          intOk = header.map(() => true);
          continue;
        }
        header = defaultHeader(width);
        intOk = header.map(() => true);
      }
      if (record.length !== width) {
        throw new CsvDataError(`line ${info.lines}: ${record.length} fields where the ${head ? 'header has' : 'first line has'} ${width}`, info.lines);
      }
      const k = record[0]!;
      if (k === '') throw new CsvDataError(`line ${info.lines}: the key column "${header[0]}" is empty`, info.lines);
      const seen = keys.get(k);
      if (seen !== undefined) throw new CsvDataError(`line ${info.lines}: duplicate key "${k}" (first on line ${seen})`, info.lines);
      keys.set(k, info.lines);
      for (let i = 0; i < width; i++) if (intOk[i] && record[i] !== '' && !INT_RE.test(record[i]!)) intOk[i] = false;
      rows++;
    }
  } catch (err) {
    if (err instanceof CsvDataError) throw err;
    const e = err as { code?: string; lines?: number; message?: string };
    if (e.code?.startsWith('CSV_')) throw new CsvDataError(`${e.lines ? `line ${e.lines}: ` : ''}${e.message}`, e.lines);
    throw err;
  }
  if (!header) throw new CsvDataError('the file is empty');
  const columns: ColumnType[] = header.map((name, i) => (intOk[i] && rows > 0
    ? { name, kind: 'int', sourceType: 'bigint', size: 8 }
    : { name, kind: 'text', sourceType: 'text' }));
  return { header, columns, key: [header[0]!], rows };
}

function toValue(s: string, col: ColumnType): Value {
  if (col.kind === 'int') {
    if (s === '') return null;
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : s;
  }
  return s;
}

/** Rows of a scanned file, typed by `columns` (by position). */
export async function* csvBatches(path: string, columns: ColumnType[], o: CsvReadOptions & { batchRows?: number } = {}): AsyncGenerator<Row[]> {
  const head = o.head ?? true;
  const size = o.batchRows ?? 5000;
  let first = true;
  let batch: Row[] = [];
  for await (const { record, info } of parser(path, o) as AsyncIterable<Parsed>) {
    if (first && head) { first = false; continue; }
    first = false;
    if (record.length !== columns.length) throw new CsvDataError(`line ${info.lines}: ${record.length} fields where ${columns.length} are expected`, info.lines);
    const row: Row = {};
    for (let i = 0; i < columns.length; i++) row[columns[i]!.name] = toValue(record[i] ?? '', columns[i]!);
    batch.push(row);
    if (batch.length >= size) { yield batch; batch = []; }
  }
  if (batch.length) yield batch;
}

function cell(v: Value | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

/**
 * Write a header line and every row to `path` (through a temporary file
 * renamed into place, so a failed export leaves no partial file). Returns the rows written.
 */
export async function writeCsv(path: string, header: string[], batches: AsyncIterable<Row[]>, o: { delimiter?: string; onProgress?(rows: number): void | Promise<void> } = {}): Promise<number> {
  const tmp = `${path}.tributary-${process.pid}-${Date.now()}.tmp`;
  const out = createWriteStream(tmp);
  const csv = stringify({ delimiter: o.delimiter ?? ',' });
  csv.pipe(out);
  let n = 0;
  try {
    const write = (rec: string[]) => new Promise<void>((resolve, reject) => {
      if (csv.write(rec)) resolve();
      else { csv.once('drain', resolve); csv.once('error', reject); }
    });
    await write(header);
    for await (const batch of batches) {
      for (const r of batch) await write(header.map((h) => cell(r[h])));
      n += batch.length;
      await o.onProgress?.(n);
    }
    csv.end();
    await finished(out);
    await rename(tmp, path);
    return n;
  } catch (err) {
    csv.destroy();
    out.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
}
