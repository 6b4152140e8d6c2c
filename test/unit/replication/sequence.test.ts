import { describe, expect, it } from 'vitest';
import {
  bigIntToLsn, binlogCommitSequence, binlogFileNumber, commitNumber, compareSequences, formatSequence, fromStreamId, InvalidSequenceError,
  lsnToBigInt, makeSequence, parseSequence, sequenceFromBinlog, sequenceFromLsn, toStreamId, ZERO_SEQUENCE, canonicalLsnText, lsnDecimal,
  sequencePrefixFromBinlog, firstOutOfOrder,
} from '../../../src/replication/sequence.ts';

describe('binlog commit sequences', () => {
  it('are (file number << 32 | start) in decimal, the double fast path and BigInt alike, whatever file came before', () => {
    const big = (file: string, start: number) => ((binlogFileNumber(file) << 32n) | BigInt(start)).toString();
    const cases: [string, number][] = [
      ['mysql-bin.000001', 4], ['mysql-bin.000001', 0xffffffff], ['mysql-bin.000042', 123456], ['mysql-bin.999999', 0xfffffffe],
      ['mysql-bin.1048575', 0xffffffff], ['mysql-bin.1048576', 5], ['mysql-bin.4294967295', 0xffffffff], ['no-number', 77], ['mysql-bin.000001', 4],
    ];
    for (const [file, start] of cases) expect(binlogCommitSequence(file, start), `${file}@${start}`).toBe(big(file, start));
    // Sequence prefixes: the numbers' fast path gives makeSequence's text; out of range still throws.
    for (const [file, start] of cases) expect(sequencePrefixFromBinlog(file, start), `${file}@${start}`).toBe(makeSequence(binlogFileNumber(file), start, 0).slice(0, -1));
    expect(() => sequencePrefixFromBinlog('mysql-bin.4294967296', 4)).toThrow(InvalidSequenceError);
    expect(() => sequencePrefixFromBinlog('mysql-bin.000001', 0x100000000)).toThrow(InvalidSequenceError);
    // The one-entry cache of the file number follows the file asked for.
    expect(binlogFileNumber('a.000007')).toBe(7n);
    expect(binlogFileNumber('a.000008')).toBe(8n);
    expect(binlogFileNumber('a.000007')).toBe(7n);
  });
});

describe('sequence format', () => {
  it('parses and formats Transicator sequences as lower-case hex', () => {
    expect(parseSequence('16.b374d848.2')).toEqual({ hi: 0x16n, lo: 0xb374d848n, index: 2n });
    expect(parseSequence('16.B374D848.A')).toEqual({ hi: 0x16n, lo: 0xb374d848n, index: 10n });
    expect(formatSequence({ hi: 0x16n, lo: 0xb374d848n, index: 10n })).toBe('16.b374d848.a');
    expect(makeSequence(0, 0, 0)).toBe(ZERO_SEQUENCE);
    expect(makeSequence(0xffffffff, 0xffffffff, 2n ** 64n - 1n)).toBe('ffffffff.ffffffff.ffffffffffffffff');
  });

  it('rejects malformed sequences with a PARAMETER_INVALID error', () => {
    for (const bad of ['', '0.0', '0.0.0.0', 'g.0.0', '123456789.0.0', '0.123456789.0', '0.0.12345678901234567', ' 0.0.0', '-1.0.0', '0..0']) {
      expect(() => parseSequence(bad), bad).toThrowError(InvalidSequenceError);
    }
    expect(() => parseSequence('x')).toThrowError(expect.objectContaining({ code: 'PARAMETER_INVALID', value: 'x' }));
    expect(() => makeSequence(2 ** 32, 0, 0)).toThrowError(InvalidSequenceError);
    expect(() => makeSequence(0, 2 ** 32, 0)).toThrowError(InvalidSequenceError);
    expect(() => makeSequence(0, 0, -1)).toThrowError(InvalidSequenceError);
  });
});

describe('ordering', () => {
  it('compares by number, not by string', () => {
    const sorted = ['0.0.0', '0.0.1', '0.0.a', '0.0.10', '0.f.0', '0.10.0', '0.ffffffff.0', '1.0.0', '1.0.1', 'a.0.0', '10.0.0'];
    const shuffled = [...sorted].reverse();
    expect(shuffled.sort(compareSequences)).toEqual(sorted);
    expect(compareSequences('0.F.0', '0.f.0')).toBe(0);
    expect(compareSequences('0.10.0', '0.f.0')).toBe(1);
    expect('0.10.0' < '0.f.0').toBe(true); // why string comparison is never used
  });

  it('orders commit numbers hi*2^32+lo', () => {
    expect(commitNumber('1.2.3')).toBe((1n << 32n) + 2n);
    expect(commitNumber(parseSequence('0.ffffffff.9'))).toBe(0xffffffffn);
  });
});

