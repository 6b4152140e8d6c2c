/**
 * The applier skeleton both SQL destinations share; the dialect modules
 * (pg.applier.ts, mysql.applier.ts) hold only what differs: SQL text,
 * connections and transactions, how rows are written, and DDL.
 *
 * Every write and the checkpoint that covers it commit in one destination
 * transaction. Bookkeeping lives in the destination, schema/database
 * `tributary`: `tributary_checkpoints(job_id, lane, sequence, updated_at)` and
 * `tributary_snapshot_chunks(job_id, chunk_id, done_at, covers)`; its SQL text
 * is the dialect's `LedgerSql`.
 *
 * Where DDL is transactional (PostgreSQL) a batch is one transaction, DDL
 * and all. Where DDL commits implicitly (MariaDB) a batch is cut at each DDL
 * event: the rows before it commit with a checkpoint at their last event,
 * the DDL runs in a form that is safe to repeat, then the checkpoint moves
 * past it; a crash between DDL and checkpoint replays the DDL, which then
 * changes nothing. TRUNCATE is no cut: it runs inside the transaction.
 */
import { Operation, type ChangeEvent, type ColumnType, type Row } from '../change-event.ts';
import type { DbConnectionConfig } from '../connection-config.ts';
import { FatalError } from '../errors.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { compareSequences } from '../sequence.ts';
import type { TableInfo } from '../table-info.ts';
import { LaneCommits, SnapshotCovers, unseenTables, unsee, type Applier, type ApplierOptions } from './applier.ts';
import { planBatch, type Step, type TableRef } from './batch-plan.ts';
import { classifyDdl } from './ddl.ts';
import { destTable } from './dest-names.ts';
import { cutAtDdl } from './lanes.ts';

export interface SqlApplierOptions extends ApplierOptions {
  /** Connections in the pool; one per concurrently applying lane. Default 4. */
  poolSize?: number;
  /** Rows per INSERT/DELETE statement (also bounded by the dialect's statement limits). Default 1000. */
  rowsPerStatement?: number;
  /** Default: silent. */
  logger?: Logger;
}

/**
 * The bookkeeping statements, in the dialect's SQL. Parameters come in the
 * order named; `$n` or `?` as the dialect binds them.
 */
export interface LedgerSql {
  /** (job_id, lane) -> sequence. */
  readCheckpoint: string;
  /** (job_id, lane) -> sequence, the row locked: also fences off a second worker on the same lane. */
  lockCheckpoint: string;
  /** (job_id, lane, sequence): upsert with updated_at = now. */
  writeCheckpoint: string;
  /** (job_id) -> (lane, sequence) of every lane row of the job, locked. */
  lockLanes: string;
  /** (job_id, chunk_id) -> a row when the chunk is done. */
  chunkDone: string;
  /** (job_id, chunk_id, covers): upsert with done_at = now. */
  markChunk: string;
  /** (job_id, chunk_id) -> covers. */
  readCover: string;
  /** (job_id): forgets the job's chunks. */
  forgetChunks: string;
  /** Empties a destination table inside a transaction (no parameters). */
  emptyTable(ref: TableRef): string;
}

/** The events past a lane's checkpoint `cp`; feed order: when the first is past it, all are (no compare per event). */
function pastCheckpoint(events: ChangeEvent[], cp: string | null): ChangeEvent[] {
  return cp === null || events.length === 0 || compareSequences(events[0]!.sequence, cp) > 0
    ? events : events.filter((e) => compareSequences(e.sequence, cp) > 0);
}

/** Attempts of one transaction that lost a deadlock or serialization conflict before the error goes up. */
const TX_ATTEMPTS = 5;

/**
 * `C`: a connection (session) of the dialect's driver. `P`: snapshot rows
 * as the dialect loads them (prepareRows), made before the transaction opens.
 */
export abstract class SqlApplier<C, P> implements Applier {
  /** Table creations of unseen tables, in order: every batch waits for those started before it. */
  private tableCreation: Promise<void> = Promise.resolve();
  /** Tables whose destination this instance made sure of (see unseenTables). */
  private readonly seenTables = new Set<string>();
  private meta?: Promise<void>;
  protected closing?: Promise<void>;
  /** Keyless-table snapshot rows held until the chunk's final call (see loadChunk). */
  private readonly keylessChunks = new Map<string, Row[]>();
  /** What each lane committed through this instance (a destination that forgets commits is caught). */
  private readonly laneCommits = new LaneCommits();
  /** What readCheckpoint found per lane: the checkpoint a batch sent at once expects before this instance committed one. */
  private readonly checkpointsRead = new Map<number, string>();
  /** Keyless tables: the stream changes their snapshot copy holds (skipped). */
  private readonly covers: SnapshotCovers;
  protected readonly rowsPerStatement: number;
  protected readonly logger: Logger;
  protected readonly jobId: string;

