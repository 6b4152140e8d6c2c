/**
 * Verify a job's destination against its source while the job runs, without
 * stopping it (docs/consistency.md, "Verifying a job").
 *
 * Each table is cut into primary-key ranges (the snapshot's own chunk plan,
 * planChunks on the source). For every range both sides are read with the
 * snapshot readers, each row reduced to one engine-neutral text
 * (value-canon.ts), and the range summarised by its row count and a
 * checksum (XOR of a 64-bit hash of every key and row, so independent of
 * order). Where the two differ the rows say how: missing at the
 * destination, extra there, or different. A live job's destination trails
 * its source by the job's lag, so a differing range is read again after a
 * pause, up to `rechecks` times; only keys that differ on every read are
 * reported (a key that matched once was in flight).
 *
 * Ranges need the two engines to order keys alike. That holds for numbers
 * and dates; text collations do not agree (PostgreSQL's and MariaDB's
 * differ), so a table keyed on text, uuid or bits is compared as one range,
 * up to `maxRowsInOneRange` rows. A table without a key is compared as a
 * multiset of rows, also as one range.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ColumnKind, Row } from '../change-event.ts';
import type { DbConnectionConfig, RenameMap, TableFilter } from '../connection-config.ts';
import type { ChunkBounds, TableInfo } from '../table-info.ts';
import type { SnapshotReader } from '../snapshot/snapshot-reader.ts';
import { createSnapshotReader } from '../factory.ts';
import { destTable } from '../apply/dest-names.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { canonRow, canonValue, type CanonColumn } from './value-canon.ts';
import type { JobControls, TableControl } from '../transform/table-controls.ts';

export interface VerifyOptions {
  /** Rows per key range (default 20,000). */
  chunkRows?: number;
  /** Times a differing range is read again before it is reported (default 3). */
  rechecks?: number;
  /** Pause before each re-read, ms (default 1,000). */
  recheckDelayMs?: number;
  /** Largest table compared as a single range (text keys, no key). Default 1,000,000. */
  maxRowsInOneRange?: number;
  /** Keys listed per differing range (default 10). */
  sampleKeys?: number;
  logger?: Logger;
  signal?: AbortSignal;
  /**
   * The job's column and row controls: the source side is read through them
   * (rows outside the filter left out, columns excluded, masked, hashed), so
   * a controlled table compares with what the job is meant to hold.
   */
  controls?: JobControls;
}

export type TableVerifyStatus = 'EQUAL' | 'DIFFERENT' | 'MISSING_DESTINATION' | 'TOO_LARGE';

export interface RangeReport {
  index: number;
  /** Keys above this (exclusive); absent = from the first key. JSON of the key columns. */
  after?: string;
  /** Keys up to this (inclusive); absent = to the last key. */
  upTo?: string;
  sourceRows: number;
  destinationRows: number;
  sourceChecksum: string;
  destinationChecksum: string;
  /** Keys at the source and not at the destination. */
  missing: number;
  /** Keys at the destination and not at the source. */
  extra: number;
  /** Keys on both sides with different values. */
  different: number;
  /** Some of the keys concerned (JSON of the key columns). */
  sampleKeys: string[];
}

export interface TableReport {
  schema: string;
  table: string;
  destinationSchema: string;
  destinationTable: string;
  status: TableVerifyStatus;
  ranges: number;
  sourceRows: number;
  destinationRows: number;
  /** Source columns the destination table lacks (their values cannot be compared; the table is DIFFERENT). */
  missingColumns: string[];
  differingRanges: RangeReport[];
  /** Ranges that differed at first and were equal on a later read (rows in flight). */
  settledRanges: number;
  message?: string;
}

/** Kinds whose order is the same in PostgreSQL and MariaDB, so that a key range selects the same rows on both. */
const ORDERED_KINDS = new Set<ColumnKind>(['int', 'decimal', 'float', 'date', 'datetime', 'timestamptz']);

export async function verifyTables(
  source: DbConnectionConfig, destination: DbConnectionConfig,
  filter: TableFilter, rename: RenameMap | undefined, opts: VerifyOptions = {},
): Promise<TableReport[]> {
  const logger = opts.logger ?? silentLogger;
  const src = createSnapshotReader(source, logger);
  const dst = createSnapshotReader(destination, logger);
  try {
    const tables = await src.listTables(filter);
    const out: TableReport[] = [];
    for (const t of tables) {
      if (opts.signal?.aborted) break;
      out.push(await verifyTable(src, dst, t, rename, opts));
    }
    return out;
  } finally {
    await Promise.all([src.close().catch(() => undefined), dst.close().catch(() => undefined)]);
  }
}

