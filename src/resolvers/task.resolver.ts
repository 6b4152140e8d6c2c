import { Arg, Authorized, Ctx, Field, Int, Mutation, ObjectType, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { Role } from '../auth/roles.ts';
import type { TaskEvent as TaskEventData } from '../domain/task-model.ts';
import type { GraphQLContext } from './context.ts';
import { JSONScalar } from './scalars.ts';

@ObjectType()
export class TaskRef {
  @Field(() => String) taskId!: string;
}

@ObjectType({ description: 'Progress or result of a task.' })
export class TaskEvent {
  @Field(() => String) taskId!: string;
  @Field(() => String, { nullable: true }) jobId?: string;
  @Field(() => String) kind!: string;
  @Field(() => String, { description: 'queued, active, progress, completed or failed.' }) state!: string;
  @Field(() => Int, { nullable: true }) progress?: number;
  @Field(() => String, { nullable: true }) message?: string;
  @Field(() => JSONScalar, { nullable: true }) result?: unknown;
  @Field(() => String, { nullable: true }) nodeId?: string;
  @Field(() => String) at!: string;
}

@Resolver()
export class TaskResolver {
  @Authorized(Role.Operator)
  @Mutation(() => TaskRef, { description: 'Dispatch a trivial task through BullMQ to a worker; follow it with `taskEvents`.' })
  runNoop(
    @Ctx() ctx: GraphQLContext,
    @Arg('steps', () => Int, { defaultValue: 3 }) steps: number,
    @Arg('stepMs', () => Int, { defaultValue: 200 }) stepMs: number,
    @Arg('message', () => String, { nullable: true }) message?: string,
  ): Promise<TaskRef> {
    return ctx.services.tasks.runNoop(steps, stepMs, message ?? undefined);
  }

  @Authorized(Role.Reader)
  @Subscription(() => TaskEvent, {
    description: 'The task\'s current state, then its progress and result as they happen.',
    subscribe: ({ args, context }: SubscribeResolverData<unknown, { taskId: string }, GraphQLContext>) => context.services.tasks.events(args.taskId),
  })
  taskEvents(@Root() event: TaskEventData, @Arg('taskId', () => String) _taskId: string): TaskEvent {
    return event;
  }
}
