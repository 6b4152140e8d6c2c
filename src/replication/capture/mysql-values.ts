/**
 * The one conversion path from MariaDB/MySQL values to Tributary's JSON-safe
 * values (table in change-event.ts). The binlog capture (zongji rows) and the
 * snapshot reader (mysql2 query rows) both feed their driver values through
 * `toValue`, so the same stored row yields the same `Row` on either path.
 *
 * Both drivers run with the options of mysql-connection.ts: temporal values
 * as text, big integers and decimals as exact strings, TIMESTAMP text in UTC,
 * binary/bit values as Buffers.
 */
import type { ColumnKind, ColumnType, Row, Value } from '../change-event.ts';

/** One row of information_schema.COLUMNS, as mysql-schema.ts selects it. */
export interface InformationSchemaColumn {
  COLUMN_NAME: string;
  DATA_TYPE: string;
  COLUMN_TYPE: string;
  IS_NULLABLE: string;
  CHARACTER_MAXIMUM_LENGTH: number | string | null;
  NUMERIC_PRECISION: number | string | null;
  NUMERIC_SCALE: number | string | null;
  DATETIME_PRECISION: number | string | null;
}

const INT_SIZES: Record<string, number> = { tinyint: 1, smallint: 2, mediumint: 3, int: 4, integer: 4, bigint: 8, year: 1 };
const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext']);
const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

function num(v: number | string | null | undefined): number | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Labels of an enum/set COLUMN_TYPE: "enum('a','it''s')" -> ["a", "it's"]. */
export function parseEnumLabels(columnType: string): string[] {
  const open = columnType.indexOf('(');
  const body = columnType.slice(open + 1, columnType.lastIndexOf(')'));
  const labels: string[] = [];
  const re = /'((?:[^'\\]|''|\\.)*)'/g;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    labels.push(m[1]!.replace(/''/g, "'").replace(/\\(.)/g, '$1'));
  }
  return labels;
}

/**
 * ColumnType from information_schema. `jsonColumn` is true for MariaDB JSON
 * columns, which are LONGTEXT with a json_valid() check constraint.
 */
export function columnTypeFromSchema(c: InformationSchemaColumn, jsonColumn = false): ColumnType {
  const dataType = c.DATA_TYPE.toLowerCase();
  const sourceType = c.COLUMN_TYPE;
  const base: ColumnType = { name: c.COLUMN_NAME, kind: 'other', sourceType, nullable: c.IS_NULLABLE === 'YES' };
  const set = (kind: ColumnKind, extra: Partial<ColumnType> = {}): ColumnType => {
    const out: ColumnType = { ...base, kind };
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
    return out;
  };
  if (jsonColumn || dataType === 'json') return set('json', { family: dataType });
  if (dataType in INT_SIZES) {
    // tinyint(1) stays an int: MariaDB has no boolean, and 2 or -5 are legal values.
    return set('int', {
      size: INT_SIZES[dataType], unsigned: /unsigned/i.test(sourceType) || undefined,
      family: dataType === 'year' ? 'year' : undefined,
    });
  }
  switch (dataType) {
    case 'decimal': case 'numeric': case 'dec': case 'fixed':
      return set('decimal', { precision: num(c.NUMERIC_PRECISION), scale: num(c.NUMERIC_SCALE), unsigned: /unsigned/i.test(sourceType) || undefined });
    case 'float':
      return set('float', { size: 4, unsigned: /unsigned/i.test(sourceType) || undefined });
    case 'double': case 'real': case 'double precision':
      return set('float', { size: 8, unsigned: /unsigned/i.test(sourceType) || undefined });
    case 'date': return set('date');
    case 'time': return set('time', { fsp: num(c.DATETIME_PRECISION) ?? 0 });
    case 'datetime': return set('datetime', { fsp: num(c.DATETIME_PRECISION) ?? 0 });
    case 'timestamp': return set('timestamptz', { fsp: num(c.DATETIME_PRECISION) ?? 0 });
    case 'enum': return set('enum', { values: parseEnumLabels(sourceType) });
    case 'set': return set('set', { values: parseEnumLabels(sourceType) });
    case 'bit': return set('bit', { size: num(c.NUMERIC_PRECISION) ?? 1 });
    case 'uuid': return set('uuid');
    default: break;
  }
  if (TEXT_TYPES.has(dataType)) {
    return set('text', { length: num(c.CHARACTER_MAXIMUM_LENGTH), fixed: dataType === 'char' || undefined, family: dataType });
  }
  if (BINARY_TYPES.has(dataType)) {
    return set('binary', { length: num(c.CHARACTER_MAXIMUM_LENGTH), fixed: dataType === 'binary' || undefined, family: dataType });
  }
  return set('other', { family: dataType });
}

