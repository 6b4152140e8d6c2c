/** GraphQL types of sinks, their dead letters and events. */
import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { SinkKind } from '../domain/sink-model.ts';
import { sinkSettingsDoc } from '../replication/sinks/sink-registry.ts';
import { JSONScalar, DateTimeScalar } from './scalars.ts';

/**
 * The GraphQL SinkKind: the domain's kinds in upper case (WEBHOOK, NATS,
 * RABBITMQ), derived so that a new kind needs no edit here.
 */
export const SinkKindEnum = Object.fromEntries(Object.values(SinkKind).map((v) => [v.toUpperCase(), v])) as Readonly<Record<string, SinkKind>>;
export type SinkKindEnum = SinkKind;
/** GraphQL spellings (upper case) of the domain enums; the values are the domain's own strings. */
export enum SinkFormatEnum { JSON = 'json', DEBEZIUM = 'debezium', PROTOBUF = 'protobuf' }
export enum SinkStatusEnum { RUNNING = 'running', PAUSED = 'paused', FAILED = 'failed' }
export enum SinkFailurePolicyEnum { CONTINUE = 'continue', STOP = 'stop' }
registerEnumType(SinkKindEnum, { name: 'SinkKind', description: 'Where a sink delivers: an HTTP endpoint, a NATS JetStream stream, a RabbitMQ exchange.' });
registerEnumType(SinkFormatEnum, {
  name: 'SinkFormat',
  valuesConfig: {
    JSON: { description: 'Tributary\'s change JSON (the fields of `Change`) plus `id` and `feed`.' },
    DEBEZIUM: { description: 'Debezium\'s envelope: before, after, source, op (c/u/d), ts_ms.' },
    PROTOBUF: { description: 'The tributary.sink.SinkChange message (src/replication/sinks/formats/sink-change.proto).' },
  },
});
registerEnumType(SinkStatusEnum, { name: 'SinkStatus' });
registerEnumType(SinkFailurePolicyEnum, {
  name: 'SinkFailurePolicy',
  valuesConfig: {
    CONTINUE: { description: 'A message whose retries are used up goes to the dead-letter list, with its key\'s later messages; other keys go on.' },
    STOP: { description: 'The sink goes FAILED before the message; resumeSink retries it.' },
  },
});

@InputType({ description: 'How a sink batches and retries; every field has a default.' })
export class SinkDeliveryInput {
  @Field(() => Int, { nullable: true, description: 'Changes per batch; the checkpoint moves once per batch. Default 500.' }) batchSize?: number;
  @Field(() => Int, { nullable: true, description: 'How long a batch that is not full waits for more changes, ms. Default 20.' }) lingerMs?: number;
  @Field(() => Int, { nullable: true, description: 'Lanes delivering side by side; a key always uses the same lane. Default 16.' }) lanes?: number;
  @Field(() => Int, { nullable: true, description: 'Attempts per delivery before dead-lettering (or stopping). Default 8.' }) maxAttempts?: number;
  @Field(() => Int, { nullable: true, description: 'First retry delay, ms, doubling per attempt with jitter. Default 200.' }) backoffMs?: number;
  @Field(() => Int, { nullable: true, description: 'Largest retry delay, ms. Default 30000.' }) maxBackoffMs?: number;
  @Field(() => SinkFailurePolicyEnum, { nullable: true, description: 'Default CONTINUE.' }) onFailure?: SinkFailurePolicyEnum;
}

@ObjectType()
export class SinkDeliverySettings {
  @Field(() => Int) batchSize!: number;
  @Field(() => Int) lingerMs!: number;
  @Field(() => Int) lanes!: number;
  @Field(() => Int) maxAttempts!: number;
  @Field(() => Int) backoffMs!: number;
  @Field(() => Int) maxBackoffMs!: number;
  @Field(() => SinkFailurePolicyEnum) onFailure!: SinkFailurePolicyEnum;
}

