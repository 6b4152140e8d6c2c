/** Ordering of source positions (same source kind only). */
import type { SourcePosition } from './change-event.ts';
import { binlogFileNumber, lsnToBigInt } from './sequence.ts';

/** <0 if a is before b, 0 if equal, >0 if after. */
export function comparePositions(a: SourcePosition, b: SourcePosition): number {
  if (a.kind === 'postgres' && b.kind === 'postgres') {
    const x = lsnToBigInt(a.lsn); const y = lsnToBigInt(b.lsn);
    return x === y ? 0 : x < y ? -1 : 1;
  }
  if (a.kind === 'mysql' && b.kind === 'mysql') {
    const fa = binlogFileNumber(a.file); const fb = binlogFileNumber(b.file);
    if (fa !== fb) return fa < fb ? -1 : 1;
    return a.pos - b.pos;
  }
  throw new Error(`cannot compare ${a.kind} and ${b.kind} positions`);
}

/** Parse a user-given start position (Udup `Gtid`): "file:pos", an LSN "X/Y", or a MariaDB GTID list. */
export function parseStartPosition(kind: 'mysql' | 'postgres', text: string): SourcePosition | undefined {
  const t = text.trim();
  if (!t) return undefined;
  if (kind === 'postgres') {
    if (!/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(t)) throw new Error(`start position "${t}" is not a PostgreSQL LSN like 0/16B3748`);
    return { kind: 'postgres', lsn: t.toUpperCase() };
  }
  const fp = /^(.+\.\d+):(\d+)$/.exec(t);
  if (fp) return { kind: 'mysql', file: fp[1]!, pos: Number(fp[2]) };
  if (/^\d+-\d+-\d+(,\s*\d+-\d+-\d+)*$/.test(t)) return { kind: 'mysql', file: '', pos: 0, gtid: t };
  throw new Error(`start position "${t}" is neither "binlog-file:pos" nor a GTID list like 0-1-100`);
}
