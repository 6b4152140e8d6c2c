import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DbConnection, Job } from './job.types.ts';
import { DateTimeScalar, JSONScalar } from './scalars.ts';

export enum CachedQueryModeEnum {
  INCREMENTAL = 'incremental',
  RERUN = 'rerun',
}
registerEnumType(CachedQueryModeEnum, {
  name: 'CachedQueryMode',
  description: 'INCREMENTAL: COUNT/SUM/AVG/MIN/MAX with GROUP BY and WHERE over one table, maintained from each change. RERUN: any other SELECT, re-run on the source after changes (debounced).',
});

@ObjectType({ description: 'An aggregate SQL query on a captured database, kept fresh from its change feed.' })
export class CachedQuery {
  @Field(() => ID) id!: string;
  @Field(() => String) sql!: string;
  @Field(() => String, { nullable: true }) environmentId!: string | null;
  @Field(() => ID) connectionId!: string;
  @Field(() => ID, { nullable: true }) jobId!: string | null;
  @Field(() => CachedQueryModeEnum) mode!: CachedQueryModeEnum;
  @Field(() => String, { nullable: true, description: 'Why the query is re-run rather than kept incrementally.' }) modeReason!: string | null;
  @Field(() => String, { description: 'pending, waiting (for the capture), starting, active, retrying, queued, failed.' }) status!: string;
  @Field(() => String, { nullable: true }) error!: string | null;
  @Field(() => [String]) columns!: string[];
  @Field(() => JSONScalar, { nullable: true, description: 'Result rows: objects keyed by column name.' }) rows!: unknown;
  @Field(() => Int, { description: 'Bumped on every changed result; 0 before the first.' }) version!: number;
  @Field(() => DateTimeScalar, { nullable: true }) refreshedAt!: Date | null;
  @Field(() => String, { nullable: true, description: 'Feed sequence the result covers.' }) lastSequence!: string | null;
  @Field(() => DateTimeScalar) createdAt!: Date;
}

@ObjectType({ description: 'A new result of a cached query.' })
export class CachedQueryResult {
  @Field(() => ID) id!: string;
  @Field(() => Int) version!: number;
  @Field(() => DateTimeScalar) refreshedAt!: Date;
  @Field(() => [String]) columns!: string[];
  @Field(() => JSONScalar) rows!: unknown;
  @Field(() => JSONScalar, { description: 'Rows that are new or changed since the previous result.' }) changedRows!: unknown;
  @Field(() => JSONScalar, { description: 'Rows of the previous result that are gone.' }) removedRows!: unknown;
}

@ObjectType({ description: 'A database connection named by an environment id, captured by a subscribe job whose feed has that name.' })
export class DatabaseConnectionResult {
  @Field(() => String) environmentId!: string;
  @Field(() => Boolean, { description: 'false when an identical connection already existed (the call is idempotent).' }) created!: boolean;
  @Field(() => DbConnection) connection!: DbConnection;
  @Field(() => Job) job!: Job;
  @Field(() => String, { description: 'Name of the change feed (the environment id).' }) feed!: string;
}

@ObjectType()
export class CachedQueryCreatedResult {
  @Field(() => CachedQuery) cachedQuery!: CachedQuery;
  @Field(() => DatabaseConnectionResult) connection!: DatabaseConnectionResult;
}

@ObjectType()
export class DatabaseConnectionDeleted {
  @Field(() => String) environmentId!: string;
  @Field(() => ID) connectionId!: string;
  @Field(() => ID, { nullable: true }) jobId!: string | null;
  @Field(() => Int, { description: 'Cached queries removed with it.' }) cachedQueries!: number;
}
