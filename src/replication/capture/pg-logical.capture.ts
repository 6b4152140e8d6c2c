/**
 * PostgreSQL capture over logical replication (pgoutput), built on
 * pg-logical-replication for the wire (through pg-replication-stream.ts,
 * which decodes each message in place) and PgTransactionAssembler for the
 * mapping.
 *
 * Lifecycle:
 *
 *   new ──prepare()──> prepared (replication session idle, snapshot importable)
 *          │                 │
 *          └──────run()──────┴─> streaming ──abort──> stopped ──run()──> streaming ...
 *   drop() removes slot + publication; close() ends everything (idempotent).
 *
 * Invariants:
 * - The publication exists before the slot: pgoutput reads publications with
 *   the historic catalog snapshot, so a publication created after the slot's
 *   start point would be invisible to it.
 * - A transaction is acknowledged (confirmed_flush advanced to its commit end
 *   LSN) only after handler(tx) resolved. Anything not acknowledged is sent
 *   again by the server on the next run(), with the same commit LSN and so the
 *   same sequences.
 * - Values are never parsed by pg: the plugin's per-column parsers are
 *   replaced by "keep the text" and pg-values.ts does the conversion.
 *
 * REPLICA IDENTITY decision: prepare() sets REPLICA IDENTITY FULL on every
 * included table that does not have it and that the user owns (option
 * `replicaIdentityFull`, default true). Without it update/delete events carry
 * only the key in `before`, and tables without a primary key cannot even be
 * updated once published. It costs extra WAL per update/delete, which is the
 * price of full before images. Tables the user does not own are left alone
 * with a warning; their events carry `beforeKeyOnly: true`.
 */
