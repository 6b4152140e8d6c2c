/** Sink wire formats (change JSON, Debezium envelope, protobuf), message ids, ordering keys, retry delays. */
import { describe, expect, it } from 'vitest';
import { Operation, type ChangeEvent } from '../../../src/replication/change-event.ts';
import { DEFAULT_DELIVERY, messageId, retryDelay, SinkFormat } from '../../../src/domain/sink-model.ts';
import { encodeChange, SinkChangeType } from '../../../src/replication/sinks/formats/sink-formats.ts';
import { orderingKey, tableFilter } from '../../../src/replication/sinks/sink-runner.ts';
import { hostAllowed } from '../../../src/replication/sinks/sink-constants.ts';
import { webhookSignature } from '../../../src/replication/sinks/webhook.sink.ts';

const ev = (over: Partial<ChangeEvent> = {}): ChangeEvent => ({
  source: 'mysql', sequence: '00000001.00000002.0000000000000003', txid: '77', commitSequence: '4294967298', index: 3, op: Operation.Update,
  schema: 'shop', table: 'items', key: ['id'], before: { id: 5, price: '1.50', ok: true }, after: { id: 5, price: '2.25', ok: null },
  columns: [{ name: 'id', kind: 'int', sourceType: 'int(11)' }, { name: 'price', kind: 'decimal', sourceType: 'decimal(10,2)' }, { name: 'ok', kind: 'bool', sourceType: 'tinyint(1)' }],
  commitTime: 1_700_000_000_123, ...over,
});

describe('sink formats', () => {
  const id = messageId('orders', ev().sequence);

  it('change JSON carries the feed fields plus id and feed', () => {
    const j = JSON.parse(encodeChange(SinkFormat.Json, ev(), id, 'orders').toString());
    expect(j).toMatchObject({ id: 'orders:00000001.00000002.0000000000000003', feed: 'orders', op: 'update', operation: 2, schema: 'shop', table: 'items', newRow: { id: 5, price: '2.25', ok: null }, oldRow: { id: 5, price: '1.50', ok: true }, commitTime: '2023-11-14T22:13:20.123Z' });
    expect(j.columnTypes[1]).toMatchObject({ name: 'price', kind: 'decimal', sourceType: 'decimal(10,2)' });
  });

  it('Debezium envelope: before, after, source, op, ts_ms', () => {
    const d = JSON.parse(encodeChange(SinkFormat.Debezium, ev(), id, 'orders').toString());
    expect(d.op).toBe('u');
    expect(d.before).toEqual({ id: 5, price: '1.50', ok: true });
    expect(d.after).toEqual({ id: 5, price: '2.25', ok: null });
    expect(d.source).toMatchObject({ connector: 'mysql', name: 'orders', ts_ms: 1_700_000_000_123, db: 'shop', table: 'items', txId: '77' });
    expect(typeof d.ts_ms).toBe('number');
    expect(JSON.parse(encodeChange(SinkFormat.Debezium, ev({ op: Operation.Insert, before: null }), id, 'o').toString()).op).toBe('c');
    const del = JSON.parse(encodeChange(SinkFormat.Debezium, ev({ op: Operation.Delete, after: null, source: 'postgres' }), id, 'o').toString());
    expect(del).toMatchObject({ op: 'd', after: null, source: { connector: 'postgresql', schema: 'shop', db: null } });
  });

  it('protobuf decodes back to the same change', () => {
    const m = SinkChangeType.toObject(SinkChangeType.decode(encodeChange(SinkFormat.Protobuf, ev(), id, 'orders')), { longs: Number }) as Record<string, any>;
    expect(m).toMatchObject({ id, feed: 'orders', op: 'update', schema: 'shop', table: 'items', key: ['id'], has_before: true, has_after: true, commit_time_ms: 1_700_000_000_123, commit_index: 3 });
    expect(m.after).toEqual({ id: { number_value: 5 }, price: { string_value: '2.25' }, ok: { is_null: true } });
    expect(m.before.ok).toEqual({ bool_value: true });
  });
});

describe('sink delivery helpers', () => {
  it('orders by table and primary key (whole row for keyless tables)', () => {
    expect(orderingKey(ev())).toBe('shop.items:[5]');
    expect(orderingKey(ev({ op: Operation.Delete, after: null }))).toBe('shop.items:[5]');
    expect(orderingKey(ev({ key: [], op: Operation.Insert, before: null, after: { a: 1 } }))).toBe('shop.items:{"a":1}');
  });

  it('selects tables by schema.table or table', () => {
    expect(tableFilter([])(ev())).toBe(true);
    expect(tableFilter(['shop.items'])(ev())).toBe(true);
    expect(tableFilter(['items'])(ev())).toBe(true);
    expect(tableFilter(['other.items'])(ev())).toBe(false);
  });

  it('backs off exponentially with jitter, capped', () => {
    const d = { backoffMs: 100, maxBackoffMs: 1000 };
    expect(retryDelay(1, d, () => 0)).toBe(50);
    expect(retryDelay(1, d, () => 1)).toBe(100);
    expect(retryDelay(3, d, () => 1)).toBe(400);
    expect(retryDelay(10, d, () => 1)).toBe(1000);
    expect(retryDelay(10, d, () => 0)).toBe(500);
    expect(retryDelay(60, DEFAULT_DELIVERY, () => 1)).toBe(DEFAULT_DELIVERY.maxBackoffMs);
  });

  it('allow-list matches hosts and sub-domains', () => {
    expect(hostAllowed('hooks.example.com', [])).toBe(true);
    expect(hostAllowed('hooks.example.com', ['*.example.com'])).toBe(true);
    expect(hostAllowed('example.com.evil.org', ['*.example.com'])).toBe(false);
    expect(hostAllowed('127.0.0.1', ['localhost'])).toBe(false);
  });

  it('signs t.body with HMAC-SHA256', () => {
    // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac k
    expect(webhookSignature('k', 1_700_000_000, Buffer.from('{"a":1}'))).toBe('t=1700000000,v1=1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3');
  });
});
