/** GraphQL types of pipelines, their components, metrics and outputs, data tables and model versions. */
import { Field, Float, ID, InputType, Int, ObjectType } from 'type-graphql';
import { JSONScalar } from './scalars.ts';
import { JobStatusEnum } from './job.types.ts';

@ObjectType({ description: 'One metric of a component (FATE metric namespace/name), data as [key, value] pairs.' })
export class ComponentMetric {
  @Field(() => String) namespace!: string;
  @Field(() => String) name!: string;
  @Field(() => JSONScalar) data!: unknown;
  @Field(() => JSONScalar) meta!: unknown;
}

@ObjectType({ description: 'What a component produced: columns, total rows and the first rows.' })
export class ComponentOutput {
  @Field(() => String) name!: string;
  @Field(() => [String]) header!: string[];
  @Field(() => JSONScalar, { description: 'Column types (change-event ColumnType).' }) columns!: unknown;
  @Field(() => [String]) key!: string[];
  @Field(() => Float) total!: number;
  @Field(() => JSONScalar, { description: 'Up to 100 rows, as objects.' }) sample!: unknown;
}

@ObjectType({ description: 'A component of a pipeline and the task that runs it.' })
export class PipelineComponent {
  @Field(() => ID) taskId!: string;
  @Field(() => String) jobId!: string;
  @Field(() => String) name!: string;
  @Field(() => String) module!: string;
  @Field(() => String, { description: 'waiting, queued, running, complete, failed, canceled.' }) status!: string;
  @Field(() => String, { description: 'FATE-Flow task status: waiting, running, success, failed, canceled.', deprecationReason: 'A legacy dialect word: use status (the FATE-Flow REST API maps it itself).' }) fateStatus!: string;
  @Field(() => [String]) upstream!: string[];
  @Field(() => [String]) downstream!: string[];
  @Field(() => [String]) outputs!: string[];
  @Field(() => JSONScalar) parameters!: unknown;
  @Field(() => String) role!: string;
  @Field(() => String) partyId!: string;
  @Field(() => String, { nullable: true, description: 'Node that ran it.' }) runIp!: string | null;
  @Field(() => Int) attempts!: number;
  @Field(() => String, { nullable: true }) error!: string | null;
  @Field(() => JSONScalar, { description: 'rowsIn, rowsOut, total, startedAt, endedAt.' }) progress!: unknown;
  @Field(() => Float) createTime!: number;
  @Field(() => Float) updateTime!: number;
  @Field(() => Float, { nullable: true }) startTime!: number | null;
  @Field(() => Float, { nullable: true }) endTime!: number | null;
  @Field(() => Float, { nullable: true }) elapsed!: number | null;
  /** Internal job uuid for field resolvers. */
  jobUuid!: string;
}

@ObjectType({ description: 'A pipeline job: a DAG of components (or a data upload/download), FATE-Flow\'s job.' })
export class Pipeline {
  @Field(() => ID) id!: string;
  @Field(() => String, { description: 'FATE-style job id (also the job name).' }) jobId!: string;
  @Field(() => String) name!: string;
  @Field(() => String, { description: 'dag, upload or download.' }) kind!: string;
  @Field(() => String) description!: string;
  @Field(() => String) tag!: string;
  @Field(() => String) role!: string;
  @Field(() => String) partyId!: string;
  @Field(() => JSONScalar) roles!: unknown;
  @Field(() => String) initiatorRole!: string;
  @Field(() => String) initiatorPartyId!: string;
  @Field(() => Boolean) isInitiator!: boolean;
  @Field(() => JSONScalar, { description: 'job_dsl as sent.' }) dsl!: unknown;
  @Field(() => JSONScalar, { description: 'job_runtime_conf as sent.' }) runtimeConf!: unknown;
  @Field(() => String) runIp!: string;
  @Field(() => JobStatusEnum) status!: JobStatusEnum;
  @Field(() => String, { description: 'waiting, running, success, failed, canceled or timeout.', deprecationReason: 'A legacy dialect word: use status and statusReason (the FATE-Flow REST API maps them itself).' }) fateStatus!: string;
  @Field(() => String, { nullable: true }) statusReason!: string | null;
  @Field(() => String, { nullable: true }) error!: string | null;
  @Field(() => [String]) currentSteps!: string[];
  @Field(() => [String]) currentTasks!: string[];
  @Field(() => Int, { description: 'Percent.' }) progress!: number;
  @Field(() => Float, { description: 'ms since the epoch.' }) createTime!: number;
  @Field(() => Float) updateTime!: number;
  @Field(() => Float, { nullable: true }) startTime!: number | null;
  @Field(() => Float, { nullable: true }) endTime!: number | null;
  @Field(() => Float, { nullable: true, description: 'ms.' }) elapsed!: number | null;
}

@ObjectType({ description: 'A table addressed as namespace.table_name.' })
export class DataTable {
  @Field(() => String) namespace!: string;
  @Field(() => String) tableName!: string;
  @Field(() => Boolean) exist!: boolean;
  @Field(() => Float) count!: number;
  @Field(() => Int, { nullable: true }) partitions!: number | null;
  @Field(() => [String]) header!: string[];
  @Field(() => JSONScalar) columns!: unknown;
  @Field(() => [String]) key!: string[];
  @Field(() => JSONScalar, { nullable: true, description: 'connection, kind, schema, table.' }) address!: unknown;
}

