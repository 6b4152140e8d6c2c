/**
 * How a change is written on the wire of a sink: Tributary's change JSON (the
 * shape the feed serves over GraphQL and REST), a Debezium-compatible
 * envelope (what the Debezium JSON converter writes with schemas disabled, so
 * existing consumers read it unchanged), or the SinkChange protobuf message.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { SinkFormat } from '../../../domain/sink-model.ts';
import { OPERATION_CODE, Operation, type ChangeEvent, type Row } from '../../change-event.ts';
import { pgTypeOid } from '../../feed/pg-type-oids.ts';

export const SINK_CHANGE_PROTO = new URL('./sink-change.proto', import.meta.url);
const root = protobuf.parse(readFileSync(SINK_CHANGE_PROTO, 'utf8'), { keepCase: true }).root;
export const SinkChangeType = root.lookupType('tributary.sink.SinkChange');

export const CONTENT_TYPE: Record<SinkFormat, string> = {
  [SinkFormat.Json]: 'application/json',
  [SinkFormat.Debezium]: 'application/json',
  [SinkFormat.Protobuf]: 'application/x-protobuf',
};

/** Tributary's change JSON (field names of the GraphQL `Change` type) with the message id and feed. */
export function changeJson(e: ChangeEvent, id: string, feed: string): Record<string, unknown> {
  return {
    id, feed,
    sequence: e.sequence, txid: e.txid, commitSequence: e.commitSequence, changeSequence: e.commitSequence, commitIndex: e.index,
    operation: OPERATION_CODE[e.op], op: e.op, schema: e.schema, table: e.table, key: e.key,
    newRow: e.after, oldRow: e.before, oldRowKeyOnly: e.beforeKeyOnly === true,
    columnTypes: (e.columns ?? []).map((c) => ({ name: c.name, kind: c.kind, sourceType: c.sourceType, pgType: pgTypeOid(c) })),
    commitTime: new Date(e.commitTime).toISOString(), scope: e.scope ?? null, source: e.source, ddl: e.ddl ?? null,
  };
}

const DEBEZIUM_OP: Record<Operation, string> = { [Operation.Insert]: 'c', [Operation.Update]: 'u', [Operation.Delete]: 'd', [Operation.Ddl]: 'ddl' };

/**
 * Debezium's envelope. `source` carries Debezium's common fields (connector,
 * name, ts_ms, db, schema, table, txId) plus Tributary's `sequence`; `op`
 * is c/u/d (snapshot rows are captured as inserts, so "r" is not used).
 */
export function debeziumEnvelope(e: ChangeEvent, id: string, feed: string, now = Date.now()): Record<string, unknown> {
  const mysql = e.source === 'mysql';
  return {
    before: e.before, after: e.after,
    source: {
      version: 'tributary', connector: mysql ? 'mysql' : 'postgresql', name: feed, ts_ms: e.commitTime, snapshot: 'false',
      db: mysql ? e.schema : null, schema: mysql ? null : e.schema, table: e.table, txId: e.txid, sequence: e.sequence, id,
    },
    op: DEBEZIUM_OP[e.op],
    ts_ms: now,
    transaction: null,
  };
}

type PbValue = { is_null?: boolean; string_value?: string; number_value?: number; bool_value?: boolean };
function pbRow(r: Row | null): Record<string, PbValue> {
  const out: Record<string, PbValue> = {};
  for (const [k, v] of Object.entries(r ?? {})) {
    out[k] = v === null ? { is_null: true } : typeof v === 'number' ? { number_value: v } : typeof v === 'boolean' ? { bool_value: v } : { string_value: String(v) };
  }
  return out;
}

export function protobufChange(e: ChangeEvent, id: string, feed: string): Uint8Array {
  const msg = SinkChangeType.fromObject({
    id, feed, sequence: e.sequence, txid: e.txid, commit_sequence: e.commitSequence, commit_index: e.index, op: e.op,
    schema: e.schema, table: e.table, key: e.key, before: pbRow(e.before), after: pbRow(e.after),
    has_before: e.before !== null, has_after: e.after !== null, before_key_only: e.beforeKeyOnly === true,
    commit_time_ms: e.commitTime, source: e.source, scope: e.scope ?? '',
  });
  return SinkChangeType.encode(msg).finish();
}

/** The message body of one change in `format`. */
export function encodeChange(format: SinkFormat, e: ChangeEvent, id: string, feed: string): Buffer {
  switch (format) {
    case SinkFormat.Json: return Buffer.from(JSON.stringify(changeJson(e, id, feed)));
    case SinkFormat.Debezium: return Buffer.from(JSON.stringify(debeziumEnvelope(e, id, feed)));
    case SinkFormat.Protobuf: { const b = protobufChange(e, id, feed); return Buffer.from(b.buffer, b.byteOffset, b.byteLength); }
  }
}
