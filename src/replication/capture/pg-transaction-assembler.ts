/**
 * Turns decoded pgoutput messages into CapturedTransactions: the mapping half
 * of the capture (the wire half is pg-logical-replication's parser).
 *
 *   Begin ─┬─ Relation* (may yield synthetic DDL) ─ Insert/Update/Delete/Truncate* ─┬─ Commit -> CapturedTransaction
 *          └────────────────────────────────────────────────────────────────────────┘
 *
 * Invariants: events keep source order; event i of a transaction committed at
 * LSN L has sequence sequenceFromLsn(L, i); `resume` is the commit's end LSN.
 *
 * Schema tracking: pgoutput re-sends a Relation message before the first
 * change to a relation in a session and after any change to it. We compare it
 * with what we last knew of that relation and turn differences into synthetic
 * DDL events, so the applier can follow without parsing SQL. What we "knew"
 * at the start of a run is exact only when the baseline was read under the
 * slot's exported snapshot (first run after the slot was created). On a later
 * run the stream re-reads unacknowledged WAL that may predate the current
 * catalog, and diffing against the catalog would invent DDL (a false DROP
 * COLUMN destroys data downstream), so the first Relation of each table is
 * then taken as the truth and only changes seen within the run become DDL.
 * Limits, written down because they are real: DDL done between the last
 * acknowledged transaction and a restart yields no DDL event; a column rename
 * looks like drop + add (the message carries no attnum). Every row event
 * carries its full `columns`, so an applier can always reconcile from those.
 */