  /** The dialect's bookkeeping SQL. */
  protected abstract readonly ledger: LedgerSql;
  /** DDL runs inside the batch's transaction (runStep gets the DDL steps); false: it commits implicitly, so batches are cut at it. */
  protected abstract readonly transactionalDdl: boolean;

  constructor(kind: DbConnectionConfig['kind'], name: string, conn: DbConnectionConfig, protected readonly opts: SqlApplierOptions) {
    if (conn.kind !== kind) throw new FatalError(`${name} needs a ${kind} connection, got ${conn.kind}`);
    if (!opts.jobId) throw new FatalError(`${name} needs a jobId`);
    this.jobId = opts.jobId;
    this.rowsPerStatement = opts.rowsPerStatement ?? 1000;
    if (!(this.rowsPerStatement >= 1)) throw new FatalError('rowsPerStatement must be >= 1');
    this.logger = (opts.logger ?? silentLogger).child({ component: kind === 'postgres' ? 'pg-applier' : 'mysql-applier' });
    this.covers = new SnapshotCovers(async (chunkId) =>
      (await this.select<{ covers: string | null }>(undefined, this.ledger.readCover, [this.jobId, chunkId]))[0]?.covers ?? null,
    this.logger);
  }

  // ------------------------------------------------------------ the dialect

  /** Rows of a query, on `c` or (undefined) on any pooled connection; driver errors become apply errors. */
  protected abstract select<R>(c: C | undefined, sql: string, params: unknown[]): Promise<R[]>;
  /** A statement on `c` whose result is not needed. */
  protected abstract run(c: C, sql: string, params?: unknown[]): Promise<void>;
  /** `fn` in one transaction, run again whole after a conflict (see retried); on `on`, a session the caller holds, else on a pooled connection. */
  protected abstract tx<T>(fn: (c: C) => Promise<T>, on?: C): Promise<T>;
  /** One connection held for a series of statements and transactions. */
  protected abstract session<T>(fn: (c: C) => Promise<T>): Promise<T>;
  /** The code of a deadlock or serialization failure (the transaction was rolled back whole), else undefined. */
  protected abstract conflictCode(err: unknown): string | undefined;
  /** Creates the bookkeeping tables (and learns what the server can do). */
  protected abstract setUpMeta(): Promise<void>;
  /**
   * True when the destination table is there with every column of `table`, so ensureTableOn would do nothing:
   * one read, with no transaction and no lock (issue 12: the first batch of a stream paid about 100 ms for the
   * lock, the schema and the information_schema scan before its rows). False sends ensureTable the whole way.
   */
  protected tableReady?(table: TableInfo): Promise<boolean>;
  /** CREATE (schema and table) or ADD the missing columns, serialised across lanes and workers by a lock. */
  protected abstract ensureTableOn(c: C, src: TableRef, columns: ColumnType[], key: string[]): Promise<void>;
  /** Snapshot rows in the form loadRows writes; values are converted (and checked) here, before the transaction. */
  protected abstract prepareRows(ref: TableRef, columns: ColumnType[], rows: Row[]): P;
  /** Snapshot rows into the table (emptied first when keyless): inserted when keyless, upserted on the key when keyed. */
  protected abstract loadRows(c: C, ref: TableRef, table: TableInfo, rows: P): Promise<void>;
  /** One planned step, inside the batch's transaction. */
  protected abstract runStep(c: C, step: Step): Promise<void>;
  /** A DDL event other than TRUNCATE, outside any transaction (only when DDL is not transactional). */
  protected abstract applyDdl(c: C, e: ChangeEvent): Promise<void>;
  protected abstract endPool(): Promise<void>;

  // ------------------------------------------------------------ Applier

  async ensureTable(table: TableInfo): Promise<void> {
    await this.ensureMeta();
    if (this.tableReady && await this.tableReady(table)) return;
    const ensure = (c: C): Promise<void> => this.ensureTableOn(c, table, table.columns, table.key);
    await (this.transactionalDdl ? this.tx(ensure) : this.session(ensure));
  }