describe('Redis stream ids', () => {
  it('round-trips and preserves order', () => {
    const seqs = ['0.0.0', '0.1.0', '0.1.1', '16.b374d848.2', 'ffffffff.ffffffff.ffffffffffffffff', '1.0.0'];
    for (const s of seqs) expect(fromStreamId(toStreamId(s))).toBe(parseAndFormat(s));
    expect(toStreamId('16.b374d848.2')).toBe(`${(0x16n << 32n) + 0xb374d848n}-2`);
    expect(toStreamId('ffffffff.ffffffff.ffffffffffffffff')).toBe('18446744073709551615-18446744073709551615');
    expect(fromStreamId('4294967296-0')).toBe('1.0.0');
    // Redis orders ids by (ms, seq) numerically: the same order as compareSequences
    const ids = seqs.map(toStreamId).sort(compareIds);
    expect(ids.map(fromStreamId)).toEqual([...seqs].sort(compareSequences));
  });

  it('rejects ids that are not Redis stream ids', () => {
    for (const bad of ['', 'abc', '1', '1-', '-1', '1-2-3', '18446744073709551616-0']) {
      expect(() => fromStreamId(bad), bad).toThrowError(InvalidSequenceError);
    }
  });
});

describe('source positions', () => {
  it('maps PostgreSQL LSNs', () => {
    expect(sequenceFromLsn('16/B374D848', 3)).toBe('16.b374d848.3');
    expect(sequenceFromLsn('0/0', 0)).toBe('0.0.0');
    expect(lsnToBigInt('16/B374D848')).toBe((0x16n << 32n) + 0xb374d848n);
    expect(bigIntToLsn(lsnToBigInt('16/B374D848'))).toBe('16/B374D848');
    expect(bigIntToLsn(0n)).toBe('0/0');
    expect(commitNumber(sequenceFromLsn('16/B374D848', 7))).toBe(lsnToBigInt('16/B374D848'));
    for (const bad of ['', 'junk', '1/2/3', '16', '/1', '123456789/0', '0/123456789', '0x1/2']) {
      expect(() => lsnToBigInt(bad), bad).toThrowError(InvalidSequenceError);
      expect(() => sequenceFromLsn(bad, 0), bad).toThrowError(InvalidSequenceError);
    }
  });

  it('maps binlog file and offset in commit order', () => {
    expect(binlogFileNumber('mysql-bin.000042')).toBe(42n);
    expect(binlogFileNumber('noext')).toBe(0n);
    expect(sequenceFromBinlog('mysql-bin.000042', 0x1234, 1)).toBe('2a.1234.1');
    const a = sequenceFromBinlog('binlog.000009', 999_999_999, 0);
    const b = sequenceFromBinlog('binlog.000010', 4, 0);
    expect(compareSequences(a, b)).toBe(-1);
    expect(() => sequenceFromBinlog('binlog.000001', 2 ** 32, 0)).toThrowError(InvalidSequenceError);
  });
});

function parseAndFormat(s: string): string { return formatSequence(parseSequence(s)); }

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