/** The shortest decimal that reads back as the same float32: FLOAT columns hold 32-bit values. */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v)) return v;
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const c = Number(f.toPrecision(p));
    if (Math.fround(c) === f) return c;
  }
  return f;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function intValue(raw: unknown, col: ColumnType): Value {
  let n: number | bigint;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'bigint') n = raw;
  else n = BigInt(String(raw).trim());
  // zongji decodes YEAR as 1900 + stored byte, so the zero year 0000 arrives
  // as 1900, a value YEAR cannot hold (its range is 1901..2155 plus 0000).
  if (col.family === 'year' && Number(n) === 1900) return 0;
  if (typeof n === 'number') return n;
  return n <= MAX_SAFE && n >= -MAX_SAFE ? Number(n) : n.toString();
}

function floatValue(raw: unknown, col: ColumnType): Value {
  const v = typeof raw === 'number' ? raw : Number(String(raw));
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return col.size === 4 ? shortestFloat32(v) : v;
}

/** Bits of a big-endian BIT(n) value, most significant first, exactly n digits. */
function bitValue(raw: unknown, col: ColumnType): Value {
  const bits = col.size ?? 1;
  let big: bigint;
  if (Buffer.isBuffer(raw)) big = raw.length === 0 ? 0n : BigInt('0x' + raw.toString('hex'));
  else if (typeof raw === 'number' || typeof raw === 'bigint') big = BigInt(raw);
  else if (typeof raw === 'string' && /^[01]+$/.test(raw)) return raw.padStart(bits, '0').slice(-bits);
  else big = BigInt(String(raw));
  return big.toString(2).padStart(bits, '0').slice(-bits);
}

/**
 * zongji mis-decodes negative TIME values whose seconds are zero (it adds one
 * second after a one's-complement flip, without carrying), printing e.g.
 * "-11:63:64" for -12:00:00. A real TIME never has 64 seconds, so such text
 * is recognised and rebuilt from the packed hour/minute/second fields.
 */
export function repairTime(text: string): string {
  const m = /^-(\d{2,3}):(\d{2}):(\d{2})(\.\d+)?$/.exec(text);
  if (!m || Number(m[3]) < 60) return text;
  const packed = ((Number(m[1]) << 12) | (Number(m[2]) << 6) | (Number(m[3]) - 1)) + 1;
  const h = packed >> 12;
  const min = (packed >> 6) & 63;
  const s = packed & 63;
  return `-${String(h).padStart(2, '0')}:${String(min).padStart(2, '0')}:${String(s).padStart(2, '0')}${m[4] ?? ''}`;
}