  /**
   * Keyed tables: each call upserts its rows in its own transaction (a re-run
   * rewrites the same rows), and the final call of a chunk also marks it done.
   * Keyless tables have a single chunk (snapshot-reader.ts) and nothing to
   * upsert on, so their rows are held until the final call, which replaces
   * the whole table and marks the chunk in one transaction: a crash before
   * that leaves nothing behind, a crash after leaves the chunk done.
   */
  async loadChunk(table: TableInfo, rows: Row[], chunkId: string, final: boolean, cover?: string): Promise<void> {
    const keyless = table.key.length === 0;
    if (keyless) {
      const held = this.keylessChunks.get(chunkId) ?? [];
      for (const r of rows) held.push(r);
      if (!final) { this.keylessChunks.set(chunkId, held); return; }
      this.keylessChunks.delete(chunkId);
      rows = held;
    }
    await this.ensureMeta();
    const ref = { schema: table.schema, table: table.table };
    const prepared = this.prepareRows(ref, table.columns, rows);
    if (!keyless) return this.loadPrepared(table, prepared, rows.length, chunkId, final);
    await this.tx(async (c) => {
      if ((await this.select(c, this.ledger.chunkDone, [this.jobId, chunkId])).length) return;
      if (keyless) {
        await this.run(c, this.ledger.emptyTable(destTable(ref, this.opts.rename)));
        await this.loadRows(c, ref, table, prepared);
      } else if (rows.length) {
        await this.loadRows(c, ref, table, prepared);
      }
      if (final) await this.run(c, this.ledger.markChunk, [this.jobId, chunkId, keyless ? cover ?? null : null]);
    });
  }

  /** Keyed tables: rows already prepared (`count` of them) upserted in one transaction, which also marks the chunk done when final. */
  protected async loadPrepared(table: TableInfo, prepared: P, count: number, chunkId: string, final: boolean): Promise<void> {
    await this.ensureMeta();
    const ref = { schema: table.schema, table: table.table };
    await this.tx(async (c) => {
      if ((await this.select(c, this.ledger.chunkDone, [this.jobId, chunkId])).length) return;
      if (count) await this.loadRows(c, ref, table, prepared);
      if (final) await this.run(c, this.ledger.markChunk, [this.jobId, chunkId, null]);
    });
  }

  async isChunkDone(chunkId: string): Promise<boolean> {
    await this.ensureMeta();
    return (await this.select(undefined, this.ledger.chunkDone, [this.jobId, chunkId])).length > 0;
  }

  async applyBatch(events: ChangeEvent[], lane: number, sequence: string): Promise<void> {
    await this.ensureMeta();
    events = await this.covers.filter(events);
    await this.createUnseen(events);
    if (this.transactionalDdl) {
      await this.applySegment(events, lane, sequence);
      return;
    }
    const segments = cutAtDdl(events);
    // Without DDL the batch is one transaction like any other, which the dialect may send at once (applySegment).
    if (this.applyAtOnce && segments.length === 1 && !segments[0]!.some((e) => e.op === Operation.Ddl)) {
      await this.applySegment(segments[0]!, lane, sequence);
      return;
    }
    await this.session(async (c) => {
      if (segments.length === 0) segments.push([]);
      for (let i = 0; i < segments.length; i++) {
        const seg = segments[i]!;
        const segSeq = i === segments.length - 1 ? sequence : seg[seg.length - 1]!.sequence;
        const ddl = seg.length === 1 && seg[0]!.op === 'ddl' ? seg[0]! : undefined;
        if (ddl && classifyDdl(ddl.ddl ?? '', { fromPgCapture: ddl.source === 'postgres', at: { schema: ddl.schema, table: ddl.table } }).kind !== 'truncate') {
          await this.applyDdlSegment(c, ddl, lane, segSeq);
        } else {
          await this.applySegment(seg, lane, segSeq, c);
        }
      }
    });
  }

  async resetForResnapshot(tables: TableInfo[], lanes: number, through: string): Promise<void> {
    await this.ensureMeta();
    await this.tx(async (c) => {
      // Lane rows locked first: an apply of the previous run still committing waits, then finds itself behind `through`.
      await this.run(c, this.ledger.lockLanes, [this.jobId]);
      for (const t of tables) await this.run(c, this.ledger.emptyTable(destTable({ schema: t.schema, table: t.table }, this.opts.rename)));
      await this.run(c, this.ledger.forgetChunks, [this.jobId]);
      for (let lane = 0; lane < lanes; lane++) await this.run(c, this.ledger.writeCheckpoint, [this.jobId, lane, through]);
    });
  }

