/**
 * CopyData messages of the replication connection, framed straight from the
 * socket's chunks (issue 12).
 *
 * Why: pg-protocol's parser made, for every pgoutput message, a Buffer view
 * of its payload and a message object, and pg's Connection emitted it as an
 * event: 28 MiB of the 400 the PG -> PG apply bench's process allocated per
 * run, and about 4% of its CPU, for a message the capture decodes in place
 * anyway. Here the socket's 'data' listener (pg-protocol's) is replaced by
 * one that walks the chunk's messages itself: a CopyData message is handed
 * over as (chunk, payload start, payload end), every other message (the
 * CopyBothResponse, CopyDone, an ErrorResponse, CommandComplete, ...) goes to
 * pg-protocol's listener, whole and in order, so pg handles it as before.
 *
 * Taken over while the connection is idle (before START_REPLICATION), so
 * pg-protocol holds no part of a message then. A message split across two
 * chunks is completed in a buffer of its own; the handler must not keep a
 * view of the chunk past its call (the capture copies what it keeps,
 * pg-wire-rows.ts).
 */

const COPY_DATA = 0x64; // 'd'
const HEADER = 5; // code byte and int32 length (the length counts itself, not the code)

/** The part of a net.Socket this uses. */
export interface FramedStream {
  listeners(ev: 'data'): ((chunk: Buffer) => void)[];
  removeListener(ev: 'data', fn: (chunk: Buffer) => void): unknown;
  on(ev: 'data', fn: (chunk: Buffer) => void): unknown;
  destroy(err?: Error): unknown;
}

/** A CopyData payload: `buf[start, end)`. */
export type CopyDataHandler = (buf: Buffer, start: number, end: number) => void;

/**
 * Replaces `stream`'s 'data' listener (pg-protocol's, the only one pg attaches) with a framer that hands each
 * CopyData payload to `onCopyData` and every other message to the replaced listener.
 */
export function takeCopyData(stream: FramedStream, onCopyData: CopyDataHandler): void {
  const previous = stream.listeners('data');
  if (previous.length !== 1) throw Error(`replication socket: expected one data listener, found ${previous.length}`);
  const pgListener = previous[0]!;
  stream.removeListener('data', pgListener);
  const framer = copyDataFramer(onCopyData, pgListener);
  stream.on('data', (chunk: Buffer) => {
    // A framing error (a length no server sends) fails the connection, as pg-protocol's would have, not the process.
    try { framer(chunk); } catch (err) { stream.destroy(err as Error); }
  });
}

/** The framer itself (exported for tests): chunk in, messages out in order. */
export function copyDataFramer(onCopyData: CopyDataHandler, other: (bytes: Buffer) => void): (chunk: Buffer) => void {
  // A message begun in an earlier chunk: its bytes so far (the header may be incomplete too).
  let part: Buffer | null = null;
  let partLen = 0;

  /** Hands one whole message over; `at` is its code byte, `end` its end. */
  const deliver = (buf: Buffer, at: number, end: number): void => {
    if (buf[at] === COPY_DATA) onCopyData(buf, at + HEADER, end);
    else other(at === 0 && end === buf.length ? buf : buf.subarray(at, end));
  };

  return (chunk: Buffer): void => {
    let p = 0;
    const n = chunk.length;
    if (part !== null) {
      // Complete the header first, then the message.
      if (partLen < HEADER) {
        const take = Math.min(HEADER - partLen, n);
        chunk.copy(part, partLen, 0, take);
        partLen += take;
        p = take;
        if (partLen < HEADER) return;
        const total = 1 + part.readUInt32BE(1);
        if (total < HEADER) throw Error(`replication socket: bad message length ${total - 1}`);
        if (total > part.length) {
          const grown = Buffer.allocUnsafe(total);
          part.copy(grown, 0, 0, partLen);
          part = grown;
        }
      }
      const total = 1 + part.readUInt32BE(1);
      const take = Math.min(total - partLen, n - p);
      chunk.copy(part, partLen, p, p + take);
      partLen += take;
      p += take;
      if (partLen < total) return;
      const whole = part;
      part = null;
      partLen = 0;
      deliver(whole, 0, total);
    }
    // Whole messages in place; other messages next to each other go to pg in one piece.
    let runStart = -1;
    while (p + HEADER <= n) {
      const total = 1 + ((chunk[p + 1]! << 24 >>> 0) + (chunk[p + 2]! << 16) + (chunk[p + 3]! << 8) + chunk[p + 4]!);
      if (total < HEADER) throw Error(`replication socket: bad message length ${total - 1}`);
      if (p + total > n) break;
      if (chunk[p] === COPY_DATA) {
        if (runStart >= 0) { other(chunk.subarray(runStart, p)); runStart = -1; }
        onCopyData(chunk, p + HEADER, p + total);
      } else if (runStart < 0) runStart = p;
      p += total;
    }
    if (runStart >= 0) other(runStart === 0 && p === n ? chunk : chunk.subarray(runStart, p));
    if (p < n) {
      // The start of a message the next chunk completes.
      const rest = n - p;
      const total = rest >= HEADER ? 1 + chunk.readUInt32BE(p + 1) : 0;
      part = Buffer.allocUnsafe(Math.max(total, HEADER, rest));
      chunk.copy(part, 0, p, n);
      partLen = rest;
    }
  };
}
