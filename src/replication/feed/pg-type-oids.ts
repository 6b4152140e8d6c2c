/**
 * PostgreSQL type OIDs for a feed's columns: Transicator's `Value.type` is
 * "the Postgres numeric type of the field", and clients switch on it.
 *
 * A PostgreSQL source carries the real OID (`ColumnType.pgOid`). A MariaDB
 * source has none, so the column kind maps to the closest built-in type:
 *
 * | MariaDB column                         | PostgreSQL type (OID)            |
 * |----------------------------------------|----------------------------------|
 * | tinyint, tinyint unsigned, smallint    | int2 (21)                        |
 * | smallint unsigned, mediumint, int      | int4 (23)                        |
 * | int unsigned, bigint                   | int8 (20)                        |
 * | bigint unsigned, decimal               | numeric (1700)                   |
 * | float / double                         | float4 (700) / float8 (701)      |
 * | char / varchar / text kinds            | bpchar (1042) / varchar (1043) / text (25) |
 * | binary, varbinary, blobs               | bytea (17)                       |
 * | date / time / datetime / timestamp     | date (1082) / time (1083) / timestamp (1114) / timestamptz (1184) |
 * | json                                   | json (114)                       |
 * | enum, set, anything else               | text (25)                        |
 * | bit(n)                                 | bit (1560)                       |
 * | uuid (MariaDB 10.7+)                   | uuid (2950)                      |
 * | boolean kind                           | bool (16)                        |
 */
import type { ColumnType } from '../change-event.ts';

export enum PgOid {
  Bool = 16,
  Bytea = 17,
  Int8 = 20,
  Int2 = 21,
  Int4 = 23,
  Text = 25,
  Json = 114,
  Float4 = 700,
  Float8 = 701,
  Bpchar = 1042,
  Varchar = 1043,
  Date = 1082,
  Time = 1083,
  Timestamp = 1114,
  Timestamptz = 1184,
  Bit = 1560,
  Numeric = 1700,
  Uuid = 2950,
}

/** The narrowest signed PostgreSQL integer holding every value (unsigned needs one size up). */
function intOid(col: ColumnType): PgOid {
  const bytes = (col.size ?? 4) + (col.unsigned ? 1 : 0);
  if (bytes <= 2) return PgOid.Int2;
  if (bytes <= 4) return PgOid.Int4;
  if (bytes <= 8) return PgOid.Int8;
  return PgOid.Numeric; // bigint unsigned exceeds int8
}

function textOid(col: ColumnType): PgOid {
  const family = (col.family ?? '').toLowerCase();
  if (col.fixed) return PgOid.Bpchar;
  if (family === 'varchar' || family === 'character varying') return PgOid.Varchar;
  return PgOid.Text;
}

/** The column's PostgreSQL type OID: its own on a PostgreSQL source, the closest match otherwise. */
export function pgTypeOid(col: ColumnType): number {
  if (typeof col.pgOid === 'number' && col.pgOid > 0) return col.pgOid;
  switch (col.kind) {
    case 'int': return intOid(col);
    case 'decimal': return PgOid.Numeric;
    case 'float': return (col.size ?? 8) <= 4 ? PgOid.Float4 : PgOid.Float8;
    case 'text': return textOid(col);
    case 'binary': return PgOid.Bytea;
    case 'date': return PgOid.Date;
    case 'time': return PgOid.Time;
    case 'datetime': return PgOid.Timestamp;
    case 'timestamptz': return PgOid.Timestamptz;
    case 'json': return PgOid.Json;
    case 'bit': return PgOid.Bit;
    case 'bool': return PgOid.Bool;
    case 'uuid': return PgOid.Uuid;
    case 'enum': case 'set': case 'other': return PgOid.Text;
  }
}