interface Plan {
  srcInfo: TableInfo;
  /** The table's controls: source rows go through them before they are compared. */
  control?: TableControl;
  dstInfo: TableInfo;
  cols: CanonColumn[];
  keyCols: CanonColumn[];
}

async function verifyTable(src: SnapshotReader, dst: SnapshotReader, srcInfo: TableInfo, rename: RenameMap | undefined, opts: VerifyOptions): Promise<TableReport> {
  const to = destTable({ schema: srcInfo.schema, table: srcInfo.table }, rename);
  const report: TableReport = {
    schema: srcInfo.schema, table: srcInfo.table, destinationSchema: to.schema, destinationTable: to.table,
    status: 'EQUAL', ranges: 0, sourceRows: 0, destinationRows: 0, missingColumns: [], differingRanges: [], settledRanges: 0,
  };
  const found = (await dst.listTables({ schemas: [{ schema: to.schema, tables: [to.table] }] }))
    .find((d) => d.schema === to.schema && d.table === to.table)
    ?? (await dst.listTables({ schemas: [{ schema: to.schema }] })).find((d) => d.table.toLowerCase() === to.table.toLowerCase());
  if (!found) return { ...report, status: 'MISSING_DESTINATION', message: `destination table ${to.schema}.${to.table} does not exist` };

  const control = opts.controls?.forTable(srcInfo);
  // Compared: the columns the destination is meant to have (a hashed key is text: one range, like other text keys).
  const shaped = control ? control.shapeTable(srcInfo) : srcInfo;
  const cols: CanonColumn[] = [];
  for (const c of shaped.columns) {
    const d = found.columns.find((x) => x.name === c.name) ?? found.columns.find((x) => x.name.toLowerCase() === c.name.toLowerCase());
    if (d) cols.push({ name: c.name, kind: c.kind, destName: d.name });
    else report.missingColumns.push(c.name);
  }
  const keyCols = srcInfo.key.map((k) => cols.find((c) => c.name === k)).filter((c): c is CanonColumn => c !== undefined);
  const keyed = keyCols.length > 0 && keyCols.length === srcInfo.key.length;
  const plan: Plan = {
    srcInfo, control,
    // The destination is read in the source key's order, by the destination's names for those columns.
    dstInfo: { ...found, key: keyed ? keyCols.map((c) => c.destName) : [] },
    cols, keyCols: keyed ? keyCols : [],
  };

  const ordered = keyed && keyCols.every((c) => ORDERED_KINDS.has(c.kind));
  const maxOne = opts.maxRowsInOneRange ?? 1_000_000;
  if (!ordered && srcInfo.estimatedRows > maxOne) {
    return { ...report, status: 'TOO_LARGE', message: `${srcInfo.schema}.${srcInfo.table} has about ${srcInfo.estimatedRows} rows and no key that orders alike on both engines (over ${maxOne} rows are not compared in one range)` };
  }
  const chunks = ordered ? await src.planChunks(srcInfo, opts.chunkRows ?? 20_000) : [{ index: 0 }];
  report.ranges = chunks.length;
  for (const chunk of chunks) {
    if (opts.signal?.aborted) break;
    let r = await compareRange(src, dst, plan, chunk, opts);
    if (r.keys.size > 0) {
      // Rows in flight: a key counts only if it differs on every re-read. A key that matched once was
      // the job catching up, not a divergence, even if the range as a whole never reads equal while writes go on.
      let suspects = new Set(r.keys.keys());
      for (let i = 0; i < (opts.rechecks ?? 3) && suspects.size > 0; i++) {
        await sleep(opts.recheckDelayMs ?? 1000);
        r = await compareRange(src, dst, plan, chunk, opts);
        suspects = new Set([...suspects].filter((k) => r.keys.has(k)));
      }
      r = narrowTo(r, suspects, opts);
      if (suspects.size === 0) report.settledRanges++;
    }
    report.sourceRows += r.report.sourceRows;
    report.destinationRows += r.report.destinationRows;
    if (r.keys.size > 0) report.differingRanges.push(r.report);
  }
  if (report.differingRanges.length > 0 || report.missingColumns.length > 0) report.status = 'DIFFERENT';
  return report;
}

type KeyDiff = { how: 'missing' | 'extra' | 'different'; n: number; label: string };
interface RangeRead { report: RangeReport; keys: Map<string, KeyDiff> }