  async readCheckpoint(lane: number): Promise<string | null> {
    await this.ensureMeta();
    const cp = (await this.select<{ sequence: string }>(undefined, this.ledger.readCheckpoint, [this.jobId, lane]))[0]?.sequence ?? null;
    if (cp !== null) this.checkpointsRead.set(lane, cp);
    return cp;
  }

  close(): Promise<void> {
    this.closing ??= this.endPool().catch((err: Error) => this.logger.warn({ err: err.message }, 'closing the pool failed'));
    return this.closing;
  }

  // ------------------------------------------------------------ internals

  private ensureMeta(): Promise<void> {
    this.meta ??= this.setUpMeta().catch((err) => { this.meta = undefined; throw err; });
    return this.meta;
  }

  /**
   * Lanes run concurrently: a lane that finds a table already seen must still wait until the lane
   * that saw it first has created it, or its rows reach a table that does not exist yet.
   */
  private async createUnseen(events: ChangeEvent[]): Promise<void> {
    const fresh = unseenTables(events, this.seenTables);
    const creation = this.tableCreation.then(async () => { for (const t of fresh) await this.ensureTable(t); });
    this.tableCreation = creation.catch(() => undefined);
    try {
      await creation;
    } catch (err) {
      unsee(fresh, this.seenTables);
      throw err;
    }
  }

  /**
   * Rows (and, with transactional DDL, DDL) of one lane and the lane's checkpoint `sequence`, in one transaction.
   * When this instance knows the lane's checkpoint (it committed it last, or read it at the start), the batch is
   * planned against it and the dialect may send the whole transaction at once (applyAtOnce); the dialect's guard
   * makes that transaction fail, and this one run instead, when the checkpoint turns out to be something else.
   */
  private async applySegment(events: ChangeEvent[], lane: number, sequence: string, on?: C): Promise<void> {
    const expected = this.knownCheckpoint(lane);
    let planned: { cp: string; steps: Step[] } | undefined;
    if (expected !== undefined && on === undefined && this.applyAtOnce && compareSequences(sequence, expected) > 0) {
      planned = { cp: expected, steps: planBatch(pastCheckpoint(events, expected)) };
      if (await this.applyAtOnce(new Map([[lane, expected]]), planned.steps, sequence)) {
        this.laneCommits.committed(lane, sequence);
        return;
      }
    }
    let written = false;
    await this.laneTx(lane, async (c, cp) => {
      written = false;
      this.laneCommits.check(lane, cp);
      const steps = planned && cp === planned.cp ? planned.steps : planBatch(pastCheckpoint(events, cp));
      for (const step of steps) await this.runStep(c, step);
      if (cp !== null && compareSequences(sequence, cp) <= 0) return;
      await this.lastCheckpointWrite(c, lane, sequence);
      written = true;
    }, on);
    if (written) this.laneCommits.committed(lane, sequence);
  }

  /**
   * A whole transaction in one exchange with the destination, when the dialect can: lock the checkpoints of
   * the lanes of `expected` and fail unless each holds its expected sequence, run `steps`, move those lanes'
   * checkpoints to `sequence`, commit. True when committed; false when not sent (a step it cannot send so)
   * or when it failed and was rolled back, so the caller applies the batch the ordinary way, which reads
   * the checkpoints again.
   */
  protected applyAtOnce?(expected: Map<number, string>, steps: Step[], sequence: string): Promise<boolean>;

  /** What the lane's checkpoint holds as far as this instance knows: what it committed there last, or read at the start. */
  private knownCheckpoint(lane: number): string | undefined {
    return this.laneCommits.last(lane) ?? this.checkpointsRead.get(lane);
  }

