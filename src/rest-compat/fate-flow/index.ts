/**
 * FATE-Flow REST API v1 (port 9380 in FATE): the router the gateway mounts,
 * the OpenAPI document built from the same route table, and the multipart
 * adapter of /v1/data/upload (FATE's client sent the file itself when the
 * file was not on the server: the part `file` is staged to a directory that
 * workers read, the other fields and the query string are the request).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { GraphQLExecutor } from '../executor.ts';
import { OPENAPI_DOCUMENT_SCHEMA, defineRoute, mountRoutes, openApiFor, requestServers, withServers, type OpenApiServers, type RestDialect, type RestRoute, type ServerDoc } from '../rest-route.ts';
import { RetCode } from './fate-flow.mapping.ts';
import { fateFlowRoutes, stagedUploads } from './fate-flow.routes.ts';
import { fateFlowCommonResponses } from './fate-flow.schemas.ts';

export const FATE_FLOW_OPENAPI_PATH = '/v1/fate-flow/openapi.json';

/** Errors of the machinery (malformed body, 405, 413, 500) and of route hooks, in FATE's envelope. */
export const fateFlowDialect: RestDialect = {
  error: (err) => {
    if (typeof err.code === 'number') return { status: 200, json: { retcode: err.code, retmsg: err.message } };
    const retcode = err.status >= 500 ? RetCode.Exception : RetCode.ArgumentError;
    return { status: err.status, json: { retcode, retmsg: err.message } };
  },
  graphqlError: (errors) => ({ status: 200, json: { retcode: RetCode.Exception, retmsg: errors[0]?.message ?? 'error' } }),
};

/** The document; `servers` default to none (the served copy lists the listeners that answer). */
export function fateFlowOpenApi(servers?: ServerDoc[]): Record<string, unknown> {
  return openApiFor([...fateFlowRoutes, openApiRoute()], {
    title: 'FATE-Flow REST API v1 (Tributary compatibility)',
    version: '1.7.0',
    description: 'FATE-Flow v1 data, job, tracking, pipeline, model and table endpoints, translated to Tributary\'s GraphQL pipelines API. Every answer is {retcode, retmsg, data, jobId, meta}. See docs/compat.md, "FATE-Flow v1".',
    servers,
    commonResponses: fateFlowCommonResponses,
  });
}

let cachedOpenApi: Record<string, unknown> | undefined;
const openApiRoute = (servers: OpenApiServers = requestServers()): RestRoute => defineRoute<undefined>({
  method: 'GET', path: FATE_FLOW_OPENAPI_PATH, input: 'query', summary: 'This OpenAPI document',
  responses: [{ status: 200, description: 'The OpenAPI 3.1 document', schema: OPENAPI_DOCUMENT_SCHEMA }],
  result: (_data, req) => ({ json: withServers(cachedOpenApi ??= fateFlowOpenApi(), servers(req)) }),
});

export interface FateFlowRouterOptions {
  /** JSON body limit in bytes. Default 16 MiB (DSLs and confs). */
  maxBodyBytes?: number;
  /** Where multipart uploads are staged; workers must read the same path. Default <os tmpdir>/tributary-fate-uploads. */
  uploadDir?: string;
  /** Largest multipart file. Default 2 GiB. */
  maxUploadBytes?: number;
  onInternalError?(err: unknown): void;
  /** `servers` of the served OpenAPI document. Default: the address it was fetched from. */
  servers?: OpenApiServers;
}

/** FATE's multipart config came as query fields, or (clients >= 1.5.1) as one JSON-encoded query key. */
function queryConfig(q: Record<string, unknown>): Record<string, unknown> {
  if ('namespace' in q || 'table_name' in q) return { ...q };
  const keys = Object.keys(q);
  if (keys.length === 1) { try { const v = JSON.parse(keys[0]!); if (v && typeof v === 'object') return v as Record<string, unknown>; } catch { /* plain */ } }
  return { ...q };
}

function multipartUpload(opts: FateFlowRouterOptions) {
  const dir = opts.uploadDir ?? path.join(tmpdir(), 'tributary-fate-uploads');
  const limit = opts.maxUploadBytes ?? 2 * 1024 ** 3;
  return async (req: Request, res: Response, next: NextFunction) => {
    if (!String(req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data')) { next(); return; }
    const fail = (status: number, retcode: number, retmsg: string) => { if (!res.headersSent) res.status(status).json({ retcode, retmsg }); };
    let staged: string | undefined;
    try {
      await mkdir(dir, { recursive: true });
      const config: Record<string, unknown> = queryConfig(req.query as Record<string, unknown>);
      const bb = busboy({ headers: req.headers, limits: { fileSize: limit, files: 1 } });
      let truncated = false;
      const writes: Promise<void>[] = [];
      bb.on('field', (name, value) => { config[name] = value; });
      bb.on('file', (name, stream, info) => {
        if (name !== 'file') { stream.resume(); return; }
        staged = path.join(dir, `${randomBytes(8).toString('hex')}-${path.basename(info.filename || 'upload.csv')}`);
        stream.on('limit', () => { truncated = true; });
        writes.push(pipeline(stream, createWriteStream(staged)));
      });
      await pipeline(req, bb);
      await Promise.all(writes);
      if (truncated) { await rm(staged!, { force: true }); fail(413, RetCode.ArgumentError, `file exceeds ${limit} bytes`); return; }
      if (!staged) { fail(200, RetCode.ArgumentError, 'required parameters are missing: file'); return; }
      const token = randomBytes(16).toString('hex');
      const entry = { path: staged, adopted: false };
      stagedUploads.set(token, entry);
      // The worker removes the file after the load; a request that never became a job removes it here.
      let done = false;
      const settle = () => {
        if (done) return;
        done = true;
        stagedUploads.delete(token);
        if (!entry.adopted) void rm(entry.path, { force: true }).catch(() => undefined);
      };
      res.once('finish', settle);
      res.once('close', settle);
      config.__staged_upload = token;
      config.file ??= path.basename(staged);
      req.headers['content-type'] = 'application/json';
      req.body = Buffer.from(JSON.stringify(config));
      next();
    } catch (err) {
      if (staged) await rm(staged, { force: true }).catch(() => undefined);
      fail(400, RetCode.ArgumentError, `malformed multipart body: ${(err as Error).message}`);
    }
  };
}

export function fateFlowRouter(executor: GraphQLExecutor, opts: FateFlowRouterOptions = {}): Router {
  const router = express.Router();
  router.post('/v1/data/upload', multipartUpload(opts));
  return mountRoutes(router, [...fateFlowRoutes, openApiRoute(opts.servers)], executor, {
    dialect: fateFlowDialect,
    maxBodyBytes: opts.maxBodyBytes ?? 16 * 1024 * 1024,
    onInternalError: opts.onInternalError ? (err) => opts.onInternalError!(err) : undefined,
  });
}

export { fateFlowRoutes } from './fate-flow.routes.ts';
