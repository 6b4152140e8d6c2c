import { GraphQLError } from 'graphql';
import { Arg, Authorized, Ctx, Int, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { Role } from '../auth/roles.ts';
import type { ChangeEvent } from '../replication/change-event.ts';
import { AppError } from '../errors.ts';
import type { GraphQLContext } from './context.ts';
import { Change, ChangeList, FeedInfo, toChange, toChangeList, toFeedInfo } from './change.types.ts';

/** AppError as a GraphQLError carrying its code: errors of a subscription stream bypass the resolver error path. */
export function toGraphQLError(err: unknown): unknown {
  return err instanceof AppError ? new GraphQLError(err.message, { extensions: { code: err.code, ...err.details }, originalError: err }) : err;
}

/**
 * The stream with its errors coded. A plain iterator object, not an async
 * generator: a generator's return() would queue behind a pending next(), so
 * unsubscribing from a quiet feed would wait for its next change.
 */
function withCodes<T>(it: AsyncIterableIterator<T>): AsyncIterableIterator<T> {
  return {
    next: () => it.next().catch((err: unknown) => { throw toGraphQLError(err); }),
    return: (value?: unknown) => it.return?.(value) ?? Promise.resolve({ value: undefined, done: true }),
    throw: (err?: unknown) => it.throw?.(err) ?? Promise.reject(err),
    [Symbol.asyncIterator]() { return this; },
  };
}

interface SubscribeArgs { feed: string; scopes: string[]; since?: string | null; tables?: string[] | null }

@Resolver()
export class ChangeResolver {
  @Authorized(Role.Reader)
  @Query(() => ChangeList, {
    complexity: 10,
    description: 'Changes of a feed (a job name, its feed name or an environmentId) after `since`, for any of `scopes`. '
      + 'limit defaults to 100 (at most 100000); `block` waits up to that many seconds for a first matching change; '
      + '`snapshot` ("xmin:xmax:xip,...") hides changes visible in that PostgreSQL snapshot. Errors: NOT_FOUND, PARAMETER_INVALID, SNAPSHOT_TOO_OLD.',
  })
  async changes(
    @Ctx() ctx: GraphQLContext,
    @Arg('feed', () => String) feed: string,
    @Arg('scopes', () => [String]) scopes: string[],
    @Arg('since', () => String, { nullable: true, description: 'Exclusive; omitted = from the oldest retained change.' }) since?: string | null,
    @Arg('limit', () => Int, { nullable: true }) limit?: number | null,
    @Arg('snapshot', () => String, { nullable: true }) snapshot?: string | null,
    @Arg('tables', () => [String], { nullable: true, description: '"schema.table" or "table"; omitted = all.' }) tables?: string[] | null,
    @Arg('block', () => Int, { nullable: true, description: 'Long poll: seconds to wait for a first matching change.' }) block?: number | null,
  ): Promise<ChangeList> {
    return toChangeList(await ctx.services.changes.changes(feed, { scopes, since, limit, snapshot, tables, block }));
  }

  @Authorized(Role.Reader)
  @Query(() => [FeedInfo], { complexity: 10, description: 'Every change feed with its bounds.' })
  async feeds(@Ctx() ctx: GraphQLContext): Promise<FeedInfo[]> {
    return (await ctx.services.changes.list()).map(toFeedInfo);
  }

  @Authorized(Role.Reader)
  @Subscription(() => Change, {
    name: 'changes',
    description: 'Matching changes after `since` (omitted = from the oldest retained change), then live ones as they are appended, '
      + 'with no gap and no duplicate. A subscriber that falls a full buffer behind for too long is closed with SUBSCRIBER_TOO_SLOW '
      + '(resubscribe with the last sequence received).',
    subscribe: async ({ args, context }: SubscribeResolverData<unknown, SubscribeArgs, GraphQLContext>) => {
      try {
        return withCodes(await context.services.changes.subscribe(args.feed, { scopes: args.scopes, since: args.since, tables: args.tables }));
      } catch (err) {
        // Errors before the stream starts reach the client as a result, not through the server's error formatting: carry the code here.
        throw toGraphQLError(err);
      }
    },
  })
  changesLive(
    @Root() event: ChangeEvent,
    @Arg('feed', () => String) _feed: string,
    @Arg('scopes', () => [String]) _scopes: string[],
    @Arg('since', () => String, { nullable: true }) _since?: string | null,
    @Arg('tables', () => [String], { nullable: true }) _tables?: string[] | null,
  ): Change {
    return toChange(event);
  }
}
