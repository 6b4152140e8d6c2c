/**
 * Feed sequences in Transicator's string shape: "<hi hex>.<lo hex>.<index hex>".
 *
 * - PostgreSQL: hi/lo are the two 32-bit halves of the transaction's commit
 *   LSN ("16/B374D848" -> hi 0x16, lo 0xB374D848), index is the change's
 *   position inside the transaction. Same as Transicator.
 * - MariaDB/MySQL: hi is the binlog file's numeric suffix (binlog.000042 -> 0x2a)
 *   and lo is the byte offset of the transaction's first event (its GTID or
 *   BEGIN event) in that file. Binlog files only grow and are numbered in
 *   order, so (file, offset) sorts in commit order and a re-read of the same
 *   transaction yields the same sequence. Offsets stay below 2^32 because
 *   max_binlog_size is at most 1 GiB.
 *
 * The empty sequence is "0.0.0". Sequences compare by their numbers, never as
 * raw strings (hex digits differ in length); `toStreamId` gives the Redis
 * Stream entry id "<hi*2^32+lo>-<index>", which Redis orders correctly.
 */

export interface Sequence { hi: bigint; lo: bigint; index: bigint }

export const ZERO_SEQUENCE = '0.0.0';

const SEQ_RE = /^([0-9a-fA-F]{1,8})\.([0-9a-fA-F]{1,8})\.([0-9a-fA-F]{1,16})$/;

export class InvalidSequenceError extends Error {
  override readonly name = 'InvalidSequenceError';
  readonly code = 'PARAMETER_INVALID';
  constructor(readonly value: string, expected = '"<hex>.<hex>.<hex>" (32, 32 and 64 bits)') { super(`invalid sequence "${value}": expected ${expected}`); }
}

export function parseSequence(s: string): Sequence {
  const m = SEQ_RE.exec(s);
  if (!m) throw new InvalidSequenceError(s);
  return { hi: BigInt('0x' + m[1]), lo: BigInt('0x' + m[2]), index: BigInt('0x' + m[3]) };
}

export function formatSequence(seq: Sequence): string {
  return `${seq.hi.toString(16)}.${seq.lo.toString(16)}.${seq.index.toString(16)}`;
}

const U32 = 1n << 32n;
const U64 = 1n << 64n;

/**
 * hi and lo must fit 32 bits and index 64 bits: a wider part would produce a
 * string parseSequence rejects, and a lo >= 2^32 would collide with the next hi.
 */
export function makeSequence(hi: bigint | number, lo: bigint | number, index: bigint | number): string {
  const seq = { hi: BigInt(hi), lo: BigInt(lo), index: BigInt(index) };
  if (seq.hi < 0n || seq.hi >= U32 || seq.lo < 0n || seq.lo >= U32 || seq.index < 0n || seq.index >= U64) {
    throw new InvalidSequenceError(`${hi}.${lo}.${index}`);
  }
  return formatSequence(seq);
}

/** PostgreSQL LSN text: two 32-bit hex halves. Stricter than split('/'), which let "1/2/3" or "junk" through. */
const LSN_RE = /^([0-9a-fA-F]{1,8})\/([0-9a-fA-F]{1,8})$/;

function lsnHalves(lsn: string): [bigint, bigint] {
  const m = LSN_RE.exec(lsn);
  if (!m) throw new InvalidSequenceError(lsn, 'a PostgreSQL LSN "<hex>/<hex>"');
  return [BigInt('0x' + m[1]), BigInt('0x' + m[2])];
}

/** From a PostgreSQL LSN text "X/Y" and an index. */
export function sequenceFromLsn(lsn: string, index: number): string {
  const [hi, lo] = lsnHalves(lsn);
  return makeSequence(hi, lo, index);
}

/** LSN "X/Y" as one 64-bit number. */
export function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsnHalves(lsn);
  return (hi << 32n) + lo;
}

