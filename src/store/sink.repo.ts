/**
 * Sinks and their dead-letter lists in the metadata database. Secrets
 * (webhook secret, broker passwords and tokens) are stored encrypted with the
 * connection passwords' SecretBox and only `secrets()` decrypts them (for the
 * sink task and replay). Every row read for an API leaves them out.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { SinkDelivery, SinkFormat, SinkKind, SinkStatus } from '../domain/sink-model.ts';
import type { ChangeEvent } from '../replication/change-event.ts';
import type { DeadLetter } from '../replication/sinks/sink-runner.ts';
import type { SecretBox } from './secrets.ts';
import { translateStoreError } from './store-errors.ts';

export interface SinkRow {
  id: string;
  name: string;
  feed: string;
  kind: SinkKind;
  format: SinkFormat;
  config: Record<string, unknown>;
  /** Names of the secrets set (values never leave the store). */
  secret_keys: string[];
  tables: string[];
  delivery: SinkDelivery;
  status: SinkStatus;
  error: string | null;
  run_id: number;
  position: string | null;
  delivered: string;
  failed: string;
  lag_ms: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewSink {
  name: string; feed: string; kind: SinkKind; format: SinkFormat; config: Record<string, unknown>;
  secrets: Record<string, unknown>; tables: string[]; delivery: SinkDelivery; position: string | null;
}

export interface DeadLetterRow {
  id: string;
  sink_id: string;
  sequence: string;
  message_id: string;
  msg_key: string;
  event: ChangeEvent;
  error: string;
  attempts: number;
  created_at: Date;
}

const COLS = 'id, name, feed, kind, format, config, secret_keys, tables, delivery, status, error, run_id, position, delivered, failed, lag_ms, created_at, updated_at';
const UUID_RE = /^[0-9a-f-]{36}$/i;

export class SinkRepo {
  constructor(private readonly pool: pg.Pool, private readonly box: SecretBox) {}

  async create(s: NewSink): Promise<SinkRow> {
    const keys = Object.keys(s.secrets).filter((k) => s.secrets[k] !== undefined);
    const { rows } = await this.pool.query<SinkRow>(
      `INSERT INTO sinks (id, name, feed, kind, format, config, secrets_enc, secret_keys, tables, delivery, position)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING ${COLS}`,
      [randomUUID(), s.name, s.feed, s.kind, s.format, JSON.stringify(s.config), keys.length ? this.box.encrypt(JSON.stringify(s.secrets)) : null,
        JSON.stringify(keys), JSON.stringify(s.tables), JSON.stringify(s.delivery), s.position],
    ).catch(translateStoreError);
    return rows[0]!;
  }

  /** By id or name. */
  async get(idOrName: string): Promise<SinkRow | undefined> {
    const { rows } = await this.pool.query<SinkRow>(`SELECT ${COLS} FROM sinks WHERE ${UUID_RE.test(idOrName) ? 'id = $1' : 'name = $1'}`, [idOrName]);
    return rows[0];
  }

  async list(): Promise<SinkRow[]> {
    return (await this.pool.query<SinkRow>(`SELECT ${COLS} FROM sinks ORDER BY created_at, name`)).rows;
  }

  /** Decrypted secrets. For the sink task and replay only: never return them from an API. */
  async secrets(id: string): Promise<Record<string, unknown>> {
    const { rows } = await this.pool.query<{ secrets_enc: string | null }>('SELECT secrets_enc FROM sinks WHERE id = $1', [id]);
    const enc = rows[0]?.secrets_enc;
    return enc ? (JSON.parse(this.box.decrypt(enc)) as Record<string, unknown>) : {};
  }

  /** Move to `to` from one of `from`; `newRun` starts a new run (older tasks end). Undefined when the sink was not in `from`. */
  async transition(id: string, from: SinkStatus[], to: SinkStatus, o: { error?: string | null; newRun?: boolean } = {}): Promise<SinkRow | undefined> {
    const { rows } = await this.pool.query<SinkRow>(
      `UPDATE sinks SET status = $3, error = $4, run_id = run_id + $5, updated_at = now() WHERE id = $1 AND status = ANY($2) RETURNING ${COLS}`,
      [id, from, to, o.error ?? null, o.newRun ? 1 : 0],
    );
    return rows[0];
  }

