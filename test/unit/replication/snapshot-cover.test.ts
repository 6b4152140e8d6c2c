import { describe, expect, it } from 'vitest';
import { Operation, type ChangeEvent } from '../../../src/replication/change-event.ts';
import { binlogCover, coverable, parseCover, pgSnapshotCover, snapshotChunkId } from '../../../src/replication/snapshot/snapshot-cover.ts';
import { sequenceFromBinlog } from '../../../src/replication/sequence.ts';

const ev = (over: Partial<ChangeEvent>): ChangeEvent => ({
  sequence: '1.0.0', commitSequence: '0', txid: '0', index: 0, schema: 's', table: 't', op: Operation.Insert,
  columns: [], key: [], before: null, after: {}, commitTime: 0, ...over,
} as ChangeEvent);

describe('snapshot covers of keyless tables', () => {
  it('binlog: holds the transactions that start below the snapshot position', () => {
    const c = parseCover(binlogCover('binlog.000003', 1000))!;
    expect(c.holds(ev({ sequence: sequenceFromBinlog('binlog.000003', 999, 5) }))).toBe(true);
    expect(c.holds(ev({ sequence: sequenceFromBinlog('binlog.000002', 90_000, 0) }))).toBe(true);
    expect(c.holds(ev({ sequence: sequenceFromBinlog('binlog.000003', 1000, 0) }))).toBe(false);
    expect(c.holds(ev({ sequence: sequenceFromBinlog('binlog.000004', 4, 0) }))).toBe(false);
  });

  it('pgsnap: holds the transactions visible in the snapshot (32-bit xids widened to its epoch)', () => {
    const c = parseCover(pgSnapshotCover('100:110:103,107'))!;
    for (const [xid, visible] of [['99', true], ['100', true], ['103', false], ['105', true], ['107', false], ['109', true], ['110', false], ['111', false], ['0', false]] as const) {
      expect([xid, c.holds(ev({ txid: xid }))]).toEqual([xid, visible]);
    }
    // Epoch 1 (xid8 above 2^32): events carry xid8 mod 2^32.
    const e1 = 2n ** 32n;
    const c1 = parseCover(pgSnapshotCover(`${e1 + 5n}:${e1 + 9n}:${e1 + 6n}`))!;
    expect(c1.holds(ev({ txid: '4' }))).toBe(true);
    expect(c1.holds(ev({ txid: '6' }))).toBe(false);
    expect(c1.holds(ev({ txid: '8' }))).toBe(true);
    expect(c1.holds(ev({ txid: '9' }))).toBe(false);
    // Just before the epoch wrapped.
    expect(c1.holds(ev({ txid: String(2 ** 32 - 3) }))).toBe(true);
  });

  it('no cover holds nothing; only keyless rows and TRUNCATE are coverable', () => {
    expect(parseCover(null)).toBeNull();
    const truncate = (d: string) => /^TRUNCATE/i.test(d);
    expect(coverable(ev({}), truncate)).toBe(true);
    expect(coverable(ev({ key: ['id'] }), truncate)).toBe(false);
    expect(coverable(ev({ op: Operation.Ddl, ddl: 'TRUNCATE TABLE t' }), truncate)).toBe(true);
    expect(coverable(ev({ op: Operation.Ddl, ddl: 'ALTER TABLE t ADD COLUMN c int' }), truncate)).toBe(false);
    expect(snapshotChunkId('db', 'ledger', 0)).toBe('db.ledger#0');
    expect(() => parseCover('what 1')).toThrow();
  });
});