/** The read's counts and sample restricted to the keys that kept differing. */
function narrowTo(r: RangeRead, suspects: Set<string>, opts: VerifyOptions): RangeRead {
  const keys = new Map([...r.keys].filter(([k]) => suspects.has(k)));
  const sum = (how: KeyDiff['how']): number => [...keys.values()].filter((d) => d.how === how).reduce((a, d) => a + d.n, 0);
  return {
    keys,
    report: { ...r.report, missing: sum('missing'), extra: sum('extra'), different: sum('different'), sampleKeys: [...keys.values()].slice(0, opts.sampleKeys ?? 10).map((d) => d.label) },
  };
}

/** Bounds of a source chunk under the destination's column names. */
function destBounds(chunk: ChunkBounds, keyCols: CanonColumn[]): ChunkBounds {
  const rename = (row?: Row): Row | undefined => {
    if (!row) return undefined;
    const out: Row = {};
    for (const c of keyCols) out[c.destName] = row[c.name];
    return out;
  };
  const b: ChunkBounds = { index: chunk.index };
  const after = rename(chunk.after); const upTo = rename(chunk.upTo);
  if (after) b.after = after;
  if (upTo) b.upTo = upTo;
  return b;
}

/** Read one range on both sides: row text by key (keyless: by the row itself, counted). */
async function readSide(reader: SnapshotReader, info: TableInfo, chunk: ChunkBounds, plan: Plan, dest: boolean): Promise<Map<string, Side>> {
  const m = new Map<string, Side>();
  const control = dest ? undefined : plan.control;
  for await (const batch of reader.readChunk(info, chunk, 5_000)) {
    for (const raw of batch) {
      if (control && control.passes(raw) === false) continue;
      const row = control ? control.row(raw) : raw;
      const text = canonRow(plan.cols, row, dest);
      const key = plan.keyCols.length > 0
        ? JSON.stringify(plan.keyCols.map((c) => canonValue(c.kind, row[dest ? c.destName : c.name])))
        : text;
      const seen = m.get(key);
      if (seen) seen.n++;
      else m.set(key, { row: text, n: 1, label: plan.keyCols.length > 0 ? JSON.stringify(plan.keyCols.map((c) => row[dest ? c.destName : c.name])) : `row ${text}` });
    }
  }
  return m;
}

async function compareRange(src: SnapshotReader, dst: SnapshotReader, plan: Plan, chunk: ChunkBounds, opts: VerifyOptions): Promise<RangeRead> {
  const [s, d] = await Promise.all([
    readSide(src, plan.srcInfo, chunk, plan, false),
    readSide(dst, plan.dstInfo, destBounds(chunk, plan.keyCols), plan, true),
  ]);
  const keys = new Map<string, KeyDiff>();
  for (const [k, v] of s) {
    const o = d.get(k);
    if (!o) keys.set(k, { how: 'missing', n: v.n, label: v.label });
    else if (o.row !== v.row) keys.set(k, { how: 'different', n: 1, label: v.label });
    else if (o.n < v.n) keys.set(k, { how: 'missing', n: v.n - o.n, label: v.label });
    else if (o.n > v.n) keys.set(k, { how: 'extra', n: o.n - v.n, label: v.label });
  }
  for (const [k, o] of d) if (!s.has(k)) keys.set(k, { how: 'extra', n: o.n, label: o.label });
  const bound = (row?: Row): string | undefined => (row ? JSON.stringify(plan.keyCols.map((c) => row[c.name])) : undefined);
  const report: RangeReport = {
    index: chunk.index,
    sourceRows: count(s), destinationRows: count(d), sourceChecksum: checksum(s), destinationChecksum: checksum(d),
    missing: 0, extra: 0, different: 0, sampleKeys: [],
  };
  const after = bound(chunk.after); const upTo = bound(chunk.upTo);
  if (after) report.after = after;
  if (upTo) report.upTo = upTo;
  return narrowTo({ report, keys }, new Set(keys.keys()), opts);
}

/** One key's row on one side: its text, how many times (keyless), and the key as shown. */
interface Side { row: string; n: number; label: string }

function count(m: Map<string, { n: number }>): number {
  let n = 0;
  for (const v of m.values()) n += v.n;
  return n;
}

/** XOR of the first 64 bits of md5(key, row) over every row (with multiplicity): order does not count. */
function checksum(m: Map<string, Side>): string {
  let x = 0n;
  for (const [k, v] of m) {
    const h = BigInt(`0x${createHash('md5').update(k).update('\u0000').update(v.row).digest('hex').slice(0, 16)}`);
    // An even number of identical rows would cancel out under XOR: fold the multiplicity in.
    x ^= v.n === 1 ? h : BigInt(`0x${createHash('md5').update(`${v.n}:${h}`).digest('hex').slice(0, 16)}`);
  }
  return x.toString(16).padStart(16, '0');
}
