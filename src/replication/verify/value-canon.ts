/**
 * One text form per value, the same whichever engine held it, so that a
 * source row and the destination row it became compare equal exactly when
 * they hold the same data (verifyJob, docs/consistency.md "Verifying a job").
 *
 * Values arrive in the change-event forms (change-event.ts) from the two
 * snapshot readers. The source column's kind decides how both sides are
 * read: a PostgreSQL boolean is `true` at the source and `1` in a MariaDB
 * TINYINT(1); a timestamptz is "...T...Z" at the source and "... ..." in a
 * MariaDB DATETIME(6) holding UTC; trailing zeros of a decimal or of a
 * fraction of a second depend on the column's declared scale, not the value.
 */
import type { ColumnKind, Row } from '../change-event.ts';

/** The comparable text of one value; null stays null. */
export function canonValue(kind: ColumnKind, v: unknown): string | null {
  if (v === null || v === undefined) return null;
  switch (kind) {
    case 'bool':
      return v === true || v === 1 || v === '1' || v === 't' || v === 'true' ? 't' : 'f';
    case 'int':
      return typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
    case 'decimal':
      return canonDecimal(String(v));
    case 'float':
      return canonFloat(v);
    case 'date':
    case 'time':
    case 'datetime':
    case 'timestamptz':
      return canonTemporal(String(v));
    case 'json':
      return canonJson(v);
    case 'uuid':
      return String(v).toLowerCase();
    case 'binary':
      return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('base64') : String(v);
    default:
      return typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
}

function canonDecimal(s: string): string {
  let t = s.trim();
  if (!/^[+-]?\d*\.?\d*$/.test(t)) return t;
  if (t.includes('.')) t = t.replace(/0+$/, '').replace(/\.$/, '');
  t = t.replace(/^([+-]?)0+(?=\d)/, '$1').replace(/^\+/, '');
  return t === '-0' || t === '' ? '0' : t;
}

function canonFloat(v: unknown): string {
  if (typeof v === 'string' && /^[+-]?(NaN|Infinity|inf)/i.test(v)) return v.replace(/^\+/, '');
  const n = typeof v === 'number' ? v : Number(v);
  if (Number.isNaN(n)) return String(v);
  if (Object.is(n, -0)) return '-0';
  return String(n);
}

/** "2024-01-02T03:04:05.120000Z" and "2024-01-02 03:04:05.12" read the same. */
function canonTemporal(s: string): string {
  let t = s.replace('T', ' ').replace(/(Z|[+-]00(:?00)?)$/, '');
  if (/\.\d+$/.test(t)) t = t.replace(/0+$/, '').replace(/\.$/, '');
  return t;
}

/** JSON with object keys sorted, so that key order and spacing do not count. */
function canonJson(v: unknown): string {
  let parsed: unknown;
  try { parsed = typeof v === 'string' ? JSON.parse(v) : v; } catch { return String(v); }
  return JSON.stringify(sortKeys(parsed));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/** A column to compare: its name at the source, its kind there, and its name at the destination. */
export interface CanonColumn { name: string; kind: ColumnKind; destName: string }

/** The comparable text of a row's listed columns (source names, or destination names with `dest`). */
export function canonRow(cols: CanonColumn[], row: Row, dest = false): string {
  return JSON.stringify(cols.map((c) => canonValue(c.kind, row[dest ? c.destName : c.name])));
}