describe('fast paths agree with the BigInt forms', () => {
  it('toStreamId, canonicalLsnText and lsnDecimal match on edge and random values', () => {
    const hex = (n: bigint) => n.toString(16);
    const his = [0n, 1n, 0x16n, 0x1fffffn, 0x200000n, 0x200001n, 0xffffffffn];
    const los = [0n, 1n, 0xb374d848n, 0xffffffffn];
    const idx = [0n, 1n, 0xfffffffffffffn, 0x10000000000000n, 0xffffffffffffffffn];
    let seed = 12345;
    const rnd = (bits: number) => { let v = 0n; for (let i = 0; i < bits; i += 16) { seed = (seed * 1103515245 + 12345) % 2147483648; v = (v << 16n) | BigInt(seed & 0xffff); } return v & ((1n << BigInt(bits)) - 1n); };
    for (let i = 0; i < 200; i++) { his.push(rnd(i % 2 ? 21 : 32)); los.push(rnd(32)); idx.push(rnd(i % 3 ? 20 : 64)); }
    for (const hi of his) for (const lo of los.slice(0, 6)) {
      for (const ix of idx.slice(0, 8)) {
        const seq = `${hex(hi)}.${hex(lo)}.${hex(ix)}`;
        expect(toStreamId(seq)).toBe(`${(hi << 32n) + lo}-${ix}`);
      }
      const lsn = `${hex(hi).toUpperCase()}/${hex(lo)}`;
      expect(canonicalLsnText(lsn)).toBe(bigIntToLsn(lsnToBigInt(lsn)));
      expect(canonicalLsnText(`${hex(hi).padStart(8, '0')}/${hex(lo).padStart(8, '0')}`)).toBe(bigIntToLsn(lsnToBigInt(lsn)));
      expect(lsnDecimal(lsn)).toBe(lsnToBigInt(lsn).toString());
    }
    expect(() => canonicalLsnText('1/2/3')).toThrowError(InvalidSequenceError);
    expect(() => lsnDecimal('junk')).toThrowError(InvalidSequenceError);
    expect(() => toStreamId('1.2')).toThrowError(InvalidSequenceError);
  });
});

describe('compareSequences without allocating', () => {
  it('orders like the BigInt comparison, and throws on the same inputs', () => {
    const big = (s: string) => { const p = parseSequence(s); return [p.hi, p.lo, p.index]; };
    const ref = (a: string, b: string) => { const x = big(a), y = big(b); for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1; return 0; };
    const parts = ['0', '1', 'f', 'F', '0f', '00000010', 'ffffffff', 'FFFFFFFF', '7fffffff'];
    const idx = ['0', '1', 'a', 'A', 'fffffffffffff', '10000000000000', 'ffffffffffffffff', '000000000000000001'.slice(-16)];
    const seqs: string[] = [];
    for (const h of parts) for (const l of parts.slice(0, 5)) for (const i of idx) seqs.push(`${h}.${l}.${i}`);
    for (const a of seqs) for (const b of seqs.slice(0, 60)) expect(compareSequences(a, b), `${a} ${b}`).toBe(ref(a, b));
    for (const bad of ['', '1.2', '1.2.3.4', '1..2', '.1.2', '1.2.', 'g.1.2', '123456789.1.2', '1.123456789.2', '1.2.12345678901234567', '1.2.3 ']) {
      expect(() => compareSequences(bad, '1.2.3'), bad).toThrowError(InvalidSequenceError);
      expect(() => compareSequences('1.2.3', bad), bad).toThrowError(InvalidSequenceError);
    }
  });
});

describe('firstOutOfOrder', () => {
  const ref = (seqs: string[], prev?: string) => {
    for (let i = 0; i < seqs.length; i++) {
      const before = i > 0 ? seqs[i - 1] : prev;
      if (before !== undefined && compareSequences(before, seqs[i]!) >= 0) return i;
    }
    return -1;
  };
  const outcome = (f: () => number) => { try { return f(); } catch (e) { return String(e); } };

  it('finds the first sequence that does not follow the one before it, as neighbour comparisons do', () => {
    const pool = ['1.2.3', '1.2.4', '1.2.a', '1.3.0', '2.0.0', '1.2.3', '0.0.0', '1.2.ffffffffffffffff', '1.2.fffffffffffffff', 'f.f.f', '1.2.fffffffffffff', '1.2.10000000000000'];
    let seed = 3;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    for (let k = 0; k < 3000; k++) {
      const seqs = Array.from({ length: 1 + rnd(6) }, () => pool[rnd(pool.length)]!);
      // Mostly increasing runs: sorted copies of the random lists, sometimes with a neighbour repeated.
      if (k % 2 === 0) seqs.sort(compareSequences);
      const prev = k % 3 === 0 ? pool[rnd(pool.length)] : undefined;
      expect(firstOutOfOrder(seqs, (s) => s, 0, prev), `${prev} ${seqs.join(' ')}`).toBe(ref(seqs, prev));
    }
  });

  it('throws on an invalid sequence as compareSequences does', () => {
    for (const seqs of [['1.2.3', 'x'], ['x', '1.2.3'], ['1.2.3', '1.2.12345678901234567']]) {
      expect(outcome(() => firstOutOfOrder(seqs, (s) => s))).toBe(outcome(() => ref(seqs)));
      expect(outcome(() => firstOutOfOrder(seqs, (s) => s))).toMatch(/InvalidSequence|sequence/i);
    }
  });
});
