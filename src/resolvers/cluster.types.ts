/** GraphQL types of the cluster pool. */
import { ArgsType, Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Connection as RelayConnection, PageArgs } from './pagination.ts';

/** GraphQL spellings (upper case) of the domain enums; the values are the domain's own strings. */
export enum ClusterStatusEnum { RUNNING = 'running', STOPPED = 'stopped' }
export enum ClusterReleaseStatusEnum { NONE = 'none', RELEASING = 'releasing', RELEASED = 'released', FAILED = 'failed' }
export enum ClusterEventKindEnum {
  CREATED = 'created', DELETED = 'deleted', APPLIED = 'applied', RELEASING = 'releasing', RELEASED = 'released',
  RELEASE_FAILED = 'release-failed', STOPPED = 'stopped', STARTED = 'started',
}
registerEnumType(ClusterStatusEnum, { name: 'ClusterStatus', description: 'STOPPED: the cluster queue is paused and its jobs are paused with positions kept.' });
registerEnumType(ClusterReleaseStatusEnum, { name: 'ClusterReleaseStatus' });
registerEnumType(ClusterEventKindEnum, { name: 'ClusterEventKind' });

@ObjectType({ description: 'Leased worker capacity: one task queue served by workers started with `tributary worker --cluster NAME`.' })
export class Cluster {
  @Field(() => ID) id!: string;
  @Field(() => String) name!: string;
  @Field(() => Int, { description: 'Concurrent task slots across all of the cluster\'s workers.' }) size!: number;
  @Field(() => String, { description: 'Label kept for Cello callers (pbft, solo, kafka, ...); empty when none.' }) consensusPlugin!: string;
  @Field(() => String, { description: 'Label kept for Cello callers (batch, classic, sieve, ...); empty when none.' }) consensusMode!: string;
  @Field(() => ClusterStatusEnum) status!: ClusterStatusEnum;
  @Field(() => String, { description: 'OK: running with at least one live worker; FAIL: running with none; empty when stopped.' }) health!: string;
  @Field(() => String, { nullable: true, description: 'Holder of the lease; null when free.' }) userId!: string | null;
  @Field(() => String, { nullable: true }) applyTs!: string | null;
  @Field(() => String, { nullable: true, description: 'When the last release began; cleared by the next lease.' }) releaseTs!: string | null;
  @Field(() => ClusterReleaseStatusEnum) releaseStatus!: ClusterReleaseStatusEnum;
  @Field(() => Int, { description: 'Percent done of the current or last release.' }) releaseProgress!: number;
  @Field(() => String) releaseMessage!: string;
  @Field(() => String, { description: 'BullMQ queue of the cluster (tasks-cluster-NAME).' }) queue!: string;
  @Field(() => String, { description: 'The gateway URL.' }) apiUrl!: string;
  @Field(() => String, { description: 'Where the cluster\'s workers take tasks: Redis (no credentials) and queue name.' }) daemonUrl!: string;
  @Field(() => [String], { description: 'Node ids of the live workers serving this cluster.' }) workers!: string[];
  @Field(() => String) createdAt!: string;
}

@ObjectType()
export class ClusterConnection extends RelayConnection(Cluster, 'Cluster') {}

@InputType()
export class ClusterFilter {
  @Field(() => String, { nullable: true }) consensusPlugin?: string;
  @Field(() => String, { nullable: true }) consensusMode?: string;
  @Field(() => Int, { nullable: true }) size?: number;
  @Field(() => String, { nullable: true, description: 'Holder; empty string = free clusters only.' }) userId?: string;
  @Field(() => ClusterStatusEnum, { nullable: true }) status?: ClusterStatusEnum;
  @Field(() => Boolean, { nullable: true, description: 'Only clusters released and not leased since.' }) released?: boolean;
}

@ArgsType()
export class ClustersArgs extends PageArgs {
  @Field(() => ClusterFilter, { nullable: true }) filter?: ClusterFilter;
}

@InputType()
export class ClusterInput {
  @Field(() => String, { description: '[A-Za-z0-9_-]{1,64}; workers join with --cluster NAME.' }) name!: string;
  @Field(() => Int) size!: number;
  @Field(() => String, { nullable: true }) consensusPlugin?: string;
  @Field(() => String, { nullable: true }) consensusMode?: string;
}

@InputType()
export class ApplyClusterInput {
  @Field(() => String, { nullable: true, description: 'Admins may apply for anyone; other tokens act as their own name (the default).' }) userId?: string;
  @Field(() => String, { nullable: true }) consensusPlugin?: string;
  @Field(() => String, { nullable: true }) consensusMode?: string;
  @Field(() => Int, { nullable: true }) size?: number;
  @Field(() => Boolean, { nullable: true, description: 'Lease another cluster even if the user already holds a matching one.' }) allowMultiple?: boolean;
}

@ObjectType()
export class ClusterEvent {
  @Field(() => ClusterEventKindEnum) kind!: ClusterEventKindEnum;
  @Field(() => Cluster) cluster!: Cluster;
  @Field(() => String) at!: string;
  @Field(() => String, { nullable: true }) message?: string;
}
