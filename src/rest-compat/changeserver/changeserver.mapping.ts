/**
 * changeserver's vocabulary and wire shapes: parameter names, media types,
 * error codes and messages, the ChangeList JSON (Value objects with the
 * PostgreSQL type OID, exact 64-bit numbers) and its protobuf twin.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import type { GraphQLErrorShape } from '../executor.ts';
import { RestError, type RestRequest, type RestResponse } from '../rest-route.ts';

export const MediaType = {
  Json: 'application/json',
  Protobuf: 'application/transicator+protobuf',
  Text: 'text/plain',
} as const;

export const Param = {
  Scope: 'scope',
  Selector: 'selector',
  Since: 'since',
  Limit: 'limit',
  Block: 'block',
  Snapshot: 'snapshot',
} as const;

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 100_000;

/** Transicator's error codes (changeserver/errors.go), plus the ones Tributary adds. */
export enum ChangeserverCode {
  UnsupportedFormat = 'UNSUPPORTED_FORMAT',
  ParameterInvalid = 'PARAMETER_INVALID',
  MissingParameter = 'MISSING_PARAMETER',
  SnapshotTooOld = 'SNAPSHOT_TOO_OLD',
  ServerError = 'INTERNAL_SERVER_ERROR',
  /** Tributary: /feeds/{name}/changes for a feed no job writes, or /changes with no CHANGESERVER_FEED. */
  NotFound = 'NOT_FOUND',
  MethodNotAllowed = 'METHOD_NOT_ALLOWED',
  Unauthenticated = 'UNAUTHENTICATED',
  Forbidden = 'FORBIDDEN',
  Unavailable = 'SERVICE_UNAVAILABLE',
  /** Tributary: the per-token rate limit (429). */
  RateLimited = 'RATE_LIMITED',
}

const ERROR_TEXT: Record<ChangeserverCode, string> = {
  [ChangeserverCode.UnsupportedFormat]: 'The specified media type is not supported',
  [ChangeserverCode.ParameterInvalid]: 'A parameter has an invalid value',
  [ChangeserverCode.MissingParameter]: 'A required parameter is missing',
  [ChangeserverCode.SnapshotTooOld]: 'The client is operating on an old snapshot',
  [ChangeserverCode.ServerError]: 'An error occurred in the server',
  [ChangeserverCode.NotFound]: 'The requested change feed does not exist',
  [ChangeserverCode.MethodNotAllowed]: 'The method is not allowed on this path',
  [ChangeserverCode.Unauthenticated]: 'A valid bearer token is required',
  [ChangeserverCode.Forbidden]: 'The token\'s role does not allow this operation',
  [ChangeserverCode.Unavailable]: 'The server is not available',
  [ChangeserverCode.RateLimited]: 'Too many requests for this token',
};

const STATUS_CODE: Record<number, ChangeserverCode> = {
  400: ChangeserverCode.ParameterInvalid, 401: ChangeserverCode.Unauthenticated, 403: ChangeserverCode.Forbidden,
  404: ChangeserverCode.NotFound, 405: ChangeserverCode.MethodNotAllowed, 413: ChangeserverCode.ParameterInvalid,
  415: ChangeserverCode.UnsupportedFormat, 429: ChangeserverCode.RateLimited, 503: ChangeserverCode.Unavailable,
};

/** The Error model: {code, error, description}. */
export function errorResponse(status: number, code: ChangeserverCode, description?: string): RestResponse {
  return { status, json: { code, error: ERROR_TEXT[code], ...(description ? { description } : {}) } };
}

export function restErrorResponse(err: RestError): RestResponse {
  const code = (typeof err.code === 'string' && err.code in ERROR_TEXT ? err.code : STATUS_CODE[err.status] ?? ChangeserverCode.ServerError) as ChangeserverCode;
  return errorResponse(err.status, code, err.status >= 500 ? undefined : err.message);
}

/** GraphQL error codes (src/errors.ts) to HTTP status and changeserver code. */
const GRAPHQL_CODES: Record<string, [number, ChangeserverCode]> = {
  SNAPSHOT_TOO_OLD: [400, ChangeserverCode.SnapshotTooOld],
  PARAMETER_INVALID: [400, ChangeserverCode.ParameterInvalid],
  BAD_USER_INPUT: [400, ChangeserverCode.ParameterInvalid],
  SOURCE_NOT_READY: [400, ChangeserverCode.ParameterInvalid],
  CONNECTION_FAILED: [400, ChangeserverCode.ParameterInvalid],
  GRAPHQL_VALIDATION_FAILED: [400, ChangeserverCode.ParameterInvalid],
  NOT_FOUND: [404, ChangeserverCode.NotFound],
  UNAUTHENTICATED: [401, ChangeserverCode.Unauthenticated],
  FORBIDDEN: [403, ChangeserverCode.Forbidden],
  UNAVAILABLE: [503, ChangeserverCode.Unavailable],
};

