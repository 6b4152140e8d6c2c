/**
 * PostgreSQL type -> ColumnType, and PostgreSQL text output -> the JSON-safe
 * Value of change-event.ts. Capture (pgoutput sends text) and snapshot (read
 * with every pg type parser replaced by "return the text") both go through
 * `pgTextToValue`, so the same row yields the same values on both paths.
 *
 * We never let a driver parse values: pg's default parsers turn timestamptz
 * into a JS Date (milliseconds, microseconds lost) and int8/numeric into
 * lossy numbers. The sessions run with TimeZone=UTC, DateStyle=ISO and
 * bytea_output=hex (pg-connection.ts), yet the conversions below still accept
 * any offset and the escape bytea format, because a server can force them.
 */
import type { ColumnKind, ColumnType, Value } from '../change-event.ts';

/** What the catalog says about one (type oid, typmod) pair. */
export interface PgTypeInfo {
  oid: number;
  typmod: number;
  /** format_type(oid, typmod), e.g. "numeric(65,30)". */
  formatted: string;
  /** typtype of the base type ('b' base, 'e' enum, 'd' resolved away, 'c' composite, ...). */
  typtype: string;
  /** typname of the base type (a domain is resolved to what it wraps). */
  baseName: string;
  /** typmod that applies to the base type (the domain's typtypmod for domains). */
  baseTypmod: number;
  /** typcategory of the type itself ('A' for arrays). */
  category: string;
  /** A type any PostgreSQL database has, holding the same text form (see ColumnType.pgType). */
  portable?: string;
  /** Enum labels in sort order, for enums (and domains over enums). */
  enumLabels: string[] | null;
}

const KIND_BY_NAME: Record<string, ColumnKind> = {
  int2: 'int', int4: 'int', int8: 'int', oid: 'int',
  numeric: 'decimal',
  float4: 'float', float8: 'float',
  text: 'text', varchar: 'text', bpchar: 'text', name: 'text', char: 'text', citext: 'text',
  bytea: 'binary',
  date: 'date',
  time: 'time',
  timestamp: 'datetime',
  timestamptz: 'timestamptz',
  json: 'json', jsonb: 'json',
  bool: 'bool',
  uuid: 'uuid',
  bit: 'bit', varbit: 'bit',
};

const INT_SIZE: Record<string, number> = { int2: 2, int4: 4, int8: 8, oid: 4 };

/** Default fractional second digits of time/timestamp types without a typmod. */
const PG_DEFAULT_FSP = 6;

export function pgColumnKind(info: PgTypeInfo): ColumnKind {
  if (info.category === 'A') return 'other';
  if (info.typtype === 'e') return 'enum';
  return KIND_BY_NAME[info.baseName] ?? 'other';
}

/** ColumnType for a column of the given type; `nullable` when known from pg_attribute. */
export function pgColumnType(name: string, info: PgTypeInfo, nullable?: boolean): ColumnType {
  const kind = pgColumnKind(info);
  const col: ColumnType = { name, kind, sourceType: info.formatted, pgOid: info.oid };
  if (kind === 'other' && info.portable && info.portable !== info.formatted) col.pgType = info.portable;
  if (nullable !== undefined) col.nullable = nullable;
  const mod = info.baseTypmod;
  switch (kind) {
    case 'int':
      col.size = INT_SIZE[info.baseName] ?? 8;
      if (info.baseName === 'oid') col.unsigned = true;
      break;
    case 'decimal':
      // numeric typmod = ((precision << 16) | scale) + VARHDRSZ; -1 = unconstrained.
      if (mod >= 4) {
        col.precision = ((mod - 4) >> 16) & 0xffff;
        col.scale = (mod - 4) & 0xffff;
      }
      break;
    case 'text':
      if ((info.baseName === 'varchar' || info.baseName === 'bpchar') && mod >= 4) col.length = mod - 4;
      if (info.baseName === 'bpchar') col.fixed = true;
      col.family = info.baseName;
      break;
    case 'bit':
      if (mod >= 0) col.size = mod;
      if (info.baseName === 'bit') col.fixed = true;
      break;
    case 'time':
    case 'datetime':
    case 'timestamptz':
      col.fsp = mod >= 0 ? mod : PG_DEFAULT_FSP;
      break;
    case 'enum':
      col.values = info.enumLabels ?? [];
      break;
    case 'binary':
      col.family = 'bytea';
      break;
    default:
      break;
  }
  return col;
}