export function bigIntToLsn(v: bigint): string {
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** From a binlog file name ("mysql-bin.000042"), the transaction's start offset and an index. */
export function sequenceFromBinlog(file: string, offset: number, index: number): string {
  return makeSequence(binlogFileNumber(file), offset, index);
}

/**
 * "<hi>.<lo>." for one transaction, validated once; a change's sequence is
 * then `prefix + index.toString(16)` (see withIndex). Capture hot paths use
 * this instead of makeSequence per change.
 */
export function sequencePrefixFromBinlog(file: string, offset: number): string {
  // Once per captured transaction (issue 12, single-row capture profile): plain numbers where the halves are in
  // range, the same text as makeSequence's (unit test); makeSequence checks and throws otherwise.
  const n = binlogFileNumber(file);
  if (n < 0x100000000n && Number.isInteger(offset) && offset >= 0 && offset < 0x100000000) return `${fileHex(file, n)}.${offset.toString(16)}.`;
  return makeSequence(n, offset, 0).slice(0, -1);
}

// The last file's number in hex (see binlogFileNumber).
let hexFile: string | undefined;
let hexText = '';
function fileHex(file: string, n: bigint): string {
  if (file !== hexFile) { hexFile = file; hexText = n.toString(16); }
  return hexText;
}

export function sequencePrefixFromLsn(lsn: string): string {
  return sequenceFromLsn(lsn, 0).slice(0, -1);
}

export function withIndex(prefix: string, index: number): string {
  return prefix + index.toString(16);
}

// The last file's number: a capture asks for the same file once per transaction (issue 12).
let lastFile: string | undefined;
let lastFileNumber = 0n;

export function binlogFileNumber(file: string): bigint {
  if (file === lastFile) return lastFileNumber;
  const m = /\.(\d+)$/.exec(file);
  const n = m ? BigInt(m[1]!) : 0n;
  lastFile = file; lastFileNumber = n;
  return n;
}

/**
 * A binlog transaction's commit sequence, (file number << 32 | start offset)
 * in decimal: with a double where that is exact (file numbers below 2^20),
 * else with BigInt. Same text either way (unit test).
 */
export function binlogCommitSequence(file: string, start: number): string {
  const n = binlogFileNumber(file);
  if (n < 0x100000n && Number.isInteger(start) && start >= 0 && start < 0x100000000) return (Number(n) * 0x100000000 + start).toString();
  return ((n << 32n) | BigInt(start)).toString();
}

/** Commit order as one 64-bit number: hi*2^32+lo. */
export function commitNumber(seq: string | Sequence): bigint {
  const s = typeof seq === 'string' ? parseSequence(seq) : seq;
  return (s.hi << 32n) + s.lo;
}

/** Digit value of a hex character code, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const SCAN_A = new Float64Array(3);
const SCAN_B = new Float64Array(3);

/**
 * The three parts of a sequence into `out`, without allocating; false when
 * `s` is not one or a part is longer than 13 hex digits (then the caller
 * takes the regular expression and BigInt path, which also names the error).
 */
function scanSequence(s: string, out: Float64Array): boolean {
  let i = 0;
  for (let part = 0; part < 3; part++) {
    let v = 0;
    const start = i;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 46) break;
      const d = hexDigit(c);
      if (d < 0) return false;
      v = v * 16 + d;
    }
    const n = i - start;
    if (n === 0 || n > (part < 2 ? 8 : 13)) return false;
    out[part] = v;
    if (part < 2) { if (i >= s.length) return false; i++; }
  }
  return i === s.length;
}

/**
 * Orders two sequences: hi, then lo, then index. Hot (every change is
 * compared on append and apply): parts of up to 13 hex digits are scanned
 * into doubles without allocating; anything else (a longer index, or an
 * invalid sequence, which throws) takes the regular expression path.
 */
export function compareSequences(a: string, b: string): number {
  if (scanSequence(a, SCAN_A) && scanSequence(b, SCAN_B)) {
    for (let i = 0; i < 3; i++) if (SCAN_A[i] !== SCAN_B[i]) return SCAN_A[i]! < SCAN_B[i]! ? -1 : 1;
    return 0;
  }
  const x = SEQ_RE.exec(a) ?? parseSequence(a) as never;
  const y = SEQ_RE.exec(b) ?? parseSequence(b) as never;
  for (let i = 1; i <= 3; i++) {
    const p = x[i]!;
    const q = y[i]!;
    if (p.length <= 13 && q.length <= 13) {
      const m = parseInt(p, 16);
      const n = parseInt(q, 16);
      if (m !== n) return m < n ? -1 : 1;
    } else {
      const m = BigInt(`0x${p}`);
      const n = BigInt(`0x${q}`);
      if (m !== n) return m < n ? -1 : 1;
    }
  }
  return 0;
}

