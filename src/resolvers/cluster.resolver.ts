/** The cluster pool over GraphQL: thin calls into ClusterService, which enforces who may act on which cluster. */
import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { Role } from '../auth/roles.ts';
import type { ClusterStatus, ClusterView } from '../services/cluster.service.ts';
import type { GraphQLContext } from './context.ts';
import { ApplyClusterInput, Cluster, ClusterConnection, ClusterEvent, ClusterInput, ClustersArgs } from './cluster.types.ts';
import { pageWindow, toPage } from './pagination.ts';

/** The view's enum values are the GraphQL enums' values. */
const toCluster = (v: ClusterView): Cluster => v as unknown as Cluster;
const toNullableCluster = (v: ClusterView | null): Cluster | null => (v ? toCluster(v) : null);

@Resolver(() => Cluster)
export class ClusterResolver {
  @Authorized(Role.Reader)
  @Query(() => ClusterConnection, { complexity: 10, description: 'Admins see every cluster; other callers the ones they hold and free ones.' })
  async clusters(@Args(() => ClustersArgs) args: ClustersArgs, @Ctx() ctx: GraphQLContext): Promise<ClusterConnection> {
    const f = args.filter ?? {};
    const filter = { ...f, status: f.status as ClusterStatus | undefined };
    const { total } = await ctx.services.clusters.list(ctx.principal, filter, 0, 0);
    const { start, end } = pageWindow(args, total);
    const { rows } = await ctx.services.clusters.list(ctx.principal, filter, start, end - start);
    return toPage(rows.map(toCluster), start, total) as ClusterConnection;
  }

  @Authorized(Role.Reader)
  @Query(() => Cluster, { nullable: true, description: 'By id or name; null when unknown or held by another user.' })
  async cluster(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Cluster | null> {
    return toNullableCluster(await ctx.services.clusters.get(ctx.principal, id));
  }

  @Authorized(Role.Admin)
  @Mutation(() => Cluster)
  async createCluster(@Arg('input', () => ClusterInput) input: ClusterInput, @Ctx() ctx: GraphQLContext): Promise<Cluster> {
    return toCluster(await ctx.services.clusters.create(input));
  }

  @Authorized(Role.Admin)
  @Mutation(() => Boolean, { description: 'False when unknown. A held cluster must be released first.' })
  async deleteCluster(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    return ctx.services.clusters.delete(id);
  }

  @Authorized(Role.Operator)
  @Mutation(() => Cluster, { description: 'Lease a free matching cluster (or return the one the user holds unless allowMultiple). Fails with "No available res for USER".' })
  async applyCluster(@Arg('input', () => ApplyClusterInput) input: ApplyClusterInput, @Ctx() ctx: GraphQLContext): Promise<Cluster> {
    return toCluster(await ctx.services.clusters.apply(ctx.principal, input));
  }

  @Authorized(Role.Operator)
  @Mutation(() => [Cluster], { description: 'Release one cluster, or all a user holds. Asynchronous: running jobs move to the shared pool, then the cluster returns to the free pool; watch releaseStatus.' })
  async releaseCluster(
    @Ctx() ctx: GraphQLContext,
    @Arg('clusterId', () => ID, { nullable: true }) clusterId?: string,
    @Arg('userId', () => String, { nullable: true }) userId?: string,
  ): Promise<Cluster[]> {
    return (await ctx.services.clusters.release(ctx.principal, { clusterId, userId })).map(toCluster);
  }

  @Authorized(Role.Operator)
  @Mutation(() => Cluster, { description: 'Pause the cluster queue and its jobs (positions kept).' })
  async stopCluster(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Cluster> {
    return toCluster(await ctx.services.clusters.stop(ctx.principal, id));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Cluster, { description: 'Resume the cluster queue and the jobs its stop paused.' })
  async startCluster(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Cluster> {
    return toCluster(await ctx.services.clusters.start(ctx.principal, id));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Cluster, { description: 'Stop, then start.' })
  async restartCluster(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Cluster> {
    return toCluster(await ctx.services.clusters.restart(ctx.principal, id));
  }

  @Authorized(Role.Reader)
  @Subscription(() => ClusterEvent, {
    description: 'Lease, release progress, start and stop of the clusters the caller may see.',
    subscribe: ({ context }: SubscribeResolverData<unknown, Record<string, never>, GraphQLContext>) => context.services.clusters.events(context.principal),
  })
  clusterEvents(@Root() event: ClusterEvent): ClusterEvent {
    return event;
  }
}