import pg from 'pg';
import type { Pgoutput } from 'pg-logical-replication';
import { AppendCadence } from './append-cadence.ts';
import { Fifo } from './fifo.ts';
import { PgReplicationStream, RawTextPgoutputPlugin, type ReplicationHandlers } from './pg-replication-stream.ts';
import type { CapturedTransaction, SourcePosition } from '../change-event.ts';
import { matchesFilter } from '../connection-config.ts';
import { classify, FatalError, LogLostError, RetriableError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { bigIntToLsn, lsnToBigInt } from '../sequence.ts';
import type { CaptureOptions, CaptureRunOptions, CaptureSource, PreparedCapture } from './capture-source.ts';
import { describePgTarget, pgClientConfig, quoteIdent, quoteLiteral, quoteTable } from './pg-connection.ts';
import { canonicalLsn, PgTransactionAssembler, type SchemaBaseline } from './pg-transaction-assembler.ts';
import { ensurePublication, publicationExists } from './pg-publication.ts';

export const PG_OBJECT_PREFIX = 'tributary_';
/** NAMEDATALEN - 1 */
/**
 * Changes of a partitioned table's partitions are published under the root
 * table's name and columns: the snapshot reads the root, and the destination
 * has one table, as the source's readers see it (docs/consistency.md).
 */

const PG_MAX_NAME = 63;

/** Slot and publication name for a job: `tributary_<jobId sanitized to [a-z0-9_]>`. */
export function pgCaptureName(jobId: string): string {
  const name = PG_OBJECT_PREFIX + jobId.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return name.slice(0, PG_MAX_NAME);
}

export interface PgLogicalCaptureOptions extends CaptureOptions {
  /** Set REPLICA IDENTITY FULL on included tables the user owns. Default true. */
  replicaIdentityFull?: boolean;
  /** Interval of standby status updates (keeps the walsender alive while a handler is slow). Default 10000 ms. */
  statusIntervalMs?: number;
}

/** Longest delay between handling a transaction and confirming it to the server. */
const STATUS_THROTTLE_MS = 100;
/** Bounds of a batch of whole transactions handed over at once (see flushBatch). */
const BATCH_MAX_EVENTS = 1000;
const BATCH_MAX_TRANSACTIONS = 500;
/** Longest a batch waits for more (the server keeps sending other tables' empty transactions on a busy database). */
const BATCH_MAX_WAIT_MS = 20;
/** Idle slots confirm the server's sent position this often (CaptureOptions.heartbeatMs). */
export const DEFAULT_HEARTBEAT_MS = 10_000;
/** Decoded messages queued ahead of the handler before the replication socket is paused, and resumed. */
const QUEUE_HIGH = 5000;
const QUEUE_LOW = 1000;

interface SlotRow { plugin: string; database: string; confirmed: string | null; restart: string | null }

export class PgLogicalCapture implements CaptureSource {
  readonly slotName: string;
  readonly publicationName: string;
  private readonly logger: Logger;
  private readonly pool: pg.Pool;
  private exportClient?: pg.Client;
  private prepared?: PreparedCapture;
  /** Published tables' columns as of the slot's consistent point; valid for the first run only. */
  private exactBaseline?: SchemaBaseline;
  private active?: { stop: () => void; done: Promise<unknown> };
  private closing?: Promise<void>;

  constructor(private readonly opts: PgLogicalCaptureOptions) {
    if (opts.connection.kind !== 'postgres') throw new FatalError('PgLogicalCapture needs a postgres connection');
    if (!opts.jobId) throw new FatalError('PgLogicalCapture needs a jobId');
    if (opts.from && opts.from.kind !== 'postgres') throw new FatalError(`cannot resume a PostgreSQL capture from a ${opts.from.kind} position`);
    this.slotName = pgCaptureName(opts.jobId);
    this.publicationName = this.slotName;
    this.logger = opts.logger.child({ component: 'pg-capture', slot: this.slotName, target: describePgTarget(opts.connection) });
    this.pool = new pg.Pool({ ...pgClientConfig(opts.connection), max: 2, idleTimeoutMillis: 30_000 });
    this.pool.on('error', (err) => this.logger.warn({ err: err.message }, 'idle catalog connection lost'));
  }

  async prepare(): Promise<PreparedCapture> {
    this.assertOpen();
    if (this.prepared && this.exportClient) return this.prepared;
    try {
      await ensurePublication({ pool: this.pool, publicationName: this.publicationName, tables: this.opts.tables, user: this.opts.connection.user, logger: this.logger });
      if (this.opts.replicaIdentityFull ?? true) await this.ensureReplicaIdentityFull();
      const slot = await this.slot();
      if (slot) {
        if (slot.plugin !== 'pgoutput') throw new FatalError(`replication slot ${this.slotName} exists with plugin ${slot.plugin}, expected pgoutput`);
        this.prepared = { position: { kind: 'postgres', lsn: canonicalLsn(slot.confirmed ?? slot.restart) } };
        return this.prepared;
      }
      if (this.opts.resuming) throw this.slotLost();
      this.prepared = await this.createSlot();
      if (this.prepared.snapshotName) this.exactBaseline = await this.loadBaseline(this.prepared.snapshotName);
      return this.prepared;
    } catch (err) {
      throw classify(err);
    }
  }

  async run(handler: (tx: CapturedTransaction) => Promise<void>, signal: AbortSignal, runOpts: CaptureRunOptions = {}): Promise<void> {
    this.assertOpen();
    if (this.active) throw new FatalError(`capture ${this.slotName} is already running`);
    if (signal.aborted) return;
    // The exported snapshot is only needed until streaming starts.
    await this.closeExportClient();
    let startLsn: bigint;
    let baseline: SchemaBaseline;
    const exact = this.exactBaseline;
    // Once a run has started, acknowledgements move the slot past that baseline.
    this.exactBaseline = undefined;
    try {
      const slot = await this.slot();
      if (!slot) throw this.opts.resuming ? this.slotLost() : new FatalError(`replication slot ${this.slotName} does not exist: prepare() must run first (if it was dropped, changes since were lost)`);
      if (!(await publicationExists({ pool: this.pool, publicationName: this.publicationName }))) throw new FatalError(`publication ${this.publicationName} does not exist: prepare() must run first`);
      const confirmed = lsnToBigInt(slot.confirmed ?? slot.restart ?? '0/0');
      const from = this.opts.from?.kind === 'postgres' ? lsnToBigInt(this.opts.from.lsn) : 0n;
      startLsn = from > confirmed ? from : confirmed;
      baseline = exact && startLsn === confirmed ? exact : await this.loadBaseline();
    } catch (err) {
      throw classify(err);
    }
    const assembler = new PgTransactionAssembler({
      catalog: this.pool, tables: this.opts.tables, selectorColumn: this.opts.selectorColumn, logger: this.logger,
      baseline, baselineExact: baseline === exact,
    });
    const done = this.stream(assembler, handler, signal, startLsn, runOpts.onBatch);
    return done;
  }

  async currentPosition(): Promise<SourcePosition> {
    try {
      const res = await this.pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      return { kind: 'postgres', lsn: res.rows[0]!.lsn };
    } catch (err) {
      throw classify(err);
    }
  }

  async drop(): Promise<void> {
    this.assertOpen();
    await this.stopActive();
    await this.closeExportClient();
    try {
      // A walsender still holding the slot (a crashed worker's, say) blocks the drop: end it first.
      await this.pool.query(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
          WHERE slot_name = $1 AND active_pid IS NOT NULL AND active_pid <> pg_backend_pid()`,
        [this.slotName],
      );
      for (let attempt = 0; ; attempt++) {
        try {
          await this.pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [this.slotName]);
          break;
        } catch (err) {
          // 55006: still active, the terminated walsender has not exited yet.
          if ((err as { code?: string }).code !== '55006' || attempt >= 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await this.pool.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(this.publicationName)}`);
      this.prepared = undefined;
      this.logger.info('dropped replication slot and publication');
    } catch (err) {
      throw classify(err);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.stopActive().catch(() => undefined);
      await this.closeExportClient().catch(() => undefined);
      await this.pool.end().catch((err: unknown) => this.logger.warn({ err: String(err) }, 'catalog pool close failed'));
    })();
    return this.closing;
  }

  /** Stream until aborted or failed. See the class comment for the acknowledgement invariant. */
  private stream(
    assembler: PgTransactionAssembler,
    handler: (tx: CapturedTransaction) => Promise<void>,
    signal: AbortSignal,
    startLsn: bigint,
    onBatch?: (txs: CapturedTransaction[]) => Promise<void>,
  ): Promise<void> {
    // Set below, once the queue they feed exists; nothing arrives before subscribe().
    const handlers: ReplicationHandlers = { message: () => undefined, heartbeat: () => undefined };
    const service = new PgReplicationStream(pgClientConfig(this.opts.connection, { replication: true }), {
      // Never let the library acknowledge on its own: its timer would confirm what was received, not what was handled.
      acknowledge: { auto: false, timeoutSeconds: 0 },
      // The library's flow control pauses and resumes the socket around every message, which made
      // the stream latency-bound; messages are queued here instead and the socket paused only when
      // the queue is long (see handlers.message below), so memory stays bounded all the same.
      flowControl: { enabled: false },
    }, handlers);
    const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [this.publicationName] });
    let confirmed = startLsn;
    // Handled but not yet old enough to confirm (ackDelayMs): [handled at, end LSN], in LSN order.
    const ackDelayMs = this.opts.ackDelayMs ?? 0;
    const pendingAcks: [number, bigint][] = [];
    let handled = startLsn;
    const ripen = (all: boolean): void => {
      const cutoff = Date.now() - ackDelayMs;
      while (pendingAcks.length > 0 && (all || pendingAcks[0]![0] <= cutoff)) {
        const [, lsn] = pendingAcks.shift()!;
        if (lsn > confirmed) confirmed = lsn;
      }
    };
    let finished = false;
    let settle!: (err?: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      settle = (err?: unknown) => (err === undefined ? resolve() : reject(classify(err)));
    });
    // The library adds 1 to what it sends; we want the server to hold exactly the commit end LSN.
    const sendStatus = (): void => {
      ripen(false);
      if (!finished) service.acknowledge(bigIntToLsn(confirmed > 0n ? confirmed - 1n : 0n)).catch(() => undefined);
    };
    let lastStatusAt = 0;
    // Heartbeat: the server's keepalives carry how far it has sent (decoded, and skipped what the publication
    // does not cover). With nothing in flight here every transaction committed before that point was handled,
    // so confirming it is safe, and it lets an idle slot release the WAL other databases write.
    const heartbeatMs = this.opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    let serverSent = 0n;
    let lastBeatAt = Date.now();
    let idle: () => boolean = () => false;
    const heartbeat = (): void => {
      if (heartbeatMs <= 0 || serverSent <= confirmed || !idle() || Date.now() - lastBeatAt < heartbeatMs) return;
      lastBeatAt = Date.now();
      confirmed = serverSent;
      if (serverSent > handled) handled = serverSent;
      service.acknowledge(bigIntToLsn(confirmed - 1n)).catch(() => undefined);
    };
    const timer = setInterval(() => { sendStatus(); heartbeat(); }, Math.min(this.opts.statusIntervalMs ?? 10_000, 1000));
    const finish = (err?: unknown): void => {
      if (finished) return;
      // Confirm what was handled since the last (throttled) status before the connection goes.
      sendStatus();
      finished = true;
      clearInterval(timer);
      signal.removeEventListener('abort', onAbort);
      if (err !== undefined) this.logger.warn({ err: (err as Error)?.message ?? String(err) }, 'capture stream failed');
      service.stop()
        .catch(() => undefined)
        .finally(() => {
          service.removeAllListeners();
          this.active = undefined;
          settle(err);
        });
    };
    const onAbort = (): void => finish();
    signal.addEventListener('abort', onAbort, { once: true });
    this.active = { stop: onAbort, done: done.catch(() => undefined) };
    // Aborted during the set-up awaits: the listener above would never fire.
    if (signal.aborted) {
      finish();
      return done;
    }

    // Messages in arrival order, handled one at a time; the socket pauses above QUEUE_HIGH and resumes at QUEUE_LOW.
    const queue = new Fifo<Pgoutput.Message>();
    let draining = false;
    let socketPaused = false;
    const socket = (): { pause?: () => void; resume?: () => void } | undefined =>
      (service as unknown as { _connection?: { stream?: { pause?: () => void; resume?: () => void } } })._connection?.stream;
    let piecesOpen = false;
    // Whole transactions received back to back, handed over together (onBatch) once no further message is
    // waiting or the batch is full: small transactions then cost one feed round trip per batch, not each.
    let batch: CapturedTransaction[] = [];
    let batchEvents = 0;
    let batchSince = 0;
    const cadence = new AppendCadence();
    idle = () => queue.length === 0 && !draining && !piecesOpen && !assembler.inTransaction && pendingAcks.length === 0 && handled === confirmed && batch.length === 0;
    const settled = (tx: CapturedTransaction): void => {
      const end = tx.resume.kind === 'postgres' ? lsnToBigInt(tx.resume.lsn) : 0n;
      if (end > handled) {
        handled = end;
        if (ackDelayMs > 0) pendingAcks.push([Date.now(), end]);
        else confirmed = end;
      }
      // A status message per transaction costs a round trip each on small transactions;
      // confirm at most every STATUS_THROTTLE_MS (the timer below sends the trailing one).
      const now = Date.now();
      if (now - lastStatusAt >= STATUS_THROTTLE_MS) { lastStatusAt = now; sendStatus(); }
    };
    const flushBatch = async (): Promise<void> => {
      if (batch.length === 0) return;
      const txs = batch;
      batch = []; batchEvents = 0;
      cadence.handedOver();
      const withEvents = txs.filter((t) => t.events.length > 0);
      // Only empty transactions: nothing to hand over, only their position to acknowledge.
      if (withEvents.length === 1 && txs.length === 1) await handler(txs[0]!);
      else if (withEvents.length > 0) await onBatch!(txs);
      // Aborted while the handler ran: the connection is gone, the server sends these again next run.
      if (finished) return;
      settled(txs.at(-1)!);
    };
    /** A transaction (or a piece of one) the assembler finished. */
    const handle = async (tx: CapturedTransaction): Promise<void> => {
      if (tx.partial) {
        await flushBatch();
        if (finished) return;
        // Not the end of its transaction: nothing to acknowledge; a restart reads the transaction again from here.
        tx.resume = { kind: 'postgres', lsn: bigIntToLsn(handled) };
        piecesOpen = true;
        await handler(tx);
        return;
      }
      if (onBatch && !piecesOpen) {
        // Empty transactions join too: acknowledging one must not pass a transaction still in the batch.
        if (batch.length === 0) batchSince = Date.now();
        batch.push(tx);
        batchEvents += tx.events.length;
        // Not full: more may follow (drain hands the batch over once nothing more is queued, at the cadence).
        if (batchEvents < BATCH_MAX_EVENTS && batch.length < BATCH_MAX_TRANSACTIONS && Date.now() - batchSince < BATCH_MAX_WAIT_MS) return;
        await flushBatch();
        return;
      }
      await flushBatch();
      if (finished) return;
      // The end of a transaction handed over in pieces is delivered even when empty: it records the resume position.
      if (tx.events.length > 0 || piecesOpen) await handler(tx);
      piecesOpen = false;
      // Aborted while the handler ran: the connection is gone, the server sends this one again next run.
      if (finished) return;
      settled(tx);
    };
    const drain = async (): Promise<void> => {
      draining = true;
      try {
        while (queue.length > 0 && !finished) {
          // Most messages are rows that finish nothing: taken without a promise (acceptNow).
          const r = assembler.acceptNow(queue.shift()!);
          const tx = r instanceof Promise ? await r : r;
          if (tx) await handle(tx);
          if (socketPaused && queue.length <= QUEUE_LOW) { socketPaused = false; socket()?.resume?.(); }
          // Nothing more received: what the batch holds goes now (the next transaction may be far off), or, when
          // the previous batch went less than the cadence ago, once the cadence is up, with what arrived meanwhile.
          if (queue.length === 0 && batch.length > 0) {
            if (await cadence.linger()) {
              if (finished) break;
              if (queue.length > 0) continue;
            }
            await flushBatch();
          }
        }
      } catch (err) {
        finish(err ?? new RetriableError('handler failed'));
      } finally {
        draining = false;
      }
    };
    handlers.message = (msg: Pgoutput.Message) => {
      if (finished) return;
      queue.push(msg);
      if (!socketPaused && queue.length >= QUEUE_HIGH) { socketPaused = true; socket()?.pause?.(); }
      if (!draining) void drain();
    };
    handlers.heartbeat = (sent: bigint, shouldRespond: boolean) => {
      if (sent > serverSent) serverSent = sent;
      if (shouldRespond) sendStatus();
    };
    service.on('error', (err: Error) => finish(err));
    this.logger.info({ from: bigIntToLsn(startLsn) }, 'starting logical replication');
    service.subscribe(plugin, this.slotName, bigIntToLsn(startLsn)).then(
      () => finish(finished ? undefined : new RetriableError('replication stream ended by the server')),
      (err: unknown) => finish(err ?? new RetriableError('replication stream failed')),
    );
    return done;
  }

  /** See the class comment for why FULL, and why only on owned tables. */
  private async ensureReplicaIdentityFull(): Promise<void> {
    const res = await this.pool.query<{ schema: string; table: string; owned: boolean }>(
      `SELECT n.nspname::text AS schema, c.relname::text AS table, pg_has_role(c.relowner, 'USAGE') AS owned
         FROM pg_publication_tables pt
         JOIN pg_namespace n ON n.nspname = pt.schemaname
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
        WHERE pt.pubname = $1 AND c.relreplident <> 'f'`,
      [this.publicationName],
    );
    for (const r of res.rows) {
      if (!matchesFilter(this.opts.tables, r.schema, r.table)) continue;
      if (!r.owned) {
        this.logger.warn({ table: `${r.schema}.${r.table}` }, 'not the table owner: REPLICA IDENTITY left as is, before images hold only the key');
        continue;
      }
      await this.pool.query(`ALTER TABLE ${quoteTable(r.schema, r.table)} REPLICA IDENTITY FULL`);
      this.logger.info({ table: `${r.schema}.${r.table}` }, 'set REPLICA IDENTITY FULL');
    }
  }

  /**
   * CREATE_REPLICATION_SLOT over a replication session, exporting a snapshot.
   * The session stays open and idle: the snapshot is importable only as long
   * as it does (until run() or close()).
   */
  private async createSlot(): Promise<PreparedCapture> {
    const client = new pg.Client(pgClientConfig(this.opts.connection, { replication: true }));
    client.on('error', (err) => this.logger.warn({ err: err.message }, 'snapshot-exporting replication session lost'));
    await client.connect();
    try {
      const res = await client.query<{ consistent_point: string; snapshot_name: string }>(
        `CREATE_REPLICATION_SLOT ${quoteIdent(this.slotName)} LOGICAL pgoutput EXPORT_SNAPSHOT`,
      );
      const row = res.rows[0]!;
      this.exportClient = client;
      this.logger.info({ consistentPoint: row.consistent_point, snapshot: row.snapshot_name }, 'created replication slot');
      return { position: { kind: 'postgres', lsn: canonicalLsn(row.consistent_point) }, snapshotName: row.snapshot_name };
    } catch (err) {
      await client.end().catch(() => undefined);
      if ((err as { code?: string }).code === '42710') {
        // Created concurrently by another prepare(): use it (no exported snapshot then).
        const slot = await this.slot();
        if (slot) return { position: { kind: 'postgres', lsn: canonicalLsn(slot.confirmed ?? slot.restart) } };
      }
      throw err;
    }
  }

  /**
   * Columns of the published tables: the baseline for synthetic DDL. Under
   * the exported snapshot they are exactly those at the slot's consistent
   * point; otherwise they are the catalog's now.
   */
  private async loadBaseline(snapshotName?: string): Promise<SchemaBaseline> {
    const client = await this.pool.connect();
    let res: pg.QueryResult<{ oid: string; schema: string; table: string; names: string[]; types: string[]; labels: string[]; attnums: number[] }>;
    try {
      if (snapshotName) {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await client.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotName)}`);
      }
      res = await client.query(
      `SELECT c.oid::int8 AS oid, pt.schemaname::text AS schema, pt.tablename::text AS table,
              array_agg(a.attname::text ORDER BY a.attnum) AS names, array_agg(a.attnum::int ORDER BY a.attnum) AS attnums,
              array_agg(COALESCE((SELECT string_agg(e.enumlabel::text, E'\\x01' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = a.atttypid), '') ORDER BY a.attnum) AS labels,
              array_agg(format_type(a.atttypid, NULLIF(a.atttypmod, -1)) ORDER BY a.attnum) AS types
         FROM pg_publication_tables pt
         JOIN pg_namespace n ON n.nspname = pt.schemaname
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE pt.pubname = $1
        GROUP BY 1, 2, 3`,
        [this.publicationName],
      );
      if (snapshotName) await client.query('COMMIT');
    } catch (err) {
      if (snapshotName) await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    const out: SchemaBaseline = new Map();
    for (const r of res.rows) {
      const labels = new Map<string, string[]>();
      r.names.forEach((n, i) => { if (r.labels[i]) labels.set(n, r.labels[i]!.split('\x01')); });
      out.set(Number(r.oid), { schema: r.schema, table: r.table, types: new Map(r.names.map((n, i) => [n, r.types[i]!])), labels,
        attnums: new Map(r.names.map((n, i) => [n, Number(r.attnums[i])])),
      });
    }
    return out;
  }

  private async slot(): Promise<SlotRow | undefined> {
    const res = await this.pool.query<SlotRow>(
      `SELECT plugin::text, database::text, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart
         FROM pg_replication_slots WHERE slot_name = $1`,
      [this.slotName],
    );
    return res.rows[0];
  }

  private async closeExportClient(): Promise<void> {
    const client = this.exportClient;
    this.exportClient = undefined;
    if (client) await client.end().catch(() => undefined);
  }

  private async stopActive(): Promise<void> {
    const active = this.active;
    if (!active) return;
    active.stop();
    await active.done;
  }

  /** The slot of a capture that already streamed is gone: a new one would silently start later and skip changes. */
  private slotLost(): LogLostError {
    const at = this.opts.from?.kind === 'postgres' ? this.opts.from.lsn : undefined;
    return new LogLostError(
      `replication slot ${this.slotName} was dropped${at ? ` (the capture was at LSN ${at})` : ''}: changes committed since are lost to this job. `
      + 'Re-snapshot by starting it from scratch (delete the job and create it again, or create it with onLogLoss: RESNAPSHOT to have it do so by itself); '
      + 'a new slot is not created silently, it would skip those changes',
      `replication slot ${this.slotName} dropped${at ? ` at LSN ${at}` : ''}`);
  }

  private assertOpen(): void {
    if (this.closing) throw new FatalError(`capture ${this.slotName} is closed`);
  }
}