import type { Pgoutput } from 'pg-logical-replication';
import { CAPTURE_PIECE_EVENTS, Operation, type CapturedTransaction, type ChangeEvent, type ColumnType, type Row } from '../change-event.ts';
import { matchesFilter, type TableFilter } from '../connection-config.ts';
import { UnsupportedDdlError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { keepAfterWire, type WireRows } from '../pg-wire-rows.ts';
import { canonicalLsnText, lsnDecimal, sequencePrefixFromLsn, withIndex } from '../sequence.ts';
import { loadKey, loadNotNull, loadRelationAttributes, loadTypeInfos, typeInfoFor, type Queryable, type RelationAttributes } from './pg-catalog.ts';
import { fillGenerated, generatedPlan, type GeneratedPlan, type PendingGenerated } from './pg-generated.ts';
import { quoteIdent, quoteTable } from './pg-connection.ts';
import { columnClauses } from './pg-relation-ddl.ts';
import { newTuple, rawTextParser, type DirectRelation, type RowMessage } from './pg-tuple-reader.ts';
import { pgColumnType, pgTextToValue, type PgTypeInfo } from './pg-values.ts';

export const DEFAULT_SELECTOR_COLUMN = '_change_selector';

/** What we know of one published relation. */
interface RelationState {
  oid: number;
  schema: string;
  table: string;
  identity: Pgoutput.MessageRelation['replicaIdentity'];
  columns: ColumnType[];
  key: string[];
  /** Column names + type oids + typmods as sent; a cheap "did it change" check. */
  wireSignature: string;
  /** Generated columns the wire leaves out, computed for each after image (pg-generated.ts). */
  generated?: GeneratedPlan;
  /** Attribute numbers of the columns (catalog read when described): a renamed column keeps its number. */
  attnums: Map<string, number>;
  /** Columns whose existing rows the source fills when they are added (RelationAttributes.filled). */
  filled: Map<string, string>;
  /** included() as last worked out, and for which filter object (asked once per row: issue 12). */
  includedFor?: TableFilter | undefined | null;
  included?: boolean;
}

/** Columns of a relation as the catalog showed them when the run started (name -> type text). */
export type SchemaBaseline = Map<number, { schema: string; table: string; types: Map<string, string>; labels?: Map<string, string[]>; attnums?: Map<string, number> }>;

interface OpenTransaction {
  xid: number;
  commitLsn: string;
  /** "<hi>.<lo>." of commitLsn, computed once per transaction. */
  seqPrefix?: string;
  /** The events' txid and commitSequence texts, computed once per transaction. */
  txidText?: string;
  commitSequence?: string;
  commitTime: number;
  /** Events of the current piece (see CAPTURE_PIECE_EVENTS). */
  events: ChangeEvent[];
  /** Events handed over so far, in earlier pieces and this one: the next event's index. */
  count: number;
  /** The pgoutput bytes of events' rows, by position in `events` (CapturedTransaction.wire). */
  wire?: (WireRows | undefined)[];
  /** After images of this piece still missing their generated columns. */
  generated: PendingGenerated[];
}

/** The catalog facts the assembler reads to describe a relation (pg-catalog.ts reads them from a connection). */
export interface CatalogLookups {
  typeInfos(pairs: { oid: number; typmod: number }[]): Promise<Map<string, PgTypeInfo>>;
  notNull(relOid: number): Promise<Map<string, boolean>>;
  key(relOid: number): Promise<string[]>;
  /** Attribute numbers and generated columns (which pgoutput before PostgreSQL 18 does not send). */
  relationAttributes(relOid: number): Promise<RelationAttributes>;
  /** Compute generated columns' values for after images on the source server (pg-generated.ts). */
  fillGenerated(pending: PendingGenerated[]): Promise<void>;
}

function lookupsOf(catalog: Queryable | CatalogLookups): CatalogLookups {
  if ('typeInfos' in catalog) return catalog;
  return {
    typeInfos: (pairs) => loadTypeInfos(catalog, pairs), notNull: (oid) => loadNotNull(catalog, oid), key: (oid) => loadKey(catalog, oid),
    relationAttributes: (oid) => loadRelationAttributes(catalog, oid), fillGenerated: (pending) => fillGenerated(catalog, pending),
  };
}

export interface AssemblerOptions {
  /** Catalog connection for type, NOT NULL and key look-ups (or the look-ups themselves: a test's fixed catalog). */
  catalog: Queryable | CatalogLookups;
  tables: TableFilter;
  selectorColumn?: string;
  logger: Logger;
  /** Published tables (and their columns) when the stream starts: tables not in it are new. */
  baseline: SchemaBaseline;
  /** true when `baseline` columns are exactly those at the stream's start (read under the exported snapshot). */
  baselineExact: boolean;
}

export class PgTransactionAssembler {
  private readonly relations = new Map<number, RelationState>();
  private readonly warnedIdentity = new Set<number>();
  private readonly selector: string;
  private readonly catalog: CatalogLookups;
  private tx?: OpenTransaction;

  /** Between a BEGIN and its COMMIT. */
  get inTransaction(): boolean { return this.tx !== undefined; }

  constructor(private readonly opts: AssemblerOptions) {
    this.selector = opts.selectorColumn ?? DEFAULT_SELECTOR_COLUMN;
    this.catalog = lookupsOf(opts.catalog);
  }

  /** Feed one message; returns the finished transaction on Commit (possibly with no events). */
  async accept(msg: Pgoutput.Message): Promise<CapturedTransaction | undefined> {
    return await this.acceptNow(msg);
  }

  /**
   * accept() without a promise where none is needed: a row message that
   * neither waits for enum labels nor completes a piece is taken at once
   * (undefined). Anything else returns accept()'s promise. Two promises and
   * their microtasks per row were a measurable part of the bulk capture
   * (issue 12).
   */
  acceptNow(msg: Pgoutput.Message): CapturedTransaction | undefined | Promise<CapturedTransaction | undefined> {
    switch (msg.tag) {
      case 'insert':
      case 'update': {
        const relabel = this.refreshLabels(msg.relation, msg.new);
        if (relabel) return relabel.then(() => this.rowMessage(msg));
        return this.rowMessage(msg);
      }
      case 'delete':
        return this.rowMessage(msg);
      default:
        return this.otherMessage(msg);
    }
  }

  private rowMessage(msg: RowMessage): Promise<CapturedTransaction | undefined> | undefined {
    const direct = msg.rowsDirect === true;
    switch (msg.tag) {
      case 'insert':
        this.onRow(Operation.Insert, msg.relation, null, msg.new, false, direct, msg.wire);
        break;
      case 'update': {
        const st = this.relations.get(msg.relation.relationOid);
        if (msg.old) this.onRow(Operation.Update, msg.relation, msg.old, msg.new, false, direct, msg.wire);
        else if (msg.key) this.onRow(Operation.Update, msg.relation, msg.key, msg.new, true, direct, msg.wire);
        // Key unchanged under a key-only identity: the server sends no old tuple; the key is in the new row.
        else if (st && st.identity !== 'nothing') this.onRow(Operation.Update, msg.relation, pick(msg.new, msg.relation.keyColumns), msg.new, true, direct, msg.wire);
        else this.onRow(Operation.Update, msg.relation, null, msg.new, false, direct, msg.wire);
        break;
      }
      case 'delete':
        this.onRow(Operation.Delete, msg.relation, msg.old ?? msg.key, null, !msg.old, direct, msg.wire);
        break;
    }
    return this.pieceFull() ? this.piece() : undefined;
  }

  private async otherMessage(msg: Pgoutput.Message): Promise<CapturedTransaction | undefined> {
    switch (msg.tag) {
      case 'begin':
        this.tx = { xid: msg.xid >>> 0, commitLsn: canonicalLsn(msg.commitLsn), commitTime: microsToMs(msg.commitTime), events: [], count: 0, generated: [] };
        return undefined;
      case 'relation':
        await this.onRelation(msg);
        return undefined;
      case 'truncate':
        for (const rel of msg.relations) {
          const st = this.relations.get(rel.relationOid);
          if (st && this.included(st)) this.pushDdl(st, `TRUNCATE ${quoteTable(st.schema, st.table)}`);
        }
        return undefined;
      case 'commit':
        return await this.onCommit(msg);
      default:
        // type, origin, message: nothing to capture.
        return undefined;
    }
  }

  /**
   * A full piece of the open transaction, handed over before its commit so a
   * large transaction is never held whole (CapturedTransaction.partial). Its
   * resume is a placeholder: the capture sets the position before the transaction.
   */
  private pieceFull(): boolean {
    return this.tx !== undefined && this.tx.events.length >= CAPTURE_PIECE_EVENTS;
  }

  private async piece(): Promise<CapturedTransaction | undefined> {
    const tx = this.tx;
    if (!tx || tx.events.length < CAPTURE_PIECE_EVENTS) return undefined;
    await this.completeGenerated(tx);
    const events = tx.events;
    const wire = tx.wire;
    tx.events = [];
    tx.wire = undefined;
    return {
      txid: String(tx.xid), commitSequence: lsnDecimal(tx.commitLsn), commitTime: tx.commitTime,
      resume: { kind: 'postgres', lsn: '0/0' }, events, partial: true, ...(wire ? { wire } : {}),
    };
  }

  private async onCommit(msg: Pgoutput.MessageCommit): Promise<CapturedTransaction> {
    const tx = this.tx;
    if (tx) await this.completeGenerated(tx);
    this.tx = undefined;
    const commitLsn = canonicalLsn(msg.commitLsn);
    const events = tx?.events ?? [];
    return {
      txid: String(tx?.xid ?? 0),
      commitSequence: lsnDecimal(commitLsn),
      commitTime: microsToMs(msg.commitTime),
      resume: { kind: 'postgres', lsn: canonicalLsn(msg.commitEndLsn) },
      events,
      ...(tx?.wire ? { wire: tx.wire } : {}),
    };
  }

  private async completeGenerated(tx: OpenTransaction): Promise<void> {
    if (tx.generated.length === 0) return;
    const pending = tx.generated;
    tx.generated = [];
    await this.catalog.fillGenerated(pending);
  }

  /**
   * `ALTER TYPE ... ADD VALUE` changes no relation message: a row carrying a
   * label the enum column does not know yet is the first sign. The column's
   * type is read again and an `ALTER TYPE ... ADD VALUE` DDL event goes ahead
   * of the row, so the destination widens its labels in stream order.
   */
  /** An enum label the relation does not know yet (ALTER TYPE ... ADD VALUE): describe it again. Undefined (no await) when none: hot, every row. */
  private refreshLabels(rel: Pgoutput.MessageRelation, tuple: Record<string, unknown> | null): Promise<void> | undefined {
    const st = this.relations.get(rel.relationOid);
    if (!st || !tuple || !this.included(st)) return undefined;
    let stale: ColumnType[] | undefined;
    for (const c of st.columns) {
      if (c.kind === 'enum' && typeof tuple[c.name] === 'string' && !(c.values ?? []).includes(tuple[c.name] as string)) (stale ??= []).push(c);
    }
    return stale ? this.relabel(rel, st, stale) : undefined;
  }

  private async relabel(rel: Pgoutput.MessageRelation, st: RelationState, stale: ColumnType[]): Promise<void> {
    const next = await this.describe(rel, st.wireSignature);
    this.relations.set(rel.relationOid, next);
    this.bindRows(rel, next);
    const names = new Set(stale.map((c) => c.name));
    this.pushLabelDdl(next, next.columns.filter((c) => names.has(c.name)), new Map(stale.map((c) => [c.name, c.values ?? []])));
  }

  private async onRelation(msg: Pgoutput.MessageRelation): Promise<void> {
    const signature = msg.columns.map((c) => `${c.name}:${c.typeOid}:${c.typeMod}`).join(',') + `|${msg.schema}.${msg.name}|${msg.replicaIdentity}`;
    const prev = this.relations.get(msg.relationOid);
    if (prev && prev.wireSignature === signature) { this.bindRows(msg, prev); return; }
    const state = await this.describe(msg, signature);
    this.relations.set(msg.relationOid, state);
    this.bindRows(msg, state);
    this.checkRenameScope(prev, state);
    if (!this.included(state)) return;
    if (state.identity !== 'full' && !this.warnedIdentity.has(state.oid)) {
      this.warnedIdentity.add(state.oid);
      this.opts.logger.warn(
        { table: `${state.schema}.${state.table}`, identity: state.identity },
        'table lacks REPLICA IDENTITY FULL: update/delete events carry only the key in `before` (beforeKeyOnly)',
      );
    }
    for (const ddl of this.schemaDiff(prev, state)) this.pushDdl(state, ddl);
    // Enum labels added since the destination was shaped (the relation is described from the catalog as it is now).
    const before = prev ? new Map(prev.columns.map((c) => [c.name, c.values ?? []])) : this.opts.baselineExact ? this.opts.baseline.get(state.oid)?.labels : undefined;
    if (before) this.pushLabelDdl(state, state.columns.filter((c) => c.kind === 'enum' && before.has(c.name)), before);
  }

  /**
   * A table renamed (or moved to another schema) so that it leaves the job's
   * selection, or enters it without ever having been copied: its rows would
   * silently stop (or start half way), so the job stops quoting the change.
   * Only names known for this stream count: the first message's when the
   * baseline is not exact may predate a rename the catalog already shows.
   */
  private checkRenameScope(prev: RelationState | undefined, next: RelationState): void {
    const base = prev ? undefined : this.opts.baselineExact ? this.opts.baseline.get(next.oid) : undefined;
    const known = prev ?? base;
    if (!known || (known.schema === next.schema && known.table === next.table)) return;
    const was = matchesFilter(this.opts.tables, known.schema, known.table);
    const now = this.included(next);
    if (was === now) return;
    const stmt = known.schema !== next.schema
      ? `ALTER TABLE ${quoteTable(known.schema, known.table)} SET SCHEMA ${quoteIdent(next.schema)}${known.table !== next.table ? `, RENAME TO ${quoteIdent(next.table)}` : ''}`
      : `ALTER TABLE ${quoteTable(known.schema, known.table)} RENAME TO ${quoteIdent(next.table)}`;
    const [a, b] = [quoteTable(known.schema, known.table), quoteTable(next.schema, next.table)];
    throw new UnsupportedDdlError(stmt, was
      ? `renames ${a} to ${b}, which is outside the job's table selection`
      : `renames ${a}, outside the job's table selection, to ${b} inside it: its rows were never copied`);
  }

  private pushLabelDdl(state: RelationState, columns: ColumnType[], before: Map<string, string[]>): void {
    for (const c of columns) {
      const known = before.get(c.name) ?? [];
      const added = (c.values ?? []).filter((v) => !known.includes(v));
      if (added.length) this.pushDdl(state, `ALTER TYPE ${c.sourceType} ${added.map((v) => `ADD VALUE ${quoteLiteral(v)}`).join(', ')}`);
    }
  }

  /** Synthetic DDL describing how `next` differs from what we knew before. */
  private schemaDiff(prev: RelationState | undefined, next: RelationState): string[] {
    const known = prev
      ? { schema: prev.schema, table: prev.table, types: new Map(prev.columns.map((c) => [c.name, c.sourceType])) }
      : this.opts.baseline.get(next.oid);
    const knownAttnums = prev ? prev.attnums : known?.attnums;
    // Existed at the start but its columns back then are unknown: this message is the baseline.
    if (!prev && known && !this.opts.baselineExact) return [];
    const target = quoteTable(next.schema, next.table);
    if (!known) {
      // Unknown when the run started and never seen since: created under FOR ALL TABLES / TABLES IN SCHEMA.
      const defs = next.columns.map((c) => `${quoteIdent(c.name)} ${c.sourceType}${c.nullable === false ? ' NOT NULL' : ''}`);
      if (next.key.length) defs.push(`PRIMARY KEY (${next.key.map(quoteIdent).join(', ')})`);
      return [`CREATE TABLE ${target} (${defs.join(', ')})`];
    }
    const out: string[] = [];
    if (known.schema !== next.schema || known.table !== next.table) {
      if (known.schema !== next.schema) out.push(`ALTER TABLE ${quoteTable(known.schema, known.table)} SET SCHEMA ${quoteIdent(next.schema)}`);
      if (known.table !== next.table) out.push(`ALTER TABLE ${quoteTable(next.schema, known.table)} RENAME TO ${quoteIdent(next.table)}`);
    }
    const clauses = columnClauses({ types: known.types, attnums: knownAttnums }, next);
    if (clauses.length) out.push(`ALTER TABLE ${target} ${clauses.join(', ')}`);
    return out;
  }

  private async describe(msg: Pgoutput.MessageRelation, wireSignature: string): Promise<RelationState> {
    const [attrs, notNull, pk] = await Promise.all([
      this.catalog.relationAttributes(msg.relationOid),
      this.catalog.notNull(msg.relationOid),
      this.catalog.key(msg.relationOid),
    ]);
    const sent = new Set(msg.columns.map((c) => c.name));
    // Generated columns the wire leaves out, all of them: a column the destination has must not look dropped.
    const gens = attrs.generated.filter((g) => !sent.has(g.name));
    const pairs = [...msg.columns.map((c) => ({ oid: c.typeOid, typmod: c.typeMod })), ...gens.map((g) => ({ oid: g.oid, typmod: g.typmod }))];
    const infos = await this.catalog.typeInfos(pairs);
    const wire = msg.columns.map((c) => {
      const nn = notNull.get(c.name);
      return { attnum: attrs.attnums.get(c.name), column: pgColumnType(c.name, typeInfoFor(infos, c.typeOid, c.typeMod), nn === undefined ? undefined : !nn) };
    });
    const genCols = gens.map((g) => ({ def: g, column: pgColumnType(g.name, typeInfoFor(infos, g.oid, g.typmod), !g.notNull), type: typeInfoFor(infos, g.oid, g.typmod).formatted }));
    // Generated columns at their attribute position, as the catalog (snapshot, baseline) lists them. The wire
    // order is kept as sent: the catalog is read now and may already have renamed or dropped a wire column.
    const columns: ColumnType[] = [];
    const pending = [...genCols].sort((a, b) => a.def.attnum - b.def.attnum);
    for (const w of wire) {
      while (pending.length && w.attnum !== undefined && pending[0]!.def.attnum < w.attnum) columns.push(pending.shift()!.column);
      columns.push(w.column);
    }
    for (const g of pending) columns.push(g.column);
    const generated = genCols.length ? generatedPlan(msg, attrs, genCols, infos) : undefined;
    // The primary key names rows; under FULL identity pgoutput flags every column, so it cannot tell us.
    const names = new Set(columns.map((c) => c.name));
    const key = pk.length && pk.every((k) => names.has(k)) ? pk : msg.replicaIdentity === 'full' ? [] : msg.keyColumns;
    const attnums = new Map<string, number>();
    for (const c of columns) { const n = attrs.attnums.get(c.name); if (n !== undefined) attnums.set(c.name, n); }
    return {
      oid: msg.relationOid, schema: msg.schema, table: msg.name, identity: msg.replicaIdentity, columns, key, wireSignature, generated,
      attnums, filled: attrs.filled,
    };
  }

  /**
   * Makes the parser read `rel`'s tuples as `st`'s rows (pg-tuple-reader.ts DirectRelation) where a row is the
   * tuple with each value converted: the wire sends exactly the table's columns in their order (no generated
   * column the assembler adds), none named `__proto__` (a plain object cannot hold it as data). Otherwise, and
   * for a table the capture leaves out, the tuples keep the server's text and toRow converts them.
   */
  private bindRows(rel: Pgoutput.MessageRelation, st: RelationState): void {
    const cols = st.columns;
    const direct = this.included(st) && !st.generated && cols.length === rel.columns.length
      && rel.columns.every((c, i) => c.name === cols[i]!.name && c.name !== '__proto__');
    for (let i = 0; i < rel.columns.length; i++) rel.columns[i]!.parser = direct ? valueParser(cols[i]!) : rawTextParser;
    (rel as DirectRelation).rowsDirect = direct;
  }

  private onRow(op: Operation, rel: Pgoutput.MessageRelation, before: Record<string, unknown> | null, after: Record<string, unknown> | null, keyOnly: boolean, direct: boolean, wire?: WireRows): void {
    const st = this.relations.get(rel.relationOid);
    if (!st || !this.included(st)) return;
    let beforeRow: Row | null;
    let afterRow: Row | null;
    if (direct) {
      // Read as rows already (bindRows); a key-only image keeps its key columns.
      beforeRow = !before ? null : keyOnly ? this.toRow(st, before, new Set(rel.keyColumns.length ? rel.keyColumns : st.key), false) : before as Row;
      afterRow = after as Row | null;
    } else {
      beforeRow = before ? this.toRow(st, before, keyOnly ? new Set(rel.keyColumns.length ? rel.keyColumns : st.key) : undefined) : null;
      afterRow = after ? this.toRow(st, after) : null;
    }
    if (after && afterRow && st.generated?.columns.length && this.tx) this.tx.generated.push({ plan: st.generated, after, before, row: afterRow });
    const scopeValue = (afterRow ?? beforeRow)?.[this.selector];
    const ev = this.baseEvent(st, op);
    ev.before = beforeRow;
    ev.after = afterRow;
    if (keyOnly && beforeRow) ev.beforeKeyOnly = true;
    if (scopeValue !== undefined && scopeValue !== null) ev.scope = String(scopeValue);
    // The rows' bytes (a direct relation's rows are the tuples themselves; a key-only image is not kept).
    if (direct && wire) {
      wire.ev = ev;
      if (wire.bb !== null && !keyOnly) wire.before = beforeRow; else wire.bb = null;
      if (wire.ab !== null) { wire.after = afterRow; keepAfterWire(wire); }
    }
    this.push(ev, direct ? wire : undefined);
  }

  private pushDdl(st: RelationState, ddl: string): void {
    const ev = this.baseEvent(st, Operation.Ddl);
    ev.ddl = ddl;
    this.push(ev);
  }

  private baseEvent(st: RelationState, op: Operation): ChangeEvent {
    const tx = this.tx;
    return {
      source: 'postgres',
      sequence: '',
      txid: tx ? (tx.txidText ??= String(tx.xid)) : '0',
      commitSequence: tx ? (tx.commitSequence ??= lsnDecimal(tx.commitLsn)) : '0',
      index: 0,
      op,
      schema: st.schema,
      table: st.table,
      key: st.key,
      before: null,
      after: null,
      columns: st.columns,
      commitTime: tx?.commitTime ?? 0,
    };
  }

  private push(ev: ChangeEvent, wire?: WireRows): void {
    // Relation messages may arrive outside a transaction (none in proto v1, but be safe): nothing to attach to.
    const tx = this.tx;
    if (!tx) return;
    if (wire) (tx.wire ??= [])[tx.events.length] = wire;
    ev.index = tx.count++;
    tx.seqPrefix ??= sequencePrefixFromLsn(tx.commitLsn);
    ev.sequence = withIndex(tx.seqPrefix, ev.index);
    tx.events.push(ev);
  }

  /**
   * Wire tuple (raw text, thanks to the identity parsers) -> Row. Columns
   * absent from the tuple (unchanged TOAST without an old image, or non-key
   * columns of a key-only image) are left out rather than set to null, so
   * "unknown" never reads as SQL NULL.
   */
  private toRow(st: RelationState, tuple: Record<string, unknown>, only?: Set<string>, convert = true): Row {
    const row: Row = {};
    for (const c of st.columns) {
      if (only && !only.has(c.name)) continue;
      const v = tuple[c.name];
      if (v === undefined) continue;
      row[c.name] = convert ? pgTextToValue(v as string | null, c) : v as Row[string];
    }
    return row;
  }

  private included(st: RelationState): boolean {
    const filter = this.opts.tables;
    if (st.includedFor !== filter || st.included === undefined) {
      st.included = matchesFilter(filter, st.schema, st.table);
      st.includedFor = filter;
    }
    return st.included;
  }
}

/** The column parser that makes a column's value from its text (bindRows): toRow's conversion. */
function valueParser(col: ColumnType): (text: unknown) => unknown {
  return (text) => pgTextToValue(text as string | null, col);
}

function pick(tuple: Record<string, unknown>, keys: string[]): Record<string, unknown> | null {
  if (keys.length === 0) return null;
  const out = newTuple();
  for (const k of keys) out[k] = tuple[k];
  return out;
}

/** "00000016/B374D848" -> "16/B374D848". */
export function canonicalLsn(lsn: string | null): string {
  return canonicalLsnText(lsn ?? '0/0');
}

function microsToMs(t: bigint | BigInt): number {
  return Number((t as bigint) / 1000n);
}

/** A SQL string literal (standard_conforming_strings). */
function quoteLiteral(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}
