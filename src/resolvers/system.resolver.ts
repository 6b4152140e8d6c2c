import { Args, Authorized, Ctx, Field, Int, ObjectType, Query, Resolver } from 'type-graphql';
import { Role } from '../auth/roles.ts';
import type { NodeRecord } from '../services/node-registry.ts';
import type { GraphQLContext } from './context.ts';
import { Connection, PageArgs, paginate } from './pagination.ts';

@ObjectType({ description: 'A running Tributary process, from its heartbeat in Redis.' })
export class TributaryNode {
  @Field(() => String) id!: string;
  @Field(() => String, { description: 'serve, worker or start (both).' }) role!: string;
  @Field(() => String) host!: string;
  @Field(() => Int) pid!: number;
  @Field(() => String) startedAt!: string;
  @Field(() => String) lastSeen!: string;
  @Field(() => String, { nullable: true, description: 'Cluster whose queue this worker serves; null = shared pool.' }) cluster?: string;
  @Field(() => String) version!: string;
}

@ObjectType()
export class TributaryNodeConnection extends Connection(TributaryNode, 'TributaryNode') {}

@ObjectType()
export class Viewer {
  @Field(() => String) name!: string;
  @Field(() => String) role!: string;
  @Field(() => Boolean, { description: 'True when no token is defined and the gateway runs loopback-only.' }) openMode!: boolean;
}

@Resolver()
export class SystemResolver {
  @Query(() => String, { description: 'Tributary version.' })
  version(@Ctx() ctx: GraphQLContext): string {
    return ctx.services.version;
  }

  @Authorized(Role.Reader)
  @Query(() => Viewer, { description: 'Who the caller is.' })
  viewer(@Ctx() ctx: GraphQLContext): Viewer {
    return { name: ctx.principal.name, role: ctx.principal.role, openMode: ctx.principal.open };
  }

  @Authorized(Role.Reader)
  @Query(() => TributaryNodeConnection, { description: 'Running Tributary processes.', complexity: 10 })
  async nodes(@Args(() => PageArgs) page: PageArgs, @Ctx() ctx: GraphQLContext): Promise<TributaryNodeConnection> {
    const all: NodeRecord[] = await ctx.services.nodes.list();
    return paginate(all, page) as TributaryNodeConnection;
  }
}