  /**
   * Applier.applyWhole: each lane's part filtered by that lane's checkpoint, planned together (keys are disjoint
   * between lanes, so one plan is the lanes' plans side by side, with one statement per table instead of one per
   * lane and table), written with every lane's checkpoint in one transaction. Sent at once (applyAtOnce) when
   * this instance knows the checkpoints; otherwise, or when that fails, under the lock of every lane's row.
   */
  async applyWhole(parts: ChangeEvent[][], sequence: string): Promise<void> {
    if (parts.length === 1) return this.applyBatch(parts[0]!, 0, sequence);
    if (parts.some((p) => p.some((e) => e.op === Operation.Ddl))) throw new FatalError('applyWhole: cut the batch at DDL first (cutAtDdl)');
    await this.ensureMeta();
    const kept = await Promise.all(parts.map((p) => this.covers.filter(p)));
    await this.createUnseen(kept.flat());
    // Lanes already at or past `sequence` hold everything of theirs here: no guard, no write.
    const behind = new Map<number, string>();
    let allKnown = true;
    kept.forEach((_, lane) => {
      const cp = this.knownCheckpoint(lane);
      if (cp === undefined) allKnown = false;
      else if (compareSequences(sequence, cp) > 0) behind.set(lane, cp);
    });
    let planned: Step[] | undefined;
    if (allKnown && behind.size > 0 && this.applyAtOnce) {
      planned = planBatch(kept.flatMap((p, lane) => (behind.has(lane) ? pastCheckpoint(p, behind.get(lane)!) : [])));
      if (await this.applyAtOnce(behind, planned, sequence)) {
        for (const lane of behind.keys()) this.laneCommits.committed(lane, sequence);
        return;
      }
    }
    const written: number[] = [];
    await this.tx(async (c) => {
      written.length = 0;
      const rows = await this.select<{ lane: number | string; sequence: string }>(c, this.ledger.lockLanes, [this.jobId]);
      const cps = kept.map((_, lane) => rows.find((r) => Number(r.lane) === lane)?.sequence ?? null);
      cps.forEach((cp, lane) => this.laneCommits.check(lane, cp));
      const asPlanned = planned !== undefined && cps.every((cp, lane) => (behind.has(lane) ? cp === behind.get(lane) : cp !== null && compareSequences(sequence, cp) <= 0));
      const steps = asPlanned ? planned! : planBatch(kept.flatMap((p, lane) => pastCheckpoint(p, cps[lane] ?? null)));
      for (const step of steps) await this.runStep(c, step);
      for (let lane = 0; lane < cps.length; lane++) {
        const cp = cps[lane]!;
        if (cp !== null && compareSequences(sequence, cp) <= 0) continue;
        await this.run(c, this.ledger.writeCheckpoint, [this.jobId, lane, sequence]);
        written.push(lane);
      }
    });
    for (const lane of written) this.laneCommits.committed(lane, sequence);
  }

  /**
   * `fn` in one transaction that holds the lane's checkpoint row locked (`cp`: the checkpoint read under
   * that lock). A dialect may open the transaction and take the lock in one round trip.
   */
  protected laneTx(lane: number, fn: (c: C, cp: string | null) => Promise<void>, on?: C): Promise<void> {
    return this.tx(async (c) => fn(c, await this.lockCheckpoint(c, lane)), on);
  }

  /** The lane's checkpoint moved to `sequence` as the transaction's last statement; a dialect may send it with COMMIT. */
  protected async lastCheckpointWrite(c: C, lane: number, sequence: string): Promise<void> {
    await this.run(c, this.ledger.writeCheckpoint, [this.jobId, lane, sequence]);
  }

  /** DDL that commits by itself: run unless the checkpoint is past it, then move the checkpoint to `sequence`. */
  private async applyDdlSegment(c: C, ddl: ChangeEvent, lane: number, sequence: string): Promise<void> {
    const cp = (await this.select<{ sequence: string }>(c, this.ledger.readCheckpoint, [this.jobId, lane]))[0]?.sequence ?? null;
    this.laneCommits.check(lane, cp);
    if (cp === null || compareSequences(ddl.sequence, cp) > 0) await this.applyDdl(c, ddl);
    let written = false;
    await this.tx(async (t) => { written = await this.writeCheckpoint(t, lane, sequence, await this.lockCheckpoint(t, lane)); }, c);
    if (written) this.laneCommits.committed(lane, sequence);
  }

  private async lockCheckpoint(c: C, lane: number): Promise<string | null> {
    return (await this.select<{ sequence: string }>(c, this.ledger.lockCheckpoint, [this.jobId, lane]))[0]?.sequence ?? null;
  }

  /** True when it moved the checkpoint (to `sequence`); a checkpoint never moves backwards. */
  private async writeCheckpoint(c: C, lane: number, sequence: string, cp: string | null): Promise<boolean> {
    if (cp !== null && compareSequences(sequence, cp) <= 0) return false;
    await this.run(c, this.ledger.writeCheckpoint, [this.jobId, lane, sequence]);
    return true;
  }

  /**
   * A transaction that lost a deadlock or serialization conflict was rolled
   * back whole, so it runs again (`once` opens and commits it). Concurrent
   * lanes write disjoint keys, yet gap locks (InnoDB) and conflicting
   * serializable reads can still make two of them conflict.
   */
  protected async retried<T>(once: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await once();
      } catch (err) {
        const code = this.conflictCode(err);
        if (attempt >= TX_ATTEMPTS || code === undefined) throw err;
        this.logger.debug({ attempt, code }, 'transaction retried');
        await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20));
      }
    }
  }
}