export function graphqlErrorResponse(errors: GraphQLErrorShape[]): RestResponse {
  const first = errors[0];
  const [status, code] = GRAPHQL_CODES[first?.extensions?.code ?? ''] ?? [500, ChangeserverCode.ServerError];
  // 503 says why (shutting down, too many long polls waiting); other 5xx stay without details.
  return errorResponse(status, code, status >= 500 && status !== 503 ? undefined : first?.message);
}

/** Values of a repeatable query parameter. */
export function multi(q: RestRequest['query'], name: string): string[] {
  const v = q[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export function single(q: RestRequest['query'], name: string): string | undefined {
  const v = multi(q, name)[0];
  return v === '' ? undefined : v;
}

/** An optional integer parameter; junk is PARAMETER_INVALID naming the parameter, as Transicator did. */
export function intParam(q: RestRequest['query'], name: string): number | undefined {
  const v = single(q, name);
  if (v === undefined) return undefined;
  if (!/^-?\d{1,15}$/.test(v)) throw new RestError(400, name, ChangeserverCode.ParameterInvalid);
  return Number(v);
}

/**
 * Content negotiation over JSON and protobuf (Accept with q-values; none or
 * a wildcard = JSON). Nothing acceptable = 415 UNSUPPORTED_FORMAT.
 */
export function selectMediaType(accept: string | undefined): typeof MediaType.Json | typeof MediaType.Protobuf {
  if (!accept || !accept.trim()) return MediaType.Json;
  let best: { type: typeof MediaType.Json | typeof MediaType.Protobuf; q: number } | undefined;
  for (const part of accept.split(',')) {
    const [range, ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
    const qp = params.find((p) => p.startsWith('q='));
    const q = qp ? Number(qp.slice(2)) : 1;
    if (!(q > 0)) continue;
    for (const type of [MediaType.Json, MediaType.Protobuf] as const) {
      const [major] = type.split('/');
      if (range === type || range === '*/*' || range === `${major}/*`) {
        if (!best || q > best.q) best = { type, q };
        break; // a wildcard picks JSON, the first offered
      }
    }
  }
  if (!best) throw new RestError(415, `none of "${accept}" is produced here: use ${MediaType.Json} or ${MediaType.Protobuf}`, ChangeserverCode.UnsupportedFormat);
  return best.type;
}

// ---- change lists --------------------------------------------------------

/** What the route's GraphQL operation returns for one change. */
export interface GqlChange {
  sequence: string;
  txid: string;
  commitSequence: string;
  changeSequence: string;
  commitIndex: number;
  operation: number;
  schema: string;
  table: string;
  newRow: Record<string, unknown> | null;
  oldRow: Record<string, unknown> | null;
  columnTypes: { name: string; kind: string; pgType: number }[];
  /** Commit time, ISO 8601. */
  commitTime: string;
}

export interface GqlChangeList { firstSequence: string; lastSequence: string; changes: GqlChange[] }

type ColumnInfo = { kind: string; pgType: number };

/** Tributary's timestamp values: "YYYY-MM-DD[ T]HH:MM:SS[.f]" with "Z" or a PostgreSQL offset (timestamptz), none (timestamp). */
const TIMESTAMP_RE = /^(\d{4,}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}(?::\d{2}){0,2})?$/;

/**
 * A timestamp value as PostgreSQL prints it (DateStyle ISO, TimeZone UTC):
 * "2024-01-02 03:04:05.12+00" for timestamptz, no zone for timestamp, and
 * the fraction without trailing zeros (none when zero). Tributary carries
 * timestamptz as UTC ISO text with six digits and MariaDB DATETIME with the
 * column's digits; text of another shape (infinity, BC, 0000-00-00) is
 * already the server's own and passes through.
 */
export function pgTimestampText(text: string, kind: 'datetime' | 'timestamptz'): string {
  const m = TIMESTAMP_RE.exec(text);
  if (!m) return text;
  const [, day, time, frac, zone] = m;
  const fraction = (frac ?? '').replace(/0+$/, '');
  const base = `${day} ${time}${fraction ? `.${fraction}` : ''}`;
  if (kind === 'datetime') return base;
  return `${base}${!zone || zone === 'Z' ? '+00' : zone}`;
}

/** A value in its PostgreSQL text form, as Transicator's JSON gave it. */
export function valueText(v: unknown, kind: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    if (kind === 'binary') return `\\x${Buffer.from(v, 'base64').toString('hex')}`;
    if (kind === 'datetime' || kind === 'timestamptz') return pgTimestampText(v, kind);
    return v;
  }
  return JSON.stringify(v);
}

const toBig = (s: string): bigint => (/^\d{1,20}$/.test(s) ? BigInt(s) : 0n);

function jsonRow(row: Record<string, unknown> | null, cols: Map<string, ColumnInfo>): Record<string, { value: string | null; type: number }> | undefined {
  if (!row) return undefined;
  const out: Record<string, { value: string | null; type: number }> = {};
  for (const [name, v] of Object.entries(row)) {
    const c = cols.get(name);
    out[name] = { value: valueText(v, c?.kind ?? 'other'), type: c?.pgType ?? 25 };
  }
  return out;
}

/** Transicator's `timestamp`: seconds since the Unix epoch (its model's unit); here the source commit time. */
export const timestampOf = (c: GqlChange): number => Math.floor(Date.parse(c.commitTime) / 1000);

const columnsOf = (c: GqlChange) => new Map(c.columnTypes.map((t) => [t.name, t] as const));

/** The ChangeList JSON model; 64-bit numbers are bigints, written exactly by `serialize`. */
export function changeListJson(list: GqlChangeList): Record<string, unknown> {
  return {
    firstSequence: list.firstSequence,
    lastSequence: list.lastSequence,
    changes: list.changes.map((c) => {
      const cols = columnsOf(c);
      const newRow = jsonRow(c.newRow, cols);
      const oldRow = jsonRow(c.oldRow, cols);
      return {
        operation: c.operation,
        table: `${c.schema}.${c.table}`,
        sequence: c.sequence,
        commitSequence: toBig(c.commitSequence),
        changeSequence: toBig(c.changeSequence),
        commitIndex: c.commitIndex,
        txid: toBig(c.txid),
        timestamp: timestampOf(c),
        ...(newRow ? { newRow } : {}),
        ...(oldRow ? { oldRow } : {}),
      };
    }),
  };
}

const BIG = `__big_${randomBytes(6).toString('hex')}__`;
const BIG_RE = new RegExp(`"${BIG}(\\d+)"`, 'g');

/** JSON with two-space indentation (as Transicator's MarshalIndent) and bigints as exact numbers. */
export function serialize(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${BIG}${v}` : v), 2).replace(BIG_RE, '$1');
}

// ---- protobuf --------------------------------------------------------------

const root = protobuf.parse(readFileSync(new URL('./transicator.proto', import.meta.url), 'utf8'), { keepCase: true }).root;
export const ChangeListPb = root.lookupType('common.ChangeListPb');

/** uint64/int64 as protobufjs's {low, high} so no precision is lost above 2^53. */
function long(v: bigint, unsigned = true): { low: number; high: number; unsigned: boolean } {
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned };
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

/** "YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z]" as microseconds since 2000-01-01 UTC; undefined when it is no real instant. */
function pgMicros(text: string): bigint | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z?$/.exec(text);
  if (!m || m[1] === '0000') return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  if (!Number.isFinite(ms)) return undefined;
  return BigInt(ms - PG_EPOCH_MS) * 1000n + BigInt((m[7] ?? '').padEnd(6, '0') || '0');
}

/** A value in ValuePb's typed oneof, the way Transicator's output plugin typed PostgreSQL datums. */
export function valuePb(v: unknown, kind: string): Record<string, unknown> | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'boolean') return { bool: v };
  if (kind === 'int' && typeof v === 'number') return { int: long(BigInt(v), false) };
  // Integers beyond 2^53 travel as decimal text; int64 takes them exactly, uint64 what only it can hold (MariaDB BIGINT UNSIGNED).
  if (kind === 'int' && typeof v === 'string' && /^-?\d{1,20}$/.test(v)) {
    const n = BigInt(v);
    if (n >= INT64_MIN && n <= INT64_MAX) return { int: long(n, false) };
    if (n > INT64_MAX && n <= UINT64_MAX) return { uint: long(n) };
  }
  if (kind === 'float' && typeof v === 'number') return { double: v };
  if (kind === 'binary' && typeof v === 'string') return { bytes: Buffer.from(v, 'base64') };
  if ((kind === 'datetime' || kind === 'timestamptz') && typeof v === 'string') {
    const micros = pgMicros(v);
    if (micros !== undefined) return { timestamp: long(micros, false) };
  }
  return { string: valueText(v, kind) ?? '' };
}

function pbColumns(row: Record<string, unknown> | null, cols: Map<string, ColumnInfo>): Record<string, unknown>[] {
  if (!row) return [];
  return Object.entries(row).map(([name, v]) => {
    const c = cols.get(name);
    const value = valuePb(v, c?.kind ?? 'other');
    return { name, ...(value ? { value } : {}), type: c?.pgType ?? 25 };
  });
}

export function changeListProto(list: GqlChangeList): Uint8Array {
  const message = {
    firstSequence: list.firstSequence,
    lastSequence: list.lastSequence,
    changes: list.changes.map((c) => {
      const cols = columnsOf(c);
      const txid = toBig(c.txid);
      return {
        operation: c.operation,
        table: `${c.schema}.${c.table}`,
        sequence: c.sequence,
        commitSequence: long(toBig(c.commitSequence)),
        changeSequence: long(toBig(c.changeSequence)),
        commitIndex: c.commitIndex,
        ...(txid > 0n && txid < 1n << 32n ? { transactionID: Number(txid) } : {}),
        transactionIDEpoch: long(txid),
        timestamp: long(BigInt(timestampOf(c)), false),
        newColumns: pbColumns(c.newRow, cols),
        oldColumns: pbColumns(c.oldRow, cols),
      };
    }),
  };
  // encode() straight from plain objects: fromObject would turn {low, high} into lossy numbers.
  return ChangeListPb.encode(message).finish();
}
