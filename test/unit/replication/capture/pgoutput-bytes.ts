/** pgoutput message bytes for the capture's unit tests (protocol version 1, text tuples). */
export const cstr = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
export const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
export const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };

/** A tuple's value: text, SQL NULL, or an unchanged TOAST datum. */
export type Val = string | null | 'TOAST';
export const tupleData = (vals: Val[]) => Buffer.concat([i16(vals.length), ...vals.map((v) => {
  if (v === null) return Buffer.from('n');
  if (v === 'TOAST') return Buffer.from('u');
  const body = Buffer.from(v, 'utf8');
  return Buffer.concat([Buffer.from('t'), i32(body.length), body]);
})]);

/** A Relation message; every column text (oid 25) unless `oids` says otherwise; the first column flagged as key. */
export function relation(oid: number, cols: string[], opts: { oids?: number[]; name?: string; identity?: string } = {}): Buffer {
  return Buffer.concat([Buffer.from('R'), i32(oid), cstr('public'), cstr(opts.name ?? 't'), Buffer.from(opts.identity ?? 'f'), i16(cols.length),
    ...cols.map((c, i) => Buffer.concat([Buffer.from([i === 0 ? 1 : 0]), cstr(c), i32(opts.oids?.[i] ?? 25), i32(-1)]))]);
}
