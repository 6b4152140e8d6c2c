/** GraphQL types of change feeds: one change, a page of changes, a feed's summary. */
import { Field, Int, ObjectType } from 'type-graphql';
import { OPERATION_CODE, type ChangeEvent, type ColumnType } from '../replication/change-event.ts';
import { pgTypeOid } from '../replication/feed/pg-type-oids.ts';
import type { ChangeListResult, FeedSummary } from '../services/change-feed.service.ts';
import { JSONScalar } from './scalars.ts';

@ObjectType({ description: 'A column of a changed row: its kind in Tributary\'s change model and its PostgreSQL type.' })
export class ChangeColumn {
  @Field(() => String) name!: string;
  @Field(() => String, { description: 'int, decimal, float, text, binary, date, time, datetime, timestamptz, json, enum, set, bit, bool, uuid or other.' }) kind!: string;
  @Field(() => String, { description: 'The source\'s own type, e.g. "int(10) unsigned" or "numeric(10,2)".' }) sourceType!: string;
  @Field(() => Int, { description: 'PostgreSQL type OID: the column\'s own on a PostgreSQL source, the closest built-in type on MariaDB (see docs/compat.md).' }) pgType!: number;
}

@ObjectType({ description: 'One row change in a feed. Values in newRow/oldRow follow the column kinds (docs/architecture.md, "Change feed").' })
export class Change {
  @Field(() => String, { description: 'Feed position "<hi hex>.<lo hex>.<index hex>"; pass it as `since` to continue after this change.' }) sequence!: string;
  @Field(() => String, { description: 'Source transaction id (PostgreSQL xid; MariaDB GTID sequence number).' }) txid!: string;
  @Field(() => String, { description: 'Commit order of the transaction as a 64-bit decimal (PostgreSQL commit LSN).' }) commitSequence!: string;
  @Field(() => String, { description: 'Transicator\'s changeSequence; Tributary keeps no per-row LSN, so it equals commitSequence.' }) changeSequence!: string;
  @Field(() => Int, { description: '0-based index of the change inside its transaction.' }) commitIndex!: number;
  @Field(() => Int, { description: '1 insert, 2 update, 3 delete, 4 DDL (Transicator\'s codes).' }) operation!: number;
  @Field(() => String, { description: 'insert, update, delete or ddl.' }) op!: string;
  @Field(() => String) schema!: string;
  @Field(() => String) table!: string;
  @Field(() => [String], { description: 'Primary-key columns; empty when the table has none.' }) key!: string[];
  @Field(() => JSONScalar, { nullable: true }) newRow!: Record<string, unknown> | null;
  @Field(() => JSONScalar, { nullable: true }) oldRow!: Record<string, unknown> | null;
  @Field(() => Boolean, { description: 'oldRow holds only the key columns (PostgreSQL table without REPLICA IDENTITY FULL).' }) oldRowKeyOnly!: boolean;
  @Field(() => [ChangeColumn]) columnTypes!: ChangeColumn[];
  @Field(() => String, { description: 'Commit time, ISO 8601.' }) commitTime!: string;
  @Field(() => String, { nullable: true, description: 'Value of the row\'s selector column (`_change_selector`).' }) scope!: string | null;
  @Field(() => String, { description: 'postgres or mysql.' }) source!: string;
  @Field(() => String, { nullable: true, description: 'The statement, for DDL changes.' }) ddl!: string | null;
}

@ObjectType({ description: 'A page of changes, in sequence order (Transicator\'s ChangeList).' })
export class ChangeList {
  @Field(() => String, { description: 'Oldest sequence still retained.' }) firstSequence!: string;
  @Field(() => String, { description: 'Newest sequence examined, or the last change\'s when `limit` was reached.' }) lastSequence!: string;
  @Field(() => [Change]) changes!: Change[];
  @Field(() => [String], { description: 'E.g. that a snapshot filter was ignored for MariaDB changes.' }) warnings!: string[];
}

@ObjectType({ description: 'A change feed in Redis.' })
export class FeedInfo {
  @Field(() => String) name!: string;
  @Field(() => String) firstSequence!: string;
  @Field(() => String) lastSequence!: string;
  @Field(() => Int, { description: 'Changes retained.' }) length!: number;
  @Field(() => String, { nullable: true, description: 'The job writing this feed.' }) jobName!: string | null;
}

const toColumn = (c: ColumnType): ChangeColumn => ({ name: c.name, kind: c.kind, sourceType: c.sourceType, pgType: pgTypeOid(c) });

/** One Change per event, shared by every subscriber the feed hub hands the same event to. */
const changeOf = new WeakMap<ChangeEvent, Change>();

export function toChange(e: ChangeEvent): Change {
  let c = changeOf.get(e);
  if (!c) changeOf.set(e, (c = buildChange(e)));
  return c;
}

function buildChange(e: ChangeEvent): Change {
  return {
    sequence: e.sequence,
    txid: e.txid,
    commitSequence: e.commitSequence,
    changeSequence: e.commitSequence,
    commitIndex: e.index,
    operation: OPERATION_CODE[e.op],
    op: e.op,
    schema: e.schema,
    table: e.table,
    key: e.key,
    newRow: e.after,
    oldRow: e.before,
    oldRowKeyOnly: e.beforeKeyOnly === true,
    columnTypes: (e.columns ?? []).map(toColumn),
    commitTime: new Date(e.commitTime).toISOString(),
    scope: e.scope ?? null,
    source: e.source,
    ddl: e.ddl ?? null,
  };
}

export const toChangeList = (r: ChangeListResult): ChangeList => ({ ...r, changes: r.changes.map(toChange) });
export const toFeedInfo = (f: FeedSummary): FeedInfo => f;
