/**
 * Bytes written straight into a reused buffer: the feed's append pieces
 * (feed-codec.ts encodePieceBytes) and the PostgreSQL applier's COPY data
 * (apply/pg-copy.ts). Why (issue 12 profile, docs/benchmarks.md): a large
 * text V8 assembles from parts must be flattened into fresh memory and then
 * encoded into fresh memory again, and page faults are expensive on this
 * machine kind; a buffer that is used again has its pages already.
 */

/** Room for bytes, grown on demand. */
export interface ByteSink { buf: Buffer; len: number }

/** Makes room for `n` more bytes. */
export function reserve(sink: ByteSink, n: number): void {
  if (sink.len + n <= sink.buf.length) return;
  const next = Buffer.allocUnsafeSlow(Math.max(sink.buf.length * 2, sink.len + n));
  sink.buf.copy(next, 0, 0, sink.len);
  sink.buf = next;
}

/** Strings up to this length are copied in JavaScript when they are ASCII (see putText). */
const SHORT_TEXT = 32;

/** Appends `s` as UTF-8. */
export function putText(sink: ByteSink, s: string): void {
  const n = s.length;
  // At most 3 bytes per UTF-16 unit (a surrogate pair is 4 bytes for 2 units).
  reserve(sink, n * 3);
  // Short ASCII text (most COPY fields: numbers, timestamps, short names) is copied byte by byte: a call into
  // Buffer#write costs more than the copy itself for these (about 60 ns against 20 per field, issue 12 profile).
  if (n <= SHORT_TEXT) {
    const buf = sink.buf;
    const at = sink.len;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + i] = c;
    }
    if (i === n) { sink.len = at + n; return; }
  }
  sink.len += sink.buf.write(s, sink.len, 'utf8');
}

/** Appends one byte. */
export function putByte(sink: ByteSink, b: number): void {
  reserve(sink, 1);
  sink.buf[sink.len++] = b;
}

/**
 * Buffers for sinks, kept for the next use. A sink is taken per use and given back once nothing holds a view of
 * it any more (a socket write not yet done, a command queued while a connection is down).
 */
export class SinkPool {
  private readonly kept: Buffer[] = [];

  /** `bytes`: a new sink's size; `maxBytes`: larger buffers are not kept; `count`: buffers kept at most. */
  constructor(private readonly bytes: number, private readonly maxBytes: number, private readonly count: number) {}

  take(): ByteSink {
    return { buf: this.kept.pop() ?? Buffer.allocUnsafeSlow(this.bytes), len: 0 };
  }

  give(sink: ByteSink): void {
    if (sink.buf.length <= this.maxBytes && this.kept.length < this.count) this.kept.push(sink.buf);
  }
}