  /** Fail the sink, only when it is still in run `runId`. */
  async fail(id: string, runId: number, error: string): Promise<SinkRow | undefined> {
    const { rows } = await this.pool.query<SinkRow>(
      `UPDATE sinks SET status = 'failed', error = $3, updated_at = now() WHERE id = $1 AND run_id = $2 AND status = 'running' RETURNING ${COLS}`, [id, runId, error]);
    return rows[0];
  }

  /** The checkpoint after a batch; false when the run is no longer current (the task must stop). */
  async checkpoint(id: string, runId: number, p: { position: string; delivered: number; failed: number; lagMs: number | null }): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE sinks SET position = $3, delivered = delivered + $4, failed = failed + $5, lag_ms = $6, error = NULL, updated_at = now()
        WHERE id = $1 AND run_id = $2 AND status = 'running'`,
      [id, runId, p.position, p.delivered, p.failed, p.lagMs],
    );
    return (rowCount ?? 0) > 0;
  }

  /**
   * A running sink's last retried error, and with `lagMs` how far behind the
   * stuck delivery is (never lowered here: the next checkpoint sets it); does
   * nothing once the sink left `running` or run `runId` (a late write must
   * not hide why it failed).
   */
  async setError(id: string, runId: number, error: string | null, lagMs?: number): Promise<void> {
    await this.pool.query(
      `UPDATE sinks SET error = $3, lag_ms = CASE WHEN $4::bigint IS NULL THEN lag_ms ELSE GREATEST(COALESCE(lag_ms, 0), $4::bigint) END, updated_at = now()
        WHERE id = $1 AND run_id = $2 AND status = 'running'`, [id, runId, error, lagMs ?? null]);
  }

  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('DELETE FROM sinks WHERE id = $1', [id]);
    return (rowCount ?? 0) > 0;
  }

  async addDeadLetters(sinkId: string, letters: DeadLetter[]): Promise<void> {
    if (!letters.length) return;
    await this.pool.query(
      `INSERT INTO sink_dead_letters (sink_id, sequence, message_id, msg_key, event, error, attempts)
       SELECT $1, x.sequence, x.message_id, x.msg_key, x.event, x.error, x.attempts
         FROM jsonb_to_recordset($2::jsonb) AS x(sequence text, message_id text, msg_key text, event jsonb, error text, attempts int)
       ON CONFLICT (sink_id, message_id) DO NOTHING`,
      [sinkId, JSON.stringify(letters.map((l) => ({ sequence: l.message.sequence, message_id: l.message.id, msg_key: l.message.key, event: l.event, error: l.error.slice(0, 2000), attempts: l.attempts })))],
    );
  }

  async blockedKeys(sinkId: string): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ msg_key: string }>('SELECT DISTINCT msg_key FROM sink_dead_letters WHERE sink_id = $1', [sinkId]);
    return new Set(rows.map((r) => r.msg_key));
  }

  /** Dead letters in the order they were parked (per key that is feed order, except after a crash re-sent a batch: replay sorts by sequence). */
  async deadLetters(sinkId: string, o: { ids?: string[]; limit?: number } = {}): Promise<DeadLetterRow[]> {
    const { rows } = await this.pool.query<DeadLetterRow>(
      `SELECT id::text, sink_id, sequence, message_id, msg_key, event, error, attempts, created_at FROM sink_dead_letters
        WHERE sink_id = $1 AND ($2::bigint[] IS NULL OR id = ANY($2)) ORDER BY id LIMIT $3`,
      [sinkId, o.ids ?? null, o.limit ?? 1000],
    );
    return rows;
  }

  async countDeadLetters(sinkId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM sink_dead_letters WHERE sink_id = $1', [sinkId]);
    return Number(rows[0]!.n);
  }

  async dropDeadLetters(sinkId: string, ids: string[] | null): Promise<number> {
    const { rowCount } = await this.pool.query('DELETE FROM sink_dead_letters WHERE sink_id = $1 AND ($2::bigint[] IS NULL OR id = ANY($2))', [sinkId, ids]);
    return rowCount ?? 0;
  }
}