function formatUuid(b: Buffer): string {
  const h = Buffer.concat([b, Buffer.alloc(Math.max(0, 16 - b.length))]).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** RFC 5952 text, as MariaDB prints INET6 (IPv4-mapped and -compatible forms included). */
function formatInet6(b: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  const v4 = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${v4}`;
  if (groups.slice(0, 6).every((g) => g === 0) && (groups[6]! > 0 || groups[7]! > 1)) return `::${v4}`;
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

function pad(n: number, w = 2): string { return String(n).padStart(w, '0'); }

function dateText(d: Date, withTime: boolean): string {
  const day = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  if (!withTime) return day;
  const ms = d.getUTCMilliseconds();
  return `${day} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${ms ? '.' + pad(ms, 3) : ''}`;
}

function textOf(raw: unknown): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (raw instanceof Date) return dateText(raw, true);
  return String(raw);
}

/**
 * A decoded row's values converted by `present`, the columns its own keys are known to be (convertRow without the
 * checks): the mapper's rows of one shape, and the feed's rows read again from their row images (feed-codec-wire.ts).
 */
export function presentRow(raw: Record<string, unknown>, present: ColumnType[]): Row {
  const row: Row = {};
  for (let i = 0; i < present.length; i++) {
    const col = present[i]!;
    row[col.name] = toValue(col, raw[col.name]);
  }
  return row;
}

/** A driver value (zongji or mysql2, options of mysql-connection.ts) as Tributary's JSON-safe value. */
export function toValue(col: ColumnType, raw: unknown): Value {
  if (raw === null) return null;
  if (raw === undefined) {
    // zongji yields undefined for the invalid-enum index 0, which MariaDB shows as ''.
    return col.kind === 'enum' ? '' : null;
  }
  switch (col.kind) {
    case 'int': return intValue(raw, col);
    case 'decimal': return String(raw);
    case 'float': return floatValue(raw, col);
    case 'binary': return (Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw), 'utf8')).toString('base64');
    case 'bit': return bitValue(raw, col);
    case 'bool': return Boolean(typeof raw === 'string' ? Number(raw) : raw);
    case 'date': return raw instanceof Date ? dateText(raw, false) : String(raw);
    case 'datetime': return textOf(raw);
    case 'time': return repairTime(String(raw));
    case 'timestamptz': {
      const t = textOf(raw);
      return t.includes('T') ? (t.endsWith('Z') ? t : t + 'Z') : t.replace(' ', 'T') + 'Z';
    }
    case 'json':
      if (typeof raw === 'string') return raw;
      if (Buffer.isBuffer(raw)) return raw.toString('utf8');
      return JSON.stringify(raw);
    case 'uuid': return (Buffer.isBuffer(raw) ? formatUuid(raw) : String(raw)).toLowerCase();
    case 'enum': case 'set': case 'text': return textOf(raw);
    case 'other':
    default:
      if (Buffer.isBuffer(raw)) {
        // With binlog_row_metadata=FULL zongji sees MariaDB INET4/INET6 as plain binary.
        if (col.family === 'inet6' && raw.length === 16) return formatInet6(raw);
        if (col.family === 'inet4' && raw.length === 4) return [...raw].join('.');
        return raw.toString('base64');
      }
      if (typeof raw === 'object') return JSON.stringify(raw);
      return typeof raw === 'number' ? raw : String(raw);
  }
}

/**
 * A ColumnType for a value whose column the metadata does not know (the
 * table changed between the binlog event and the metadata read): a best
 * guess from the driver value, so the row is still delivered.
 */
export function guessColumnType(name: string, raw: unknown): ColumnType {
  const kind: ColumnKind = typeof raw === 'number' ? (Number.isInteger(raw) ? 'int' : 'float')
    : Buffer.isBuffer(raw) ? 'binary' : 'text';
  return { name, kind, sourceType: 'unknown' };
}

/** Convert a driver row, columns in metadata order; columns the metadata lacks get a guessed type. */
export function convertRow(
  raw: Record<string, unknown>, columns: ColumnType[], byName: Map<string, ColumnType>, unknown?: Map<string, ColumnType>,
): Row {
  const row: Row = {};
  for (const col of columns) if (col.name in raw) row[col.name] = toValue(col, raw[col.name]);
  for (const name of Object.keys(raw)) {
    if (byName.has(name)) continue;
    const guessed = unknown?.get(name) ?? guessColumnType(name, raw[name]);
    unknown?.set(name, guessed);
    row[name] = toValue(guessed, raw[name]);
  }
  return row;
}

/**
 * The inverse of `toValue` for key values used as query parameters (chunk
 * bounds travel JSON-safe between workers and come back here).
 */
export function toParam(col: ColumnType, value: Value): unknown {
  if (value === null) return null;
  switch (col.kind) {
    case 'binary': return Buffer.from(String(value), 'base64');
    case 'bit': {
      // An unsigned integer literal: MariaDB compares a BIT column with a quoted
      // string as a double (wrong above 2^53) and with a hex string not at all.
      const b = BigInt('0b' + (String(value) || '0'));
      return { toSqlString: () => b.toString() };
    }
    case 'timestamptz': return String(value).replace('T', ' ').replace(/Z$/, '');
    case 'bool': return value ? 1 : 0;
    default: return value;
  }
}