@ObjectType({ description: 'A stored version of a pipeline definition (FATE-Flow "model").' })
export class ModelVersion {
  @Field(() => ID) id!: string;
  @Field(() => String) namespace!: string;
  @Field(() => String) name!: string;
  @Field(() => String) version!: string;
  @Field(() => JSONScalar) dsl!: unknown;
  @Field(() => JSONScalar) runtimeConf!: unknown;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field(() => String, { nullable: true }) sourceJob!: string | null;
  @Field(() => String) createdAt!: string;
}

@ObjectType()
export class OnlineModelResult {
  @Field(() => ModelVersion) model!: ModelVersion;
  @Field(() => Pipeline) job!: Pipeline;
}

@InputType({ description: 'Every filter of FATE-Flow /v1/job/query; absent = any. JSON filters match structurally.' })
export class PipelineFilterInput {
  @Field(() => String, { nullable: true }) jobId?: string;
  @Field(() => String, { nullable: true }) name?: string;
  @Field(() => String, { nullable: true }) description?: string;
  @Field(() => String, { nullable: true }) tag?: string;
  @Field(() => String, { nullable: true }) role?: string;
  @Field(() => String, { nullable: true }) partyId?: string;
  @Field(() => JSONScalar, { nullable: true }) roles?: unknown;
  @Field(() => String, { nullable: true }) initiatorPartyId?: string;
  @Field(() => Boolean, { nullable: true }) isInitiator?: boolean;
  @Field(() => JSONScalar, { nullable: true }) dsl?: unknown;
  @Field(() => JSONScalar, { nullable: true }) runtimeConf?: unknown;
  @Field(() => String, { nullable: true }) runIp?: string;
  @Field(() => String, { nullable: true, description: 'FATE (waiting, success, ...) or Tributary status.' }) status?: string;
  @Field(() => JSONScalar, { nullable: true }) currentSteps?: unknown;
  @Field(() => JSONScalar, { nullable: true }) currentTasks?: unknown;
  @Field(() => Int, { nullable: true }) progress?: number;
  @Field(() => Float, { nullable: true }) createTime?: number;
  @Field(() => Float, { nullable: true }) updateTime?: number;
  @Field(() => Float, { nullable: true }) startTime?: number;
  @Field(() => Float, { nullable: true }) endTime?: number;
  @Field(() => Float, { nullable: true }) elapsed?: number;
  @Field(() => String, { nullable: true, description: 'Tasks only.' }) componentName?: string;
  @Field(() => String, { nullable: true, description: 'Tasks only.' }) taskId?: string;
}

@InputType()
export class SubmitPipelineInput {
  @Field(() => JSONScalar, { description: 'FATE job_dsl: {components: {name: {module, input, output, parameters?}}}.' }) dsl!: unknown;
  @Field(() => JSONScalar, { description: 'FATE job_runtime_conf (initiator, role, job_parameters, component_parameters), stored as sent.' }) runtimeConf!: unknown;
}

@InputType()
export class UploadDataInput {
  @Field(() => String, { description: 'A CSV file path on the server (workers read it).' }) file!: string;
  @Field(() => String, { description: 'A connection name, <connection>.<schema>, or a database.' }) namespace!: string;
  @Field(() => String) tableName!: string;
  @Field(() => Int, { nullable: true, description: '1 (default): the first line is the header.' }) head?: number;
  @Field(() => String, { nullable: true, description: 'Default ",".' }) delimiter?: string;
  @Field(() => Int, { nullable: true, description: 'Hash partitions on the key (1-1024, default 1) when the load creates the table.' }) partition?: number;
  @Field(() => Int, { nullable: true, description: '1: replace an existing table.' }) drop?: number;
  @Field(() => Boolean, { nullable: true, description: 'The file is a gateway staging copy, removed after the load.' }) staged?: boolean;
  @Field(() => JSONScalar, { nullable: true, description: 'The request as sent, kept as the job runtime conf.' }) request?: unknown;
}

@InputType({ description: 'An empty table at namespace.table_name (FATE table_info create); text columns.' })
export class CreateDataTableInput {
  @Field(() => String, { description: 'A connection name, <connection>.<schema>, or a database.' }) namespace!: string;
  @Field(() => String, { nullable: true, description: 'Default: a new name (32 hex digits).' }) tableName?: string;
  @Field(() => Int, { nullable: true, description: 'Hash partitions on the key (1-1024, default 1).' }) partitions?: number;
  @Field(() => String, { nullable: true, description: 'Key column (FATE schema sid). Default "id".' }) sid?: string;
  @Field(() => [String], { nullable: true, description: 'Other columns (FATE schema header). Default ["value"].' }) header?: string[];
}

@InputType()
export class DownloadDataInput {
  @Field(() => String) namespace!: string;
  @Field(() => String) tableName!: string;
  @Field(() => String, { description: 'CSV file path on the worker.' }) outputPath!: string;
  @Field(() => String, { nullable: true }) delimiter?: string;
  @Field(() => JSONScalar, { nullable: true }) request?: unknown;
}

@InputType()
export class LoadModelInput {
  @Field(() => String) namespace!: string;
  @Field(() => String, { nullable: true, description: 'Default: the namespace.' }) name?: string;
  @Field(() => String, { nullable: true, description: 'Default: a new timestamp version.' }) version?: string;
  @Field(() => JSONScalar, { nullable: true }) dsl?: unknown;
  @Field(() => JSONScalar, { nullable: true }) runtimeConf?: unknown;
  @Field(() => String, { nullable: true, description: 'Take DSL and conf from this job.' }) jobId?: string;
  @Field(() => String, { nullable: true }) description?: string;
}

@InputType()
export class OnlineModelInput {
  @Field(() => String) namespace!: string;
  @Field(() => String, { nullable: true }) name?: string;
  @Field(() => String, { nullable: true, description: 'Default: the latest.' }) version?: string;
}
