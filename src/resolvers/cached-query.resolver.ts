import { Arg, Authorized, Ctx, ID, Mutation, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { Role } from '../auth/roles.ts';
import type { GraphQLContext } from './context.ts';
import { toDbConnection, toJob } from './mappers.ts';
import { JSONScalar } from './scalars.ts';
import { toGraphQLError } from './change.resolver.ts';
import { CachedQuery, CachedQueryCreatedResult, CachedQueryModeEnum, CachedQueryResult, DatabaseConnectionDeleted, DatabaseConnectionResult } from './cached-query.types.ts';
import type { CachedQueryRow } from '../store/cached-query.repo.ts';
import type { EnvironmentConnection } from '../services/cached-query.service.ts';

function toCachedQuery(r: CachedQueryRow): CachedQuery {
  return {
    id: r.id, sql: r.sql, environmentId: r.environment_id, connectionId: r.connection_id, jobId: r.job_id,
    mode: r.mode === 'incremental' ? CachedQueryModeEnum.INCREMENTAL : CachedQueryModeEnum.RERUN, modeReason: r.mode_reason,
    status: r.status, error: r.error, columns: r.columns ?? [], rows: r.rows ?? null, version: Number(r.version),
    refreshedAt: r.refreshed_at, lastSequence: r.last_sequence, createdAt: r.created_at,
  };
}

function toEnvironment(e: EnvironmentConnection): DatabaseConnectionResult {
  return { environmentId: e.environmentId, created: e.created, connection: toDbConnection(e.connection), job: toJob(e.job), feed: e.job.feed_name ?? e.environmentId };
}

@Resolver(() => CachedQuery)
export class CachedQueryResolver {
  @Authorized(Role.Reader)
  @Query(() => CachedQuery, { nullable: true })
  async cachedQuery(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<CachedQuery | null> {
    const row = await ctx.services.cachedQueries.find(id);
    return row ? toCachedQuery(row) : null;
  }

  @Authorized(Role.Reader)
  @Query(() => [CachedQuery], { description: 'Cached queries (without rows unless asked per id), optionally of one environment.' })
  async cachedQueries(@Ctx() ctx: GraphQLContext, @Arg('environmentId', () => String, { nullable: true }) environmentId?: string): Promise<CachedQuery[]> {
    return (await ctx.services.cachedQueries.list(environmentId)).map(toCachedQuery);
  }

  @Authorized(Role.Operator)
  @Mutation(() => DatabaseConnectionResult, { description: 'Connect a database by URL and capture it into the feed named environmentId (a SUBSCRIBE job). Repeating the call with the same database is idempotent; another database under the same environmentId is a CONFLICT.' })
  async createDatabaseConnection(
    @Arg('connectionString', () => String) connectionString: string,
    @Arg('environmentId', () => String) environmentId: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<DatabaseConnectionResult> {
    return toEnvironment(await ctx.services.cachedQueries.createDatabaseConnection(connectionString, environmentId, ctx.principal));
  }

  @Authorized(Role.Operator)
  @Mutation(() => CachedQueryCreatedResult, { description: 'Validate one SELECT (and its tables and columns against the Prisma schema, when given) and keep its result fresh. Creates the environment\'s connection first when connectionString is given and it does not exist.' })
  async createCachedQuery(
    @Arg('environmentId', () => String) environmentId: string,
    @Arg('sqlQuery', () => String) sqlQuery: string,
    @Ctx() ctx: GraphQLContext,
    @Arg('connectionString', () => String, { nullable: true }) connectionString?: string,
    @Arg('schema', () => String, { nullable: true, description: 'Prisma schema of the connected database.' }) schema?: string,
  ): Promise<CachedQueryCreatedResult> {
    const r = await ctx.services.cachedQueries.createCachedQuery({ connectionString, environmentId, schema, sqlQuery }, ctx.principal);
    return { cachedQuery: toCachedQuery(r.query), connection: toEnvironment(r.connection) };
  }

  @Authorized(Role.Operator)
  @Mutation(() => DatabaseConnectionDeleted, { description: 'Stop and remove the capture (slot or binlog reader, feed), its cached queries and the connection.' })
  async deleteDatabaseConnection(
    @Arg('environmentId', () => String) environmentId: string,
    @Ctx() ctx: GraphQLContext,
    @Arg('connectionString', () => String, { nullable: true }) connectionString?: string,
  ): Promise<DatabaseConnectionDeleted> {
    return ctx.services.cachedQueries.deleteDatabaseConnection(connectionString, environmentId);
  }

  @Authorized(Role.Reader)
  @Query(() => JSONScalar, { description: 'Status of the capture (connector) of an environment and of each cached query on it, as one JSON object.' })
  async checkJobStatus(
    @Arg('environmentId', () => String) environmentId: string,
    @Ctx() ctx: GraphQLContext,
    @Arg('connectionString', () => String, { nullable: true }) _connectionString?: string,
  ): Promise<unknown> {
    return ctx.services.cachedQueries.status(environmentId);
  }

  @Authorized(Role.Reader)
  @Subscription(() => CachedQueryResult, {
    description: 'The current result, then every new one with the rows that changed.',
    subscribe: async ({ args, context }: SubscribeResolverData<unknown, { id: string }, GraphQLContext>) => {
      // Errors before the stream starts reach the client as a result, not through the server's error formatting: carry the code.
      try { return await context.services.cachedQueries.results(args.id); } catch (err) { throw toGraphQLError(err); }
    },
  })
  cachedQueryResult(@Root() event: CachedQueryResult, @Arg('id', () => ID) _id: string): CachedQueryResult {
    return { ...event, refreshedAt: new Date(event.refreshedAt) };
  }
}
