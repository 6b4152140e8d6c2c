/** What resolvers may call. Built once by the composition root (src/app.ts). */
import type { Authenticator } from '../auth/authenticator.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { TaskService } from './task.service.ts';
import type { TokenRepo } from '../store/token.repo.ts';
import type { AppPubSub } from '../events/pubsub.ts';
import type { ConnectionService } from './connection.service.ts';
import type { JobService } from './job.service.ts';
import type { CachedQueryService } from './cached-query.service.ts';
import type { ClusterService } from './cluster.service.ts';
import type { ChangeFeedService } from './change-feed.service.ts';
import type { PipelineService } from './pipeline.service.ts';
import type { PipelineTracking } from './pipeline-tracking.ts';
import type { PipelineModelRegistry } from './pipeline-model-registry.ts';
import type { DataService } from './data.service.ts';
import type { SinkService } from './sink.service.ts';
import type { JobVerifyService } from './job-verify.service.ts';
import type { LegacyVocabulary } from './legacy-vocabulary.ts';

export interface Services {
  version: string;
  nodes: NodeRegistry;
  tasks: TaskService;
  tokens: TokenRepo;
  auth: Authenticator;
  pubSub: AppPubSub;
  connections: ConnectionService;
  jobs: JobService;
  verify: JobVerifyService;
  cachedQueries: CachedQueryService;
  clusters: ClusterService;
  changes: ChangeFeedService;
  pipelines: PipelineService;
  pipelineTracking: PipelineTracking;
  pipelineModels: PipelineModelRegistry;
  data: DataService;
  sinks: SinkService;
  /** The legacy APIs' words that GraphQL still speaks (deprecated fields). */
  legacy: LegacyVocabulary;
}
