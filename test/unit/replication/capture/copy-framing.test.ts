/** The replication socket's framer: CopyData payloads in place, every other message to pg, in order, at any chunking. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { copyDataFramer, takeCopyData } from '../../../../src/replication/capture/copy-framing.ts';

function message(code: string, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(code, 0, 'latin1');
  head.writeUInt32BE(payload.length + 4, 1);
  return Buffer.concat([head, payload]);
}

type Seen = { copy: string } | { other: string };

/** The stream `bytes` cut at `cuts`, through a framer: what it handed to each side, in order. */
function frame(bytes: Buffer, cuts: number[]): Seen[] {
  const seen: Seen[] = [];
  const framer = copyDataFramer(
    (buf, start, end) => seen.push({ copy: buf.toString('latin1', start, end) }),
    // pg's side gets whole messages: split them again to compare message by message.
    (b) => { for (let p = 0; p < b.length;) { const n = 1 + b.readUInt32BE(p + 1); seen.push({ other: b.toString('latin1', p, p + n) }); p += n; } },
  );
  let at = 0;
  for (const c of [...cuts, bytes.length]) { framer(bytes.subarray(at, c)); at = c; }
  return seen;
}

describe('copyDataFramer', () => {
  it('hands over the same messages in the same order however the stream is cut', () => {
    let seed = 11;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const msgs: Buffer[] = [];
    const want: Seen[] = [];
    for (let i = 0; i < 400; i++) {
      const len = rnd(7) === 0 ? 3000 + rnd(5000) : rnd(200);
      const payload = Buffer.alloc(len);
      for (let k = 0; k < len; k++) payload[k] = rnd(256);
      const code = rnd(5) === 0 ? 'ZCcEW'[rnd(5)]! : 'd';
      const m = message(code, payload);
      msgs.push(m);
      want.push(code === 'd' ? { copy: payload.toString('latin1') } : { other: m.toString('latin1') });
    }
    const all = Buffer.concat(msgs);
    expect(frame(all, [])).toEqual(want);
    for (let trial = 0; trial < 40; trial++) {
      const cuts = new Set<number>();
      // Cuts anywhere: inside headers, one byte apart, at message bounds.
      for (let k = 0; k < 5 + rnd(300); k++) cuts.add(1 + rnd(all.length - 1));
      expect(frame(all, [...cuts].sort((a, b) => a - b))).toEqual(want);
    }
    // One byte at a time.
    expect(frame(all.subarray(0, 3000), Array.from({ length: 2999 }, (_, i) => i + 1))).toEqual(frame(all.subarray(0, 3000), []));
  });

  it('takes the socket over from pg-protocol and fails the socket, not the process, on a length no server sends', () => {
    const stream = new EventEmitter() as EventEmitter & { destroy(err?: Error): void; failed?: Error };
    stream.destroy = (err?: Error) => { stream.failed = err; };
    const toPg: Buffer[] = [];
    stream.on('data', (b: Buffer) => toPg.push(b));
    const copies: string[] = [];
    takeCopyData(stream as never, (buf, s, e) => copies.push(buf.toString('latin1', s, e)));
    expect(stream.listeners('data')).toHaveLength(1);
    stream.emit('data', Buffer.concat([message('W', Buffer.alloc(3)), message('d', Buffer.from('hello')), message('c', Buffer.alloc(0))]));
    expect(copies).toEqual(['hello']);
    expect(toPg.map((b) => b.toString('latin1', 0, 1))).toEqual(['W', 'c']);
    const bad = Buffer.from([0x64, 0, 0, 0, 2]);
    stream.emit('data', bad);
    expect(stream.failed?.message).toMatch(/bad message length/);
  });
});
