/** Every resolver class of the schema. Add new resolvers here. */
import type { NonEmptyArray } from 'type-graphql';
import { SystemResolver } from './system.resolver.ts';
import { TaskResolver } from './task.resolver.ts';
import { ConnectionResolver } from './connection.resolver.ts';
import { JobMetricsResolver, JobResolver } from './job.resolver.ts';
import { ClusterResolver } from './cluster.resolver.ts';
import { ChangeResolver } from './change.resolver.ts';
import { CachedQueryResolver } from './cached-query.resolver.ts';
import { SinkResolver } from './sink.resolver.ts';
import { PipelineComponentResolver, PipelineResolver } from './pipeline.resolver.ts';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export const resolvers: NonEmptyArray<Function> = [SystemResolver, TaskResolver, ConnectionResolver, JobResolver, JobMetricsResolver, ChangeResolver, ClusterResolver, PipelineResolver, PipelineComponentResolver, CachedQueryResolver, SinkResolver];