const SCAN_PREV = new Float64Array(3);

/**
 * The index of the first of `items`' sequences that does not follow the one before it (compareSequences <= 0),
 * or -1 when each follows the last: each sequence scanned once, not twice as comparing neighbours would (issue 12:
 * the feed checks every appended change).
 */
export function firstOutOfOrder<T>(items: readonly T[], sequenceOf: (item: T) => string, from = 0, prev?: string): number {
  let have = prev !== undefined && scanSequence(prev, SCAN_PREV);
  let prevText = prev;
  for (let i = from; i < items.length; i++) {
    const seq = sequenceOf(items[i]!);
    if (have && scanSequence(seq, SCAN_B)) {
      let c = 0;
      for (let k = 0; k < 3 && c === 0; k++) if (SCAN_PREV[k] !== SCAN_B[k]) c = SCAN_PREV[k]! < SCAN_B[k]! ? -1 : 1;
      if (c >= 0) return i;
      SCAN_PREV.set(SCAN_B);
    } else {
      if (prevText !== undefined && compareSequences(prevText, seq) >= 0) return i;
      have = scanSequence(seq, SCAN_PREV);
    }
    prevText = seq;
  }
  return -1;
}

/** hi below 2^21: hi*2^32+lo stays below 2^53, exact as a double. */
const HI_EXACT = 0x200000;

/**
 * Redis Stream id for a sequence. Hot (every appended piece and every held
 * echo): doubles where they are exact (hi < 2^21, an index of up to 13 hex
 * digits), BigInt only beyond.
 */
export function toStreamId(seq: string): string {
  const m = SEQ_RE.exec(seq);
  if (!m) throw new InvalidSequenceError(seq);
  const hi = parseInt(m[1]!, 16);
  if (hi < HI_EXACT && m[3]!.length <= 13) return `${hi * 4294967296 + parseInt(m[2]!, 16)}-${parseInt(m[3]!, 16)}`;
  const s = parseSequence(seq);
  return `${commitNumber(s)}-${s.index}`;
}

/** PostgreSQL LSN text in canonical form (upper-case hex, no leading zeros): bigIntToLsn(lsnToBigInt(lsn)) without BigInt. */
export function canonicalLsnText(lsn: string): string {
  const m = LSN_RE.exec(lsn);
  if (!m) throw new InvalidSequenceError(lsn, 'a PostgreSQL LSN "<hex>/<hex>"');
  return `${parseInt(m[1]!, 16).toString(16).toUpperCase()}/${parseInt(m[2]!, 16).toString(16).toUpperCase()}`;
}

/** LSN "X/Y" as one 64-bit number in decimal text: lsnToBigInt(lsn).toString() without BigInt where a double is exact. */
export function lsnDecimal(lsn: string): string {
  const m = LSN_RE.exec(lsn);
  if (!m) throw new InvalidSequenceError(lsn, 'a PostgreSQL LSN "<hex>/<hex>"');
  const hi = parseInt(m[1]!, 16);
  if (hi < HI_EXACT) return String(hi * 4294967296 + parseInt(m[2]!, 16));
  return lsnToBigInt(lsn).toString();
}

const STREAM_ID_RE = /^(\d{1,20})-(\d{1,20})$/;

export function fromStreamId(id: string): string {
  const m = STREAM_ID_RE.exec(id);
  if (!m) throw new InvalidSequenceError(id, 'a Redis stream id "<ms>-<seq>"');
  const n = BigInt(m[1]!);
  if (n >= U64) throw new InvalidSequenceError(id, 'a Redis stream id "<ms>-<seq>"');
  return makeSequence(n >> 32n, n & 0xffffffffn, BigInt(m[2]!));
}
