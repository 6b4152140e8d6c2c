/** GraphQL types of connections, jobs and tasks. */
import { ArgsType, Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import type { JobStatus, JobType, LogLossAction } from '../domain/job-model.ts';
import { JSONScalar } from './scalars.ts';
import { Connection as RelayConnection, PageArgs } from './pagination.ts';

export enum DbKindEnum { MYSQL = 'mysql', POSTGRES = 'postgres' }
registerEnumType(DbKindEnum, { name: 'DbKind', description: 'mysql covers MySQL and MariaDB.' });
/** GraphQL spellings (upper case) of the domain enums; the values are the domain's own strings. */
export enum JobTypeEnum { SYNCHRONOUS = 'synchronous', MIGRATION = 'migration', SUBSCRIBE = 'subscribe', PIPELINE = 'pipeline' }
export enum JobStatusEnum { PENDING = 'pending', RUNNING = 'running', PAUSED = 'paused', COMPLETE = 'complete', FAILED = 'failed', CANCELED = 'canceled' }
registerEnumType(JobTypeEnum, { name: 'JobType' });
registerEnumType(JobStatusEnum, { name: 'JobStatus' });
export enum LogLossActionEnum { FAIL = 'fail', RESNAPSHOT = 'resnapshot' }
registerEnumType(LogLossActionEnum, {
  name: 'LogLossAction',
  description: 'What a running job does when the source lost its capture position (MariaDB binlog purged, PostgreSQL slot dropped).',
  valuesConfig: {
    FAIL: { description: 'The job goes FAILED with a message naming what is gone; resume from scratch by deleting and re-creating it.' },
    RESNAPSHOT: { description: 'The job starts over by itself from the current position: the feed marks the gap (readers from before it get SNAPSHOT_TOO_OLD) and the destination tables are emptied and copied again.' },
  },
});

@InputType()
export class TlsInput {
  @Field(() => Boolean) enabled!: boolean;
  @Field(() => Boolean, { nullable: true }) rejectUnauthorized?: boolean;
  @Field(() => String, { nullable: true, description: 'PEM CA bundle.' }) ca?: string;
}

@ObjectType()
export class TlsConfig {
  @Field(() => Boolean) enabled!: boolean;
  @Field(() => Boolean, { nullable: true }) rejectUnauthorized?: boolean;
  @Field(() => Boolean, { description: 'Whether a CA bundle is set (never returned).' }) caSet!: boolean;
}

@InputType()
export class ConnectionInput {
  @Field(() => String, { nullable: true, description: 'Unique name; generated from host and port when omitted.' }) name?: string;
  @Field(() => DbKindEnum) kind!: DbKindEnum;
  @Field(() => String) host!: string;
  @Field(() => Int) port!: number;
  @Field(() => String) user!: string;
  @Field(() => String, { description: 'Stored encrypted; never returned.' }) password!: string;
  @Field(() => String, { nullable: true }) database?: string;
  @Field(() => TlsInput, { nullable: true }) tls?: TlsInput;
  @Field(() => String, { nullable: true, description: 'Connection-service environment id (names its feed).' }) environmentId?: string;
}

@ObjectType({ description: 'A source or destination database. The password is never returned.' })
export class DbConnection {
  @Field(() => ID) id!: string;
  @Field(() => String) name!: string;
  @Field(() => DbKindEnum) kind!: DbKindEnum;
  @Field(() => String) host!: string;
  @Field(() => Int) port!: number;
  @Field(() => String) user!: string;
  @Field(() => String, { nullable: true }) database?: string | null;
  @Field(() => TlsConfig, { nullable: true }) tls?: TlsConfig | null;
  @Field(() => String, { description: 'Always "***".' }) password!: string;
  @Field(() => String, { nullable: true }) environmentId?: string | null;
  @Field(() => String) createdAt!: string;
}

@ObjectType()
export class DbConnectionConnection extends RelayConnection(DbConnection, 'DbConnection') {}

@ObjectType({ description: 'What capture from this database still lacks.' })
export class ConnectionCheck {
  @Field(() => Boolean) ok!: boolean;
  @Field(() => Boolean) reachable!: boolean;
  @Field(() => [String]) missing!: string[];
  @Field(() => JSONScalar) details!: Record<string, string>;
  @Field(() => String, { nullable: true }) error?: string;
}

@InputType({ description: 'Column controls of the selected tables: applied to the snapshot and the stream, at the destination and in the feed.' })
export class ColumnControlsInput {
  @Field(() => [String], { nullable: true, description: 'Columns not copied: absent from the destination table and from the feed. A key column cannot be excluded.' }) exclude?: string[];
  @Field(() => [String], { nullable: true, description: 'Columns whose values read "****" (NULL stays NULL); the destination column is varchar(4). A key column cannot be masked.' }) mask?: string[];
  @Field(() => [String], { nullable: true, description: 'Columns replaced by HMAC-SHA256(salt, value) in lower-case hex (NULL stays NULL); the destination column is char(64). The salt is generated per job by the server, stored encrypted, never returned, and stable across restarts.' }) hash?: string[];
}

@InputType()
export class TableSelectionInput {
  @Field(() => String) schema!: string;
  @Field(() => [String], { nullable: true, description: 'Empty or omitted = every table of the schema.' }) tables?: string[];
  @Field(() => ColumnControlsInput, { nullable: true, description: 'Column controls for every table of this selection (each must have the columns named).' }) columns?: ColumnControlsInput;
  @Field(() => String, { nullable: true, description: 'Row filter (SQL condition: =, <>, <, <=, >, >=, IN, BETWEEN, IS [NOT] NULL, AND, OR, NOT; text only = <> IN). Rows outside it are not copied; an update moving a row out of it deletes the row downstream, one moving it in inserts it.' }) where?: string;
}

@InputType({ description: 'Tables left out (Udup ReplicateIgnoreDb).' })
export class TableIgnoreInput {
  @Field(() => String) schema!: string;
  @Field(() => [String], { nullable: true, description: 'Empty or omitted = the whole schema.' }) tables?: string[];
}

@InputType()
export class JobInput {
  @Field(() => String) name!: string;
  @Field(() => JobTypeEnum, { defaultValue: JobTypeEnum.SYNCHRONOUS }) type!: JobType;
  @Field(() => ID, { nullable: true }) sourceConnectionId?: string;
  @Field(() => ConnectionInput, { nullable: true, description: 'Create the source connection inline.' }) source?: ConnectionInput;
  @Field(() => ID, { nullable: true }) destinationConnectionId?: string;
  @Field(() => ConnectionInput, { nullable: true }) destination?: ConnectionInput;
  @Field(() => [TableSelectionInput], { nullable: true, description: 'Udup ReplicateDoDb; empty = everything.' }) tables?: TableSelectionInput[];
  @Field(() => [TableIgnoreInput], { nullable: true, description: 'Udup ReplicateIgnoreDb: schemas or tables left out even when `tables` covers them.' }) ignoreTables?: TableIgnoreInput[];
  @Field(() => JSONScalar, { nullable: true, description: '{ schemas: {from: to}, tables: {"schema.table": "schema.table"} }' }) rename?: Record<string, Record<string, string>>;
  @Field(() => Int, { nullable: true }) parallelWorkers?: number;
  @Field(() => Int, { nullable: true }) replChanBufferSize?: number;
  @Field(() => Int, { nullable: true }) msgsLimit?: number;
  @Field(() => Int, { nullable: true }) msgBytesLimit?: number;
  @Field(() => Int, { nullable: true }) bytesLimit?: number;
  @Field(() => String, { nullable: true, description: 'Start position: GTID set, "file:pos" or LSN (Udup Gtid).' }) startPosition?: string;
  @Field(() => String, { nullable: true }) selectorColumn?: string;
  @Field(() => Boolean, { nullable: true, description: 'Copy existing rows first (default: true except for subscribe).' }) snapshot?: boolean;
  @Field(() => Int, { nullable: true }) chunkRows?: number;
  @Field(() => String, { nullable: true, description: 'Feed name (subscribe jobs); default the job name.' }) feedName?: string;
  @Field(() => JSONScalar, { nullable: true, description: 'Placement hints per task type, e.g. {"Src": "<node id>"}.' }) nodeHints?: Record<string, string>;
  @Field(() => LogLossActionEnum, { nullable: true, description: 'When the source lost the capture position (binlog purged, slot dropped): FAIL (default) or RESNAPSHOT.' }) onLogLoss?: LogLossAction;
  @Field(() => Int, { nullable: true, description: 'PostgreSQL sources: while the captured tables see no writes, confirm the server\'s position this often (seconds), so the replication slot does not hold the WAL other databases write. 0 = off. Default 10.' }) heartbeatIntervalSeconds?: number;
  @Field(() => Boolean, { nullable: true, description: 'Create but do not start (status PENDING until resumeJob). The source readiness check (SOURCE_NOT_READY) is skipped.' }) paused?: boolean;
}

@InputType()
export class JobUpdateInput {
  @Field(() => Int, { nullable: true }) parallelWorkers?: number;
  @Field(() => Int, { nullable: true }) replChanBufferSize?: number;
  @Field(() => Int, { nullable: true }) msgsLimit?: number;
  @Field(() => Int, { nullable: true }) msgBytesLimit?: number;
  @Field(() => Int, { nullable: true }) bytesLimit?: number;
  @Field(() => [TableSelectionInput], { nullable: true }) tables?: TableSelectionInput[];
  @Field(() => Boolean, { nullable: true, description: 'Copy the tables `tables` adds with an incremental snapshot while the others keep streaming (default true; see addTables).' }) snapshotNewTables?: boolean;
}

@ArgsType()
export class JobsArgs extends PageArgs {
  @Field(() => [JobStatusEnum], { nullable: true }) status?: JobStatus[];
  @Field(() => [JobTypeEnum], { nullable: true }) type?: JobType[];
  @Field(() => String, { nullable: true, description: 'Substring of the name.' }) name?: string;
}

@ObjectType({ description: 'An incremental snapshot (snapshotTables, addTables) copying tables while the job streams.' })
export class IncrementalSnapshotProgress {
  @Field(() => String) id!: string;
  @Field(() => String, { description: 'pending, running, done or failed.' }) status!: string;
  @Field(() => String, { description: 'What asked for it: snapshotTables, addTables or updateJob (a longer table list).' }) reason!: string;
  @Field(() => [String], { description: 'schema.table, once listed.' }) tables!: string[];
  @Field(() => String, { nullable: true }) where?: string;
  @Field(() => Number) rowsDone!: number;
  @Field(() => Number) rowsEstimated!: number;
  @Field(() => Number, { nullable: true }) percent?: number | null;
  @Field(() => Int) chunksDone!: number;
  @Field(() => Int) chunksTotal!: number;
  @Field(() => String, { nullable: true }) error?: string;
  @Field(() => String) startedAt!: string;
  @Field(() => String, { nullable: true }) finishedAt?: string;
}

@ObjectType()
export class JobProgress {
  @Field(() => String) phase!: string;
  @Field(() => Number) rowsDone!: number;
  @Field(() => Number) rowsEstimated!: number;
  @Field(() => Number, { nullable: true }) percent!: number | null;
  @Field(() => Number, { nullable: true }) etaSeconds!: number | null;
  @Field(() => Int) chunksDone!: number;
  @Field(() => Int) chunksTotal!: number;
  @Field(() => IncrementalSnapshotProgress, { nullable: true, description: 'The last incremental snapshot (snapshotTables, addTables).' }) incrementalSnapshot!: IncrementalSnapshotProgress | null;
}

@ObjectType()
export class JobMetrics {
  @Field(() => Number) changesCaptured!: number;
  @Field(() => Number) rowsApplied!: number;
  @Field(() => Number) bytesCaptured!: number;
  @Field(() => Number, { nullable: true, description: 'Mean lag of the changes of the last applied batch, ms: when the batch was committed at the destination, minus when each change committed at the source (PostgreSQL: the commit timestamp; MariaDB/MySQL, whose binlog has one-second resolution: when the binlog reached the commit, sampled every 50 ms, or the capture\'s receipt of it, within the binlog\'s second). Written every 250 ms while applying; 0 once the feed is drained and nothing was applied for a second. While the apply makes no progress (a batch unapplied for over a second: destination locked or down), the age of the oldest change not yet applied, growing with the clock until it is applied.' }) lagMs!: number | null;
  @Field(() => String, { nullable: true }) capturedSequence?: string;
  @Field(() => String, { nullable: true }) appliedSequence?: string;
  @Field(() => String, { nullable: true, description: 'Source commit time of the last captured transaction (ISO 8601).' }) lastCommitAt?: string;
  /** Not a field: which job the backlog resolver reads. */
  jobId!: string;
}

@ObjectType({ description: 'One unit a worker runs.' })
export class Task {
  @Field(() => ID) id!: string;
  @Field(() => String) kind!: string;
  @Field(() => String) name!: string;
  @Field(() => String) status!: string;
  @Field(() => String, { nullable: true }) nodeId?: string | null;
  @Field(() => String, { nullable: true, description: 'Requested node (Udup NodeId).' }) nodeHint?: string | null;
  @Field(() => String, { nullable: true, description: 'Where it runs and why.' }) placement?: string | null;
  @Field(() => String, { nullable: true }) queue?: string | null;
  @Field(() => JSONScalar, { nullable: true }) position?: unknown;
  @Field(() => JSONScalar) progress!: Record<string, unknown>;
  @Field(() => String, { nullable: true }) error?: string | null;
  @Field(() => Int) attempts!: number;
}

@ObjectType()
export class JobLog {
  @Field(() => String) at!: string;
  @Field(() => String) level!: string;
  @Field(() => String) message!: string;
}

@ObjectType()
export class Job {
  @Field(() => ID) id!: string;
  @Field(() => Int, { description: 'Numeric id (Udup ID / index).' }) index!: number;
  @Field(() => String) name!: string;
  @Field(() => JobTypeEnum) type!: JobType;
  @Field(() => JobStatusEnum) status!: JobStatus;
  @Field(() => String, { description: 'Status in Udup\'s words: pending, running, pause, dead, complete.', deprecationReason: 'A legacy dialect word: use status (the Udup REST API maps it itself).' }) udupStatus?: string;
  @Field(() => String, { nullable: true }) statusReason?: string | null;
  @Field(() => String, { nullable: true }) error?: string | null;
  @Field(() => JSONScalar, { description: 'The job spec (filters, lanes, limits); secrets never appear here.' }) spec!: unknown;
  @Field(() => String, { nullable: true }) feedName?: string | null;
  @Field(() => JobProgress) progress!: JobProgress;
  @Field(() => JobMetrics) metrics!: JobMetrics;
  @Field(() => JSONScalar, { nullable: true, description: 'Start position of the stream.' }) startPosition?: unknown;
  @Field(() => String) createdAt!: string;
  @Field(() => String) updatedAt!: string;
  @Field(() => String, { nullable: true }) startedAt?: string | null;
  @Field(() => String, { nullable: true }) finishedAt?: string | null;
  @Field(() => String) createIndex!: string;
  @Field(() => String) modifyIndex!: string;
  // Resolved by field resolvers (DataLoader-batched):
  sourceConnectionId?: string | null;
  destConnectionId?: string | null;
}

@ObjectType()
export class JobConnection extends RelayConnection(Job, 'Job') {}

@ObjectType({ description: 'A job state, progress or log event.' })
export class JobEvent {
  @Field(() => ID) jobId!: string;
  @Field(() => String, { description: 'status, progress, log or metrics.' }) kind!: string;
  @Field(() => JobStatusEnum, { nullable: true }) status?: JobStatus;
  @Field(() => JobProgress, { nullable: true }) progress?: JobProgress;
  @Field(() => JobMetrics, { nullable: true }) metrics?: JobMetrics;
  @Field(() => String, { nullable: true }) message?: string;
  @Field(() => String) at!: string;
}
