/**
 * Maps one committed binlog transaction, as the assembler collected it from
 * zongji, to a CapturedTransaction: sequences, keys, column types and
 * JSON-safe values (mysql-values.ts), DDL events. Table metadata is read from
 * information_schema and cached per table until a DDL statement on it passes.
 */
import type mysql from 'mysql2/promise';
import { Operation, type CapturedTransaction, type ChangeEvent, type ColumnType, type Row } from '../change-event.ts';
import { matchesFilter, SYSTEM_SCHEMAS, type TableFilter } from '../connection-config.ts';
import { UnsupportedDdlError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { binlogCommitSequence, sequencePrefixFromBinlog, withIndex } from '../sequence.ts';
import type { TableInfo } from '../table-info.ts';
import { columnRenames, DdlKind, parseDdl, renameOnlyClauses, type TableRef } from './mysql-ddl.ts';
import { loadTableInfo } from './mysql-schema.ts';
import { convertRow, presentRow } from './mysql-values.ts';
import { keepRowImage, type RowsImage } from '../mysql-row-images.ts';
import { decodedIsFinal } from './mysql-rows-decoder.ts';
import { mariadbCommitEstimate } from '../commit-clock.ts';
import type { CommitBracket } from './binlog-clock.ts';

export interface RawGtid {
  /** GTID text as the server writes it ("0-1-42" or "uuid:42"). */
  text: string;
  seqNo: string;
  /** MariaDB only. */
  domainId?: number;
  serverId?: number;
}

export type RawItem =
  /**
   * `uniformKeys`: every row (and before/after image) has exactly the same
   * own keys as the first, and the plain object prototype (rows from
   * mysql-rows-decoder.ts); the key checks are then made once per item.
   */
  | { kind: 'WriteRows' | 'UpdateRows' | 'DeleteRows'; schema: string; table: string; rows: unknown[]; uniformKeys?: boolean; images?: RowsImage }
  /**
   * `namedRows`: the row events around this statement carry the column names
   * they were written with (binlog_row_metadata=FULL), so a column rename can
   * be followed; without them rows read after the rename are already named
   * by the table as it is now.
   */
  | { kind: 'query'; sql: string; schema: string; namedRows?: boolean };

/** A transaction as read from the binlog, before value conversion. */
export interface RawTx {
  file: string;
  /** Offset of the transaction's first event (GTID or BEGIN) in `file`. */
  start: number;
  gtid?: RawGtid;
  items: RawItem[];
  /** Offset right after the commit event. */
  commitPos: number;
  /** ms since the epoch (binlog timestamps have second resolution). */
  commitTime: number;
  /** When the capture received the commit event (or, for a piece, its last row event), ms on this process's clock. */
  observedAt?: number;
  /** When the binlog reached the commit's end, as the binlog clock saw it (capture/binlog-clock.ts). */
  bracket?: CommitBracket;
  rows: number;
  /** GTID state including this transaction, when known. */
  gtidAfter?: string;
  /** A piece of a large transaction that is not its end (CapturedTransaction.partial). */
  partial?: boolean;
  /** Events of this transaction handed over in earlier pieces: the index of this piece's first event. */
  indexBase?: number;
}

type DdlBody = Pick<ChangeEvent, 'op' | 'key' | 'before' | 'after' | 'columns' | 'ddl'>;

export interface TableMeta {
  info: TableInfo;
  byName: Map<string, ColumnType>;
  /** Types guessed for columns information_schema no longer shows (schema drift). */
  unknown: Map<string, ColumnType>;
}

export interface TransactionMapperOptions {
  selectorColumn: string;
  tables: TableFilter;
  logger: Logger;
}

/** Rows taken as the decoder made them (decodedIsFinal), in this process (tests). */
export const mapperStats = { decodedAsFinal: 0 };

export class TransactionMapper {
  private readonly cache = new Map<string, TableMeta>();
  /**
   * Each table's shape as of the stream position mapped so far, as well as it
   * is known: the names of its last rows (they carry the names they were
   * written with), the shape a column rename gives, else the last one read.
   * Kept across DDL: rows and a column rename read after a later statement
   * renamed or dropped their table are typed with it instead of guessed.
   */
  private readonly shapes = new Map<string, TableInfo>();

  constructor(private readonly db: Pick<mysql.Connection, 'query'>, private readonly opts: TransactionMapperOptions) {}

  async map(raw: RawTx): Promise<CapturedTransaction> {
    const commitSequence = binlogCommitSequence(raw.file, raw.start);
    const txid = raw.gtid?.seqNo ?? commitSequence;
    const events: ChangeEvent[] = [];
    const prefix = sequencePrefixFromBinlog(raw.file, raw.start);
    const first = raw.indexBase ?? 0;

    for (const item of raw.items) {
      if (item.kind === 'query') {
        for (const ev of await this.ddlEvents(item.sql, item.schema, item.namedRows ?? false)) {
          const index = first + events.length;
          events.push({
            source: 'mysql', sequence: withIndex(prefix, index), txid, commitSequence, index, schema: ev.ref.schema, table: ev.ref.table, commitTime: raw.commitTime,
            ...ev.body,
          });
        }
        continue;
      }
      const head = item.rows[0] as Record<string, unknown> | undefined;
      const sample = item.kind === 'UpdateRows' ? (head as { after?: Record<string, unknown> } | undefined)?.after : head;
      // The table's metadata is nearly always known: no await (a microtask per row event) unless it must be read.
      const meta = rowMeta(this.cache.get(`${item.schema}.${item.table}`) ?? await this.meta(item.schema, item.table), sample);
      // Per item, not per row (and without a closure per transaction: single-row transactions make one item each).
      const known = sample !== undefined && allKnown(sample, meta.byName);
      if (known && meta.info.columns.length > 0) this.shapes.set(`${item.schema}.${item.table}`, meta.info);
      // Hot path: one object literal per event (no spreads), columns and key shared by the item's rows.
      const columns = this.columns(meta);
      const key = meta.info.key;
      // Rows of one shape whose names the metadata all knows: convertRow's per-row `in` tests and key scan give
      // the same answer for every row, so they are made once, on the first.
      const present = item.uniformKeys && known ? presentColumns(meta.info.columns, sample!) : undefined;
      const { schema, table } = item;
      const op = item.kind === 'UpdateRows' ? Operation.Update : item.kind === 'WriteRows' ? Operation.Insert : Operation.Delete;
      // Row images (mysql-row-images.ts) for the rows of one shape the metadata names in the table map's order.
      const images = item.images && sample !== undefined && sameNames(present ?? Object.keys(sample), item.images.map.names) ? item.images : undefined;
      // The feed keeps the images of rows that are exactly the plan's decoding of them under every column (feed-codec-wire.ts).
      const feedCols = images?.plan !== undefined && present !== undefined && present.length === columns.length ? columns : null;
      // Rows the plan decoded into their final values (decodedIsFinal): each is the change's row as it is.
      const final = images?.plan !== undefined && present !== undefined && decodedIsFinal(images.plan, present);
      if (final) mapperStats.decodedAsFinal += item.rows.length;
      for (let i = 0; i < item.rows.length; i++) {
        const r = item.rows[i];
        let before: Row | null = null;
        let after: Row | null = null;
        if (op === Operation.Update) {
          const u = r as { before: Record<string, unknown>; after: Record<string, unknown> };
          before = final ? u.before as Row : present ? presentRow(u.before, present) : this.row(u.before, meta);
          after = final ? u.after as Row : present ? presentRow(u.after, present) : this.row(u.after, meta);
        } else if (op === Operation.Insert) {
          after = final ? r as Row : present ? presentRow(r as Record<string, unknown>, present) : this.row(r as Record<string, unknown>, meta);
        } else {
          before = final ? r as Row : present ? presentRow(r as Record<string, unknown>, present) : this.row(r as Record<string, unknown>, meta);
        }
        if (images !== undefined) {
          if (op !== Operation.Delete) keepRowImage(after!, images, i, before, feedCols);
          else if (feedCols !== null) keepRowImage(before!, images, i, null, feedCols, true);
        }
        const index = first + events.length;
        const ev: ChangeEvent = {
          source: 'mysql', sequence: withIndex(prefix, index), txid, commitSequence, index, schema, table,
          commitTime: raw.commitTime, op, key, before, after, columns,
        };
        const scope = this.scope(after ?? before);
        if (scope !== undefined) ev.scope = scope;
        events.push(ev);
      }
    }
    return {
      txid, commitSequence, commitTime: raw.commitTime, events,
      ...(raw.observedAt !== undefined ? { commitEstimate: mariadbCommitEstimate(raw.commitTime, raw.observedAt, raw.bracket) } : {}),
      // A piece before the end resumes at the transaction's start: a restart reads it again (and the feed skips what it has).
      resume: raw.partial
        ? { kind: 'mysql', file: raw.file, pos: raw.start }
        : { kind: 'mysql', file: raw.file, pos: raw.commitPos, ...(raw.gtidAfter !== undefined ? { gtid: raw.gtidAfter } : {}) },
      ...(raw.partial ? { partial: true } : {}),
    };
  }

  private row(raw: Record<string, unknown>, meta: TableMeta): Row {
    return convertRow(raw, meta.info.columns, meta.byName, meta.unknown);
  }

  private columns(meta: TableMeta): ColumnType[] {
    return meta.unknown.size === 0 ? meta.info.columns : [...meta.info.columns, ...meta.unknown.values()];
  }

  private scope(row: Row | null): string | undefined {
    const v = row?.[this.opts.selectorColumn];
    return v === null || v === undefined ? undefined : String(v);
  }

  private included(ref: TableRef): boolean {
    return !SYSTEM_SCHEMAS.has(ref.schema.toLowerCase()) && matchesFilter(this.opts.tables, ref.schema, ref.table);
  }

  private async ddlEvents(sql: string, schema: string, namedRows: boolean): Promise<{ ref: TableRef; body: DdlBody }[]> {
    const ddl = parseDdl(sql, schema);
    if (!ddl) {
      this.opts.logger.debug({ sql: sql.slice(0, 200) }, 'query event ignored: not table DDL');
      return [];
    }
    const out: { ref: TableRef; body: DdlBody }[] = [];
    for (const [i, ref] of ddl.tables.entries()) {
      const target = ddl.renamedTo?.[i];
      const was = this.included(ref);
      if (!was && !(target && this.included(target))) continue;
      if (target && (target.schema !== ref.schema || target.table !== ref.table)) {
        // Rows must never go missing: a table leaving the selection (or entering it without a snapshot) stops the job.
        if (!was || !this.included(target)) {
          const [a, b] = [`\`${ref.schema}\`.\`${ref.table}\``, `\`${target.schema}\`.\`${target.table}\``];
          throw new UnsupportedDdlError(sql, was
            ? `renames ${a} to ${b}, which is outside the job's table selection`
            : `renames ${a}, outside the job's table selection, to ${b} inside it: its rows were never copied`);
        }
        if (target.schema !== ref.schema) throw new UnsupportedDdlError(sql, 'moves a table to another database');
      }
      if (ddl.kind === DdlKind.AlterTable && !namedRows && columnRenames(sql).length > 0) {
        throw new UnsupportedDdlError(sql, 'renaming a column needs binlog_row_metadata=FULL on the source (row events then carry the column names they were written with)');
      }
      const refKey = `${ref.schema}.${ref.table}`;
      this.cache.delete(refKey);
      if (target) this.cache.delete(`${target.schema}.${target.table}`);
      // The table as it is now: the new name after RENAME, nothing after DROP. A statement that only renames
      // columns gives the exact shape from the one before it: "now" may already be after later statements.
      const before = this.shapes.get(refKey);
      const renamed = ddl.kind === DdlKind.AlterTable && !target && before ? renamedShape(before, sql) : undefined;
      const now = renamed ?? (ddl.kind === DdlKind.DropTable ? undefined : await loadTableInfo(this.db, (target ?? ref).schema, (target ?? ref).table));
      this.shapes.delete(refKey);
      if (now) this.shapes.set(`${(target ?? ref).schema}.${(target ?? ref).table}`, now);
      out.push({ ref, body: { op: Operation.Ddl, key: now?.key ?? [], before: null, after: null, columns: now?.columns ?? [], ddl: sql } });
    }
    return out;
  }

  private async meta(schema: string, table: string): Promise<TableMeta> {
    const key = `${schema}.${table}`;
    let meta = this.cache.get(key);
    if (!meta) {
      // A table renamed or dropped since the event was written: its last shape read, else values keep guessed types.
      const info = (await loadTableInfo(this.db, schema, table)) ?? this.shapes.get(key) ?? { schema, table, columns: [], key: [], estimatedRows: 0 };
      meta = { info, byName: new Map(info.columns.map((c) => [c.name, c])), unknown: new Map() };
      this.cache.set(key, meta);
    }
    return meta;
  }
}

/**
 * The metadata to type rows with names the table may no longer have: with
 * binlog_row_metadata=FULL a row event names its columns as they were when it
 * was written, while information_schema shows the table now. A column the
 * table no longer has by that name takes the type of the column at its
 * position, when the names it still has are all at their places (a rename
 * moves nothing); otherwise types are guessed as before (convertRow).
 */
export function rowMeta(meta: TableMeta, sample: Record<string, unknown> | undefined): TableMeta {
  if (!sample) return meta;
  const names = Object.keys(sample);
  if (names.every((n) => meta.byName.has(n))) return meta;
  const cols = meta.info.columns;
  if (names.length !== cols.length || !names.every((n, i) => !meta.byName.has(n) || cols[i]!.name === n)) return meta;
  const was = new Map<string, string>();
  const columns = names.map((n, i) => {
    if (cols[i]!.name === n) return cols[i]!;
    was.set(cols[i]!.name, n);
    return { ...cols[i]!, name: n };
  });
  const info = { ...meta.info, columns, key: meta.info.key.map((k) => was.get(k) ?? k) };
  return { info, byName: new Map(columns.map((c) => [c.name, c])), unknown: new Map() };
}

/**
 * `before` after an ALTER TABLE that only renames columns (RENAME COLUMN, or
 * CHANGE giving the column the type it had), for when the table can no longer
 * be read under its name (a later statement renamed or dropped it).
 * Undefined when the statement does anything else.
 */
export function renamedShape(before: TableInfo, sql: string): TableInfo | undefined {
  const clauses = renameOnlyClauses(sql);
  if (!clauses) return undefined;
  const columns = before.columns.map((c) => ({ ...c }));
  let key = [...before.key];
  for (const { from, to, type } of clauses) {
    const col = columns.find((c) => c.name === from);
    if (!col || columns.some((c) => c.name === to && c !== col)) return undefined;
    if (type !== undefined && type !== col.sourceType.replace(/\s+/g, '').toLowerCase()) return undefined;
    col.name = to;
    key = key.map((k) => (k === from ? to : k));
  }
  return { ...before, columns, key };
}

/** `present` names exactly `names`, in order. */
function sameNames(present: (ColumnType | string)[], names: string[]): boolean {
  if (present.length !== names.length) return false;
  for (let i = 0; i < names.length; i++) {
    const p = present[i]!;
    if ((typeof p === 'string' ? p : p.name) !== names[i]) return false;
  }
  return true;
}

/** Every name of `row` is a column `byName` knows. */
function allKnown(row: Record<string, unknown>, byName: Map<string, unknown>): boolean {
  for (const n in row) if (Object.prototype.hasOwnProperty.call(row, n) && !byName.has(n)) return false;
  return true;
}

/** The columns `row` has a value for, in column order. */
function presentColumns(columns: ColumnType[], row: Record<string, unknown>): ColumnType[] {
  const out: ColumnType[] = [];
  for (const c of columns) if (c.name in row) out.push(c);
  return out;
}
