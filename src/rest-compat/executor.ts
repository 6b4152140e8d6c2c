/**
 * The one thing REST compat modules get from the server: a function that
 * runs a GraphQL operation in-process (same validation, auth and resolvers as
 * GraphQL callers) with the caller's Authorization header.
 */
export interface GraphQLRequest {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
  /** The legacy caller's Authorization header, passed through. */
  authorization?: string;
}

export interface GraphQLErrorShape {
  message: string;
  path?: readonly (string | number)[];
  extensions?: Record<string, unknown> & { code?: string };
}

export interface GraphQLResponse<T = Record<string, unknown>> {
  data?: T | null;
  errors?: GraphQLErrorShape[];
}

export type GraphQLExecutor = (<T = Record<string, unknown>>(req: GraphQLRequest) => Promise<GraphQLResponse<T>>) & {
  /**
   * The gateway's per-token rate limit, checked once per REST request before
   * its input is read; undefined = allowed, else the wait and a message.
   */
  rateLimit?: (authorization: string | undefined, address: string | undefined) => Promise<{ retryAfterMs: number; message: string } | undefined>;
};
