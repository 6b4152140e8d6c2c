import { describe, expect, it } from 'vitest';
import { putByte, putText, type ByteSink } from '../../../src/replication/byte-sink.ts';

describe('putText', () => {
  it('writes the UTF-8 of every string, short ASCII, short non-ASCII and long, growing the buffer as it goes', () => {
    const samples = [
      '', 'a', '12345', '2026-12-07 01:02:03.123456', 'x'.repeat(32), 'x'.repeat(33), 'x'.repeat(5000),
      'é', 'caf\u00e9 au lait', '\u{1F600}', 'ab\u{1F600}cd', 'mixed ascii then \u4e2d\u6587', '\u007f\u0080', 'tab\there\\n',
      // A lone surrogate is written as U+FFFD, as Buffer.from writes it.
      'lone \ud800 surrogate',
    ];
    const sink: ByteSink = { buf: Buffer.allocUnsafe(4), len: 0 };
    const expected: Buffer[] = [];
    for (const s of samples) {
      putText(sink, s);
      putByte(sink, 0x0a);
      expected.push(Buffer.from(s, 'utf8'), Buffer.from('\n'));
    }
    expect(sink.buf.subarray(0, sink.len).equals(Buffer.concat(expected))).toBe(true);
  });
});