/** Convert PostgreSQL's text output of a value to the JSON-safe representation for its column kind. */
export function pgTextToValue(text: string | null | undefined, col: ColumnType): Value {
  if (text === null || text === undefined) return null;
  switch (col.kind) {
    case 'int': {
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : text;
    }
    case 'float':
      // Kept as text: JSON has no NaN or Infinity, and writes -0 as 0 (the feed would lose the sign).
      return text === 'NaN' || text === 'Infinity' || text === '-Infinity' || text === '-0' ? text : Number(text);
    case 'bool':
      return text === 't' || text === 'true';
    case 'binary':
      return byteaTextToBase64(text);
    case 'timestamptz':
      return normaliseTimestamptz(text);
    case 'datetime':
    case 'time':
      return padFraction(text);
    case 'uuid':
      return text.toLowerCase();
    default:
      // decimal (exact text), text, date, json (JSON text), enum, bit, other.
      return text;
  }
}

/** A JSON-safe value back to a query parameter for a column (keyset bounds). */
export function valueToPgParam(value: Value | undefined, col: ColumnType): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (col.kind === 'binary' && typeof value === 'string') return '\\x' + Buffer.from(value, 'base64').toString('hex');
  return value;
}

/** bytea text output (hex "\x0a0b" or the legacy escape format) -> base64. */
export function byteaTextToBase64(text: string): string {
  if (text.startsWith('\\x')) return Buffer.from(text.slice(2), 'hex').toString('base64');
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5c /* \ */) {
      if (text[i + 1] === '\\') { bytes.push(0x5c); i += 1; continue; }
      bytes.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
      continue;
    }
    // Escape format prints only ASCII bytes literally.
    bytes.push(ch);
  }
  return Buffer.from(bytes).toString('base64');
}

const FRACTION_RE = /\.(\d{1,6})(?=$|[^\d])/;

/** "12:00:00.5" -> "12:00:00.500000": fractions always carry six digits when present. */
function padFraction(text: string): string {
  // Hot (every time value of every row): no '.' or already six digits leaves the text as it is, without a replace.
  const dot = text.indexOf('.');
  if (dot < 0) return text;
  let end = dot + 1;
  while (end < text.length && text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++;
  const digits = end - dot - 1;
  if (digits === 6) return text;
  // One to five digits: padded in place (what FRACTION_RE's replace did, without its match and callback).
  if (digits >= 1 && digits < 6) return text.slice(0, end) + ZEROS[6 - digits] + text.slice(end);
  return text.replace(FRACTION_RE, (_m, f: string) => '.' + f.padEnd(6, '0'));
}

const ZEROS = ['', '0', '00', '000', '0000', '00000'];

const TSTZ_RE = /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?|Z)?$/;

/**
 * timestamptz text ("2024-03-01 10:11:12.123456+02", any offset) -> UTC
 * "2024-03-01T08:11:12.123456Z". Whole seconds go through Date arithmetic;
 * the microseconds are carried as text so none are lost. Values Date cannot
 * express (infinity, BC) are kept in the server's text.
 */
export function normaliseTimestamptz(text: string): string {
  const m = TSTZ_RE.exec(text);
  if (!m) return text;
  const [, y, mo, d, h, mi, s, frac, sign, oh, om, os] = m;
  const offsetSeconds = sign ? (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om ?? 0) * 60 + Number(os ?? 0)) : 0;
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi), Number(s) - offsetSeconds, 0);
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999) return text;
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${String(year).padStart(4, '0')}-${p2(date.getUTCMonth() + 1)}-${p2(date.getUTCDate())}`
    + `T${p2(date.getUTCHours())}:${p2(date.getUTCMinutes())}:${p2(date.getUTCSeconds())}`
    + `.${(frac ?? '').padEnd(6, '0')}Z`;
}
