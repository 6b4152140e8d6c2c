/**
 * Udup REST API v1 (port 8190 in Udup): the router the gateway mounts and
 * the OpenAPI document built from the same route table.
 */
import express, { type Router } from 'express';
import type { GraphQLExecutor } from '../executor.ts';
import { OPENAPI_DOCUMENT_SCHEMA, defineRoute, mountRoutes, openApiFor, requestServers, withServers, type OpenApiServers, type RestDialect, type RestRoute, type ServerDoc } from '../rest-route.ts';
import { UdupMessage, graphqlErrorResponse, plainText, redact, serialize } from './udup.mapping.ts';
import { udupRoutes } from './udup.routes.ts';
import { udupCommonResponses } from './udup.schemas.ts';

export const UDUP_OPENAPI_PATH = '/v1/openapi.json';

/** Udup answered errors as plain text with the status code (Nomad's HTTP agent style). */
export const udupDialect: RestDialect = {
  error: (err, req) => plainText(err.status, err.status === 405 ? UdupMessage.InvalidMethod : redact(err.message, req)),
  graphqlError: (errors, req) => graphqlErrorResponse(errors, req),
  serialize,
};

/** The document; `servers` default to none (the served copy lists the listeners that answer). */
export function udupOpenApi(servers?: ServerDoc[]): Record<string, unknown> {
  return openApiFor([...udupRoutes, openApiRoute()], {
    title: 'Udup REST API v1 (Tributary compatibility)',
    version: '0.3.0',
    description: 'Udup v1 job, node and status endpoints, translated to Tributary\'s GraphQL API. Errors are plain text. See docs/compat.md, "Udup v1".',
    servers,
    commonResponses: udupCommonResponses,
  });
}

let cachedOpenApi: Record<string, unknown> | undefined;

const openApiRoute = (servers: OpenApiServers = requestServers()): RestRoute => defineRoute<undefined>({
  method: 'GET', path: UDUP_OPENAPI_PATH, input: 'query', summary: 'This OpenAPI document',
  params: [{ name: 'pretty', in: 'query', description: 'Indent the JSON answer.' }],
  responses: [{ status: 200, description: 'The OpenAPI 3.1 document', schema: OPENAPI_DOCUMENT_SCHEMA }],
  result: (_data, req) => ({ json: withServers(cachedOpenApi ??= udupOpenApi(), servers(req)) }),
});

export interface UdupRouterOptions {
  /** Request body limit in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Interval between re-reads of a blocking query. Default 250 ms. */
  pollIntervalMs?: number;
  /** Told about unexpected failures (answered 500 "internal error"). */
  onInternalError?(err: unknown): void;
  /** `servers` of the served OpenAPI document. Default: the address it was fetched from. */
  servers?: OpenApiServers;
}

export function udupRouter(executor: GraphQLExecutor, opts: UdupRouterOptions = {}): Router {
  return mountRoutes(express.Router(), [...udupRoutes, openApiRoute(opts.servers)], executor, {
    dialect: udupDialect,
    maxBodyBytes: opts.maxBodyBytes,
    pollIntervalMs: opts.pollIntervalMs,
    onInternalError: opts.onInternalError ? (err) => opts.onInternalError!(err) : undefined,
  });
}

export { udupRoutes } from './udup.routes.ts';
