import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { Role } from '../auth/roles.ts';
import type { GraphQLContext } from './context.ts';
import { ConnectionCheck, ConnectionInput, DbConnection, DbConnectionConnection } from './job.types.ts';
import { PageArgs, paginate } from './pagination.ts';
import { toDbConnection } from './mappers.ts';
import { notFound } from '../errors.ts';

@Resolver(() => DbConnection)
export class ConnectionResolver {
  @Authorized(Role.Reader)
  @Query(() => DbConnectionConnection, { complexity: 10 })
  async connections(@Args(() => PageArgs) page: PageArgs, @Ctx() ctx: GraphQLContext): Promise<DbConnectionConnection> {
    const rows = await ctx.services.connections.list();
    return paginate(rows.map(toDbConnection), page) as DbConnectionConnection;
  }

  @Authorized(Role.Reader)
  @Query(() => DbConnection, { nullable: true })
  async connection(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<DbConnection | null> {
    const row = await ctx.services.connections.find(id);
    return row ? toDbConnection(row) : null;
  }

  @Authorized(Role.Operator)
  @Mutation(() => DbConnection, { description: 'Store a connection; the password is encrypted at rest and never returned.' })
  async createConnection(@Arg('input', () => ConnectionInput) input: ConnectionInput, @Ctx() ctx: GraphQLContext): Promise<DbConnection> {
    return toDbConnection(await ctx.services.connections.create(input));
  }

  @Authorized(Role.Operator)
  @Mutation(() => ConnectionCheck, { description: 'Report what capture from this database still lacks (binlog/WAL settings, privileges, slots). Give an id or an input.' })
  async testConnection(
    @Ctx() ctx: GraphQLContext,
    @Arg('id', () => ID, { nullable: true }) id?: string,
    @Arg('input', () => ConnectionInput, { nullable: true }) input?: ConnectionInput,
  ): Promise<ConnectionCheck> {
    return ctx.services.connections.test(id ?? undefined, input ?? undefined);
  }

  @Authorized(Role.Operator)
  @Mutation(() => Boolean)
  async deleteConnection(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<boolean> {
    const row = await ctx.services.connections.find(id);
    if (!row) throw notFound('connection', id);
    return ctx.services.connections.delete(row.id);
  }
}
