/**
 * The Debezium-style connection and cached-query service (seed 002, port
 * 7000 in the original): the router the gateway mounts, and the OpenAPI
 * document built from the same route table.
 */
import express, { type Router } from 'express';
import type { GraphQLExecutor } from '../executor.ts';
import { OPENAPI_DOCUMENT_SCHEMA, defineRoute, mountRoutes, openApiFor, requestServers, withServers, type OpenApiServers, type RestDialect, type RestRoute, type ServerDoc } from '../rest-route.ts';
import { ServiceErrorCode, errorResponse, graphqlErrorResponse } from './connection-service.mapping.ts';
import { connectionServiceRoutes } from './connection-service.routes.ts';
import { connectionServiceCommonResponses } from './connection-service.schemas.ts';

export const CONNECTION_SERVICE_OPENAPI_PATH = '/connection-service/openapi.json';

const CODE_OF_STATUS: Record<number, ServiceErrorCode> = {
  400: ServiceErrorCode.MalformedBody, 404: ServiceErrorCode.NotFound, 405: ServiceErrorCode.MethodNotAllowed, 413: ServiceErrorCode.PayloadTooLarge,
};

export const connectionServiceDialect: RestDialect = {
  error: (err) => {
    const code = (typeof err.code === 'string' ? err.code : undefined) as ServiceErrorCode | undefined;
    const c = code ?? CODE_OF_STATUS[err.status] ?? ServiceErrorCode.Internal;
    return { ...errorResponse(c, err.status >= 500 ? 'internal error' : err.message), status: err.status };
  },
  graphqlError: (errors) => graphqlErrorResponse(errors),
};

/** The document; `servers` default to none (the served copy lists the listeners that answer). */
export function connectionServiceOpenApi(servers?: ServerDoc[]): Record<string, unknown> {
  return openApiFor([...connectionServiceRoutes, openApiRoute()], {
    title: 'Database connection and cached query service (Tributary compatibility)',
    version: '1.0.0',
    description: 'The Debezium/Kafka/Flink service\'s four endpoints on Tributary\'s own capture and cached queries. Bodies are form-encoded (curl -d) or JSON; errors are {message, code}. See docs/compat.md, "Connection and cached-query service".',
    servers,
    commonResponses: connectionServiceCommonResponses,
  });
}

let cachedOpenApi: Record<string, unknown> | undefined;
const openApiRoute = (servers: OpenApiServers = requestServers()): RestRoute => defineRoute<undefined>({
  method: 'GET', path: CONNECTION_SERVICE_OPENAPI_PATH, input: 'query', summary: 'This OpenAPI document',
  responses: [{ status: 200, description: 'The OpenAPI 3.1 document', schema: OPENAPI_DOCUMENT_SCHEMA }],
  result: (_data, req) => ({ json: withServers(cachedOpenApi ??= connectionServiceOpenApi(), servers(req)) }),
});

export interface ConnectionServiceRouterOptions {
  /** Request body limit in bytes (a Prisma schema can be long). Default 1 MiB. */
  maxBodyBytes?: number;
  onInternalError?(err: unknown): void;
  /** `servers` of the served OpenAPI document. Default: the address it was fetched from. */
  servers?: OpenApiServers;
}

export function connectionServiceRouter(executor: GraphQLExecutor, opts: ConnectionServiceRouterOptions = {}): Router {
  return mountRoutes(express.Router(), [...connectionServiceRoutes, openApiRoute(opts.servers)], executor, {
    dialect: connectionServiceDialect,
    maxBodyBytes: opts.maxBodyBytes,
    onInternalError: opts.onInternalError ? (err) => opts.onInternalError!(err) : undefined,
  });
}

export { connectionServiceRoutes } from './connection-service.routes.ts';
