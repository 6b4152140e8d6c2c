import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { Role } from '../auth/roles.ts';
import type { GraphQLContext } from './context.ts';
import { DbConnection, Job, JobConnection, JobEvent, JobInput, JobLog, JobMetrics, JobsArgs, JobUpdateInput, TableSelectionInput, Task } from './job.types.ts';
import { pageWindow, toPage } from './pagination.ts';
import { toDbConnection, toJob, toTask } from './mappers.ts';
import { loaders } from './loaders.ts';
import { toGraphQLError } from './change.resolver.ts';
import { JobVerification, VerifyJobInput } from './job-verify.types.ts';

@Resolver(() => Job)
export class JobResolver {
  @Authorized(Role.Reader)
  @Query(() => JobConnection, { complexity: 10 })
  async jobs(@Args(() => JobsArgs) args: JobsArgs, @Ctx() ctx: GraphQLContext): Promise<JobConnection> {
    const total = await ctx.services.jobs.count(args);
    const { start, end } = pageWindow(args, total);
    const rows = await ctx.services.jobs.list(args, start, end - start);
    return toPage(rows.map(toJob), start, total) as JobConnection;
  }

  @Authorized(Role.Reader)
  @Query(() => Job, { nullable: true, description: 'By id, numeric index or name.' })
  async job(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Job | null> {
    const row = await ctx.services.jobs.find(id);
    return row ? toJob(row) : null;
  }

  /** Deprecated: Udup's word for the status, from the Udup dialect the composition root handed in. */
  @FieldResolver(() => String)
  udupStatus(@Root() job: Job, @Ctx() ctx: GraphQLContext): string {
    return ctx.services.legacy.udup.jobStatus(job.status);
  }

  @FieldResolver(() => [Task], { complexity: 5 })
  async tasks(@Root() job: Job, @Ctx() ctx: GraphQLContext): Promise<Task[]> {
    return (await loaders(ctx).tasksByJob.load(job.id)).map(toTask);
  }

  @FieldResolver(() => DbConnection, { nullable: true })
  async source(@Root() job: Job, @Ctx() ctx: GraphQLContext): Promise<DbConnection | null> {
    if (!job.sourceConnectionId) return null;
    const row = await loaders(ctx).connection.load(job.sourceConnectionId);
    return row ? toDbConnection(row) : null;
  }

  @FieldResolver(() => DbConnection, { nullable: true })
  async destination(@Root() job: Job, @Ctx() ctx: GraphQLContext): Promise<DbConnection | null> {
    if (!job.destConnectionId) return null;
    const row = await loaders(ctx).connection.load(job.destConnectionId);
    return row ? toDbConnection(row) : null;
  }

  @FieldResolver(() => [JobLog], { complexity: 5 })
  async logs(@Root() job: Job, @Ctx() ctx: GraphQLContext, @Arg('last', () => Int, { defaultValue: 100 }) last: number): Promise<JobLog[]> {
    const rows = await ctx.services.jobs.logs(job.id, Math.min(Math.max(last, 0), 10_000));
    return rows.map((r) => ({ at: r.at.toISOString(), level: r.level, message: r.message }));
  }

  @Authorized(Role.Operator)
  @Mutation(() => JobVerification, {
    complexity: 50,
    description: 'Compare a running job\'s destination with its source, key range by key range (row count and checksum on both sides), without stopping the job. Ranges that differ are read again after a pause, so rows still in flight do not count; what is left is reported with some of its keys. docs/consistency.md, "Verifying a job".',
  })
  async verifyJob(@Arg('id', () => ID) id: string, @Arg('input', () => VerifyJobInput, { nullable: true }) input: VerifyJobInput | undefined, @Ctx() ctx: GraphQLContext): Promise<JobVerification> {
    const v = await ctx.services.verify.verify(id, input ?? {});
    return { ...v, jobStatus: v.jobStatus as unknown as JobVerification['jobStatus'], startedAt: v.startedAt.toISOString(), finishedAt: v.finishedAt.toISOString(), tables: v.tables as JobVerification['tables'] };
  }

  @Authorized(Role.Operator)
  @Mutation(() => Job, { description: 'Create a job and start it (unless `paused`).' })
  async createJob(@Arg('input', () => JobInput) input: JobInput, @Ctx() ctx: GraphQLContext): Promise<Job> {
    return toJob(await ctx.services.jobs.create(input, ctx.principal));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Job, { description: 'Change lanes, limits or tables; a running job restarts its tasks from their checkpoints.' })
  async updateJob(@Arg('id', () => ID) id: string, @Arg('input', () => JobUpdateInput) input: JobUpdateInput, @Ctx() ctx: GraphQLContext): Promise<Job> {
    return toJob(await ctx.services.jobs.update(id, input));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Job, { description: 'Copy tables (or the rows matching `where`) again while the job keeps streaming: key-ordered chunks interleaved with the stream under watermarks, without emptying the destination (docs/consistency.md, "Incremental snapshots"). Progress in `progress.incrementalSnapshot`.' })
  async snapshotTables(
    @Arg('jobId', () => ID) jobId: string,
    @Arg('tables', () => [TableSelectionInput]) tables: TableSelectionInput[],
    @Arg('where', () => String, { nullable: true, description: 'Row filter: the WHERE subset cached queries accept (comparisons, IN, BETWEEN, IS NULL, AND/OR/NOT); keyed tables only.' }) where: string | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Job> {
    return toJob(await ctx.services.jobs.snapshotTables(jobId, tables, where));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Job, { description: 'Capture more tables (PostgreSQL: ALTER PUBLICATION ADD TABLE; MariaDB: the binlog filter) and, with `snapshot`, copy their rows incrementally while the other tables keep streaming.' })
  async addTables(
    @Arg('jobId', () => ID) jobId: string,
    @Arg('tables', () => [TableSelectionInput]) tables: TableSelectionInput[],
    @Arg('snapshot', () => Boolean, { nullable: true, defaultValue: true }) snapshot: boolean | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Job> {
    return toJob(await ctx.services.jobs.addTables(jobId, tables, snapshot ?? true));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Job, { description: 'Stop capturing tables (PostgreSQL: dropped from the publication); their rows stay at the destination.' })
  async removeTables(@Arg('jobId', () => ID) jobId: string, @Arg('tables', () => [TableSelectionInput]) tables: TableSelectionInput[], @Ctx() ctx: GraphQLContext): Promise<Job> {
    return toJob(await ctx.services.jobs.removeTables(jobId, tables));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Job)
  async pauseJob(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Job> {
    return toJob(await ctx.services.jobs.pause(id));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Job)
  async resumeJob(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Job> {
    return toJob(await ctx.services.jobs.resume(id));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Job, { description: 'Stop for good (status canceled); positions are kept until the job is deleted.' })
  async stopJob(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Job> {
    return toJob(await ctx.services.jobs.stop(id));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Boolean, { description: 'Stop, drop the slot/publication and the feed, and remove the job.' })
  async deleteJob(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    await ctx.services.jobs.delete(id);
    return true;
  }

  @Authorized(Role.Reader)
  @Subscription(() => JobEvent, {
    description: 'Status changes, snapshot progress and metrics of a job.',
    subscribe: async ({ args, context }: SubscribeResolverData<unknown, { id: string }, GraphQLContext>) => {
      try { return await context.services.jobs.events(args.id); } catch (err) { throw toGraphQLError(err); }
    },
  })
  jobEvents(@Root() event: JobEvent, @Arg('id', () => ID) _id: string): JobEvent {
    return event;
  }
}

@Resolver(() => JobMetrics)
export class JobMetricsResolver {
  @FieldResolver(() => Int, { nullable: true, description: 'Transactions captured into the feed and not yet applied (null for jobs without apply).' })
  async backlog(@Root() m: JobMetrics, @Ctx() ctx: GraphQLContext): Promise<number | null> {
    return m.jobId ? ctx.services.jobs.backlog(m.jobId) : null;
  }

  @FieldResolver(() => Number, { nullable: true, complexity: 5, description: 'Log the source keeps for this job, bytes: PostgreSQL, the WAL its replication slot retains; MariaDB, the binary log after the capture position. Read from the source (at most every 5 s per job); null when unknown or unreachable.' })
  async retainedLogBytes(@Root() m: JobMetrics, @Ctx() ctx: GraphQLContext): Promise<number | null> {
    return m.jobId ? ctx.services.jobs.retainedLog(m.jobId) : null;
  }
}
