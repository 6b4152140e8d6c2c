/**
 * Cello v2 cluster pool API (port 8080 in Cello): the router the gateway
 * mounts and the OpenAPI document built from the same route table.
 */
import express, { type Router } from 'express';
import type { GraphQLExecutor } from '../executor.ts';
import { OPENAPI_DOCUMENT_SCHEMA, defineRoute, mountRoutes, openApiFor, requestServers, withServers, type OpenApiServers, type RestDialect, type RestRoute, type ServerDoc } from '../rest-route.ts';
import { CelloCode, fail, graphqlFail } from './cello.mapping.ts';
import { celloRoutes } from './cello.routes.ts';
import { celloCommonResponses } from './cello.schemas.ts';

export const CELLO_OPENAPI_PATH = '/v2/openapi.json';

/** Every failure is Cello's FAIL envelope; the body's `code` carries the real reason. */
export const celloDialect: RestDialect = {
  error: (err) => fail(err.status >= 500 ? 'internal error' : err.message, typeof err.code === 'number' ? err.code : err.status === 400 ? CelloCode.BadRequest : err.status),
  graphqlError: graphqlFail,
};

/** The document; `servers` default to none (the served copy lists the listeners that answer). */
export function celloOpenApi(servers?: ServerDoc[]): Record<string, unknown> {
  return openApiFor([...celloRoutes, openApiRoute()], {
    title: 'Cello cluster pool API v2 (Tributary compatibility)',
    version: '2.0.0',
    description: 'Hyperledger Cello\'s /v2 cluster pool operations over Tributary clusters (leased worker capacity). See docs/compat.md, "Cello cluster pool v2".',
    servers,
    commonResponses: celloCommonResponses,
  });
}

let cachedOpenApi: Record<string, unknown> | undefined;

const openApiRoute = (servers: OpenApiServers = requestServers()): RestRoute => defineRoute<undefined>({
  method: 'GET', path: CELLO_OPENAPI_PATH, input: 'query', summary: 'This OpenAPI document',
  responses: [{ status: 200, description: 'The OpenAPI 3.1 document', schema: OPENAPI_DOCUMENT_SCHEMA }],
  result: (_data, req) => ({ json: withServers(cachedOpenApi ??= celloOpenApi(), servers(req)) }),
});

export interface CelloRouterOptions {
  /** Request body limit in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Told about unexpected failures (answered code 500). */
  onInternalError?(err: unknown): void;
  /** `servers` of the served OpenAPI document. Default: the address it was fetched from. */
  servers?: OpenApiServers;
}

export function celloRouter(executor: GraphQLExecutor, opts: CelloRouterOptions = {}): Router {
  return mountRoutes(express.Router(), [...celloRoutes, openApiRoute(opts.servers)], executor, {
    dialect: celloDialect,
    maxBodyBytes: opts.maxBodyBytes,
    onInternalError: opts.onInternalError ? (err) => opts.onInternalError!(err) : undefined,
  });
}

export { celloRoutes } from './cello.routes.ts';
