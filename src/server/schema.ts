import 'reflect-metadata';
import { printSchema, lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type AuthChecker } from 'type-graphql';
import { createPubSub } from '@graphql-yoga/subscription';
import { resolvers } from '../resolvers/index.ts';
import type { GraphQLContext } from '../resolvers/context.ts';
import { parseRole, roleAllows, Role } from '../auth/roles.ts';
import type { AppPubSub } from '../events/pubsub.ts';

const authChecker: AuthChecker<GraphQLContext> = ({ context }, roles) => {
  const need = parseRole(roles[0] ?? Role.Reader) ?? Role.Reader;
  return roleAllows(context.principal.role, need);
};

export async function buildAppSchema(pubSub?: AppPubSub): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers,
    authChecker,
    // Printing the schema needs no Redis: an in-process PubSub stands in only there.
    pubSub: (pubSub ?? createPubSub()) as never,
    validate: false,
  });
}

/** The SDL checked in at schema/schema.graphql. */
export async function printAppSchema(): Promise<string> {
  const schema = await buildAppSchema();
  return printSchema(lexicographicSortSchema(schema)) + '\n';
}
