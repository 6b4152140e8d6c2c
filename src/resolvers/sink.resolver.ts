import { Arg, Authorized, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { Role } from '../auth/roles.ts';
import type { GraphQLContext } from './context.ts';
import { toGraphQLError } from './change.resolver.ts';
import type { SinkFormat, SinkKind, SinkEvent, SinkDelivery } from '../domain/sink-model.ts';
import type { SinkRow } from '../store/sink.repo.ts';
import {
  CreateSinkInput, SinkDeadLetterList, SinkEventType, SinkReplayResult, SinkType,
  type SinkFailurePolicyEnum, type SinkFormatEnum, type SinkKindEnum, type SinkStatusEnum,
} from './sink.types.ts';

async function toSink(r: SinkRow, ctx: GraphQLContext): Promise<SinkType> {
  return {
    id: r.id, name: r.name, feed: r.feed, kind: r.kind as unknown as SinkKindEnum, format: r.format as unknown as SinkFormatEnum,
    status: r.status as unknown as SinkStatusEnum, error: r.error, config: r.config, secretsSet: r.secret_keys, tables: r.tables,
    delivery: { ...r.delivery, onFailure: r.delivery.onFailure as unknown as SinkFailurePolicyEnum },
    position: r.position, lagMs: r.lag_ms === null ? null : Number(r.lag_ms), delivered: Number(r.delivered), failed: Number(r.failed),
    deadLetterCount: await ctx.services.sinks.deadLetterCount(r.id), createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

@Resolver(() => SinkType)
export class SinkResolver {
  @Authorized(Role.Reader)
  @Query(() => [SinkType])
  async sinks(@Ctx() ctx: GraphQLContext): Promise<SinkType[]> {
    return Promise.all((await ctx.services.sinks.list()).map((r) => toSink(r, ctx)));
  }

  @Authorized(Role.Reader)
  @Query(() => SinkType, { nullable: true, description: 'A sink by id or name.' })
  async sink(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<SinkType | null> {
    const row = await ctx.services.sinks.find(id);
    return row ? toSink(row, ctx) : null;
  }

  @Authorized(Role.Operator)
  @Mutation(() => SinkType, { description: 'Deliver a feed to a webhook, NATS JetStream or RabbitMQ; the sink starts at once (docs/consistency.md, "Sinks").' })
  async createSink(@Arg('input', () => CreateSinkInput) input: CreateSinkInput, @Ctx() ctx: GraphQLContext): Promise<SinkType> {
    const row = await ctx.services.sinks.create({
      name: input.name, feed: input.feed, kind: input.kind as unknown as SinkKind, format: input.format as unknown as SinkFormat | undefined,
      config: input.config, tables: input.tables, since: input.since, delivery: input.delivery as Partial<SinkDelivery> | undefined,
    });
    return toSink(row, ctx);
  }

  @Authorized(Role.Operator)
  @Mutation(() => SinkType)
  async pauseSink(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<SinkType> {
    return toSink(await ctx.services.sinks.pause(id), ctx);
  }

  @Authorized(Role.Operator)
  @Mutation(() => SinkType, { description: 'Resume a PAUSED or FAILED sink from its checkpoint.' })
  async resumeSink(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<SinkType> {
    return toSink(await ctx.services.sinks.resume(id), ctx);
  }

  @Authorized(Role.Operator)
  @Mutation(() => Boolean, { description: 'Stop the sink and remove it with its dead letters.' })
  async deleteSink(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    return ctx.services.sinks.delete(id);
  }

  @Authorized(Role.Reader)
  @Query(() => SinkDeadLetterList, { description: 'The sink\'s dead-letter list, oldest first.' })
  async sinkDeadLetters(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext, @Arg('limit', () => Int, { nullable: true }) limit?: number): Promise<SinkDeadLetterList> {
    const r = await ctx.services.sinks.deadLetters(id, limit ?? 100);
    return {
      total: r.total,
      letters: r.letters.map((l) => ({ id: l.id, sequence: l.sequence, messageId: l.message_id, key: l.msg_key, error: l.error, attempts: l.attempts, change: l.event, createdAt: l.created_at })),
    };
  }

  @Authorized(Role.Operator)
  @Mutation(() => SinkReplayResult, { description: 'Deliver dead letters again (all, or the ids given), in feed order per key; delivered ones leave the list.' })
  async replaySinkDeadLetters(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext, @Arg('ids', () => [ID], { nullable: true }) ids?: string[]): Promise<SinkReplayResult> {
    return ctx.services.sinks.replayDeadLetters(id, ids ?? null);
  }

  @Authorized(Role.Operator)
  @Mutation(() => Int, { description: 'Remove dead letters (all, or the ids given) without delivering them; returns how many.' })
  async dropSinkDeadLetters(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext, @Arg('ids', () => [ID], { nullable: true }) ids?: string[]): Promise<number> {
    return ctx.services.sinks.dropDeadLetters(id, ids ?? null);
  }

  @Authorized(Role.Reader)
  @Subscription(() => SinkEventType, {
    description: 'The sink\'s state now, then its events.',
    subscribe: async ({ args, context }: SubscribeResolverData<unknown, { id: string }, GraphQLContext>) => {
      try { return await context.services.sinks.events(args.id); } catch (err) { throw toGraphQLError(err); }
    },
  })
  sinkEvents(@Root() event: SinkEvent, @Arg('id', () => ID) _id: string): SinkEventType {
    return { ...event, status: event.status as unknown as SinkStatusEnum };
  }
}