@InputType()
export class CreateSinkInput {
  @Field(() => String, { description: 'Unique name, [A-Za-z0-9_.-]{1,120}.' }) name!: string;
  @Field(() => String, { description: 'The change feed to deliver (a job name or environmentId).' }) feed!: string;
  @Field(() => SinkKindEnum) kind!: SinkKindEnum;
  @Field(() => JSONScalar, {
    description: `Kind-specific settings (docs/sinks.md). ${sinkSettingsDoc()}`,
  }) config!: Record<string, unknown>;
  @Field(() => SinkFormatEnum, { nullable: true, description: 'Default JSON.' }) format?: SinkFormatEnum;
  @Field(() => [String], { nullable: true, description: '`schema.table` or `table` names to deliver; default every table.' }) tables?: string[];
  @Field(() => String, { nullable: true, description: 'Start after this feed sequence; "now" = only new changes; default the oldest retained change.' }) since?: string;
  @Field(() => SinkDeliveryInput, { nullable: true }) delivery?: SinkDeliveryInput;
}

@ObjectType('Sink', { description: 'A change feed delivered to a webhook, NATS JetStream or RabbitMQ.' })
export class SinkType {
  @Field(() => ID) id!: string;
  @Field(() => String) name!: string;
  @Field(() => String) feed!: string;
  @Field(() => SinkKindEnum) kind!: SinkKindEnum;
  @Field(() => SinkFormatEnum) format!: SinkFormatEnum;
  @Field(() => SinkStatusEnum) status!: SinkStatusEnum;
  @Field(() => String, { nullable: true, description: 'Why it failed, or the last retried delivery error while running.' }) error!: string | null;
  @Field(() => JSONScalar, { description: 'Settings without secrets.' }) config!: Record<string, unknown>;
  @Field(() => [String], { description: 'Names of the secrets set (values are never returned).' }) secretsSet!: string[];
  @Field(() => [String]) tables!: string[];
  @Field(() => SinkDeliverySettings) delivery!: SinkDeliverySettings;
  @Field(() => String, { nullable: true, description: 'Feed sequence up to which every selected change was confirmed by the target or dead-lettered.' }) position!: string | null;
  @Field(() => Float, { nullable: true, description: 'Time from the commit of the last delivered change to its confirmation, ms.' }) lagMs!: number | null;
  @Field(() => Float, { description: 'Changes confirmed by the target.' }) delivered!: number;
  @Field(() => Float, { description: 'Changes dead-lettered (ever).' }) failed!: number;
  @Field(() => Int, { description: 'Changes in the dead-letter list now.' }) deadLetterCount!: number;
  @Field(() => DateTimeScalar) createdAt!: Date;
  @Field(() => DateTimeScalar) updatedAt!: Date;
}

@ObjectType({ description: 'A change a sink gave up on.' })
export class SinkDeadLetter {
  @Field(() => ID) id!: string;
  @Field(() => String) sequence!: string;
  @Field(() => String, { description: 'The stable message id (feed:sequence).' }) messageId!: string;
  @Field(() => String, { description: 'Ordering key: table and primary key.' }) key!: string;
  @Field(() => String) error!: string;
  @Field(() => Int) attempts!: number;
  @Field(() => JSONScalar, { description: 'The change event.' }) change!: unknown;
  @Field(() => DateTimeScalar) createdAt!: Date;
}

@ObjectType()
export class SinkDeadLetterList {
  @Field(() => Int, { description: 'Dead letters in the list.' }) total!: number;
  @Field(() => [SinkDeadLetter], { description: 'In feed order per key.' }) letters!: SinkDeadLetter[];
}

@ObjectType()
export class SinkReplayResult {
  @Field(() => Int) delivered!: number;
  @Field(() => Int, { description: 'Not delivered (kept), including later letters of a key whose earlier letter failed.' }) failed!: number;
  @Field(() => Int, { description: 'Dead letters left in the list.' }) remaining!: number;
  @Field(() => [String]) errors!: string[];
}

@ObjectType('SinkEvent', { description: 'A sink\'s state now, then status changes, progress (about once a second), retries and dead letters.' })
export class SinkEventType {
  @Field(() => ID) sinkId!: string;
  @Field(() => String, { description: 'status, progress, retry or dead-lettered.' }) kind!: string;
  @Field(() => SinkStatusEnum) status!: SinkStatusEnum;
  @Field(() => String, { nullable: true }) position!: string | null;
  @Field(() => Float) delivered!: number;
  @Field(() => Float) failed!: number;
  @Field(() => Float, { nullable: true }) lagMs!: number | null;
  @Field(() => String, { nullable: true }) message!: string | null;
  @Field(() => String) at!: string;
}
