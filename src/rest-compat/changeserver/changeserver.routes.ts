/**
 * changeserver (Apigee Transicator) routes as data. `GET /changes` reads the
 * configured feed (CHANGESERVER_FEED), `GET /feeds/:name/changes` any feed.
 * Both run the GraphQL `changes` query; `block` is passed through to it (the
 * service waits at the feed's tail in Redis, so a long poll wakes as soon as
 * a matching change is appended, with no re-polling).
 */
import { defineRoute, RestError, type ParamDoc, type ResponseDoc, type RestRequest, type RestRoute } from '../rest-route.ts';
import {
  ChangeserverCode, MAX_LIMIT, MediaType, Param, changeListJson, changeListProto, intParam, multi, selectMediaType, single,
  type GqlChangeList,
} from './changeserver.mapping.ts';
import { changesResponses } from './changeserver.schemas.ts';

export const CHANGES_QUERY = `query ChangeserverChanges($feed: String!, $scopes: [String!]!, $since: String, $limit: Int, $snapshot: String, $block: Int) {
  changes(feed: $feed, scopes: $scopes, since: $since, limit: $limit, snapshot: $snapshot, block: $block) {
    firstSequence lastSequence
    changes { sequence txid commitSequence changeSequence commitIndex operation schema table newRow oldRow commitTime columnTypes { name kind pgType } }
  }
}`;

const params: ParamDoc[] = [
  { name: Param.Scope, in: 'query', required: true, description: 'Repeatable; several are an OR. Matched against the row\'s `_change_selector` column. At least one scope or selector is required.' },
  { name: Param.Selector, in: 'query', description: 'Alias of scope (repeatable).' },
  { name: Param.Since, in: 'query', description: 'Sequence of the last change seen (exclusive). Older than retention: 400 SNAPSHOT_TOO_OLD.', example: '16.b374d848.0' },
  { name: Param.Limit, in: 'query', type: 'integer', description: `Default 100, at most ${MAX_LIMIT}; 0 answers only firstSequence and lastSequence.` },
  { name: Param.Block, in: 'query', type: 'integer', description: 'Seconds to wait for a first matching change (long poll); an empty list when none comes.' },
  { name: Param.Snapshot, in: 'query', description: 'PostgreSQL snapshot "xmin:xmax:xip1,..." (txid_current_snapshot()); changes visible in it are not returned.' },
  { name: 'Accept', in: 'header', description: `${MediaType.Json} (default) or ${MediaType.Protobuf}.` },
];

const exampleList = {
  firstSequence: '16.b374d000.0', lastSequence: '16.b374d848.1',
  changes: [{
    operation: 1, table: 'public.orders', sequence: '16.b374d848.0', commitSequence: 97500977224, changeSequence: 97500977224, commitIndex: 0, txid: 7311, timestamp: 1714979289,
    newRow: { id: { value: '1', type: 23 }, _change_selector: { value: 'tenant-a', type: 25 } },
  }],
};

const responses: ResponseDoc[] = changesResponses.map((r) => (r.status === 200 ? { ...r, example: exampleList } : r.status === 400
  ? { ...r, example: { code: 'SNAPSHOT_TOO_OLD', error: 'The client is operating on an old snapshot', description: 'changes since 1.0.0 are no longer retained' } }
  : r));

const ZERO_SEQUENCE = '0.0.0';

/** Variables of the changes query from Transicator's parameters; the feed comes from `feedOf`. */
export function changesVariables(req: RestRequest, feed: string): Record<string, unknown> {
  selectMediaType(req.headers.accept); // 415 before any work
  const scopes = [...multi(req.query, Param.Scope), ...multi(req.query, Param.Selector)];
  if (scopes.length === 0) throw new RestError(400, 'scope', ChangeserverCode.MissingParameter);
  const limit = intParam(req.query, Param.Limit);
  if (limit !== undefined && limit > MAX_LIMIT) throw new RestError(400, `limit too high, exceeds max ${MAX_LIMIT}`, ChangeserverCode.ParameterInvalid);
  if (limit !== undefined && limit < 0) throw new RestError(400, Param.Limit, ChangeserverCode.ParameterInvalid);
  // Transicator answered a negative block at once, as block=0.
  const block = intParam(req.query, Param.Block);
  const wait = block === undefined ? null : Math.max(0, block);
  // 0.0.0 is "from the start" in Transicator, never too old: what is retained.
  const since = single(req.query, Param.Since);
  return { feed, scopes, since: since === undefined || since === ZERO_SEQUENCE ? null : since, limit: limit ?? null, snapshot: single(req.query, Param.Snapshot) ?? null, block: wait };
}

function changesResult(data: { changes: GqlChangeList }, req: RestRequest) {
  const type = selectMediaType(req.headers.accept);
  return type === MediaType.Protobuf
    ? { bytes: changeListProto(data.changes), contentType: MediaType.Protobuf }
    : { json: changeListJson(data.changes), contentType: MediaType.Json };
}

export interface ChangeserverRouteOptions {
  /** The feed `GET /changes` serves (CHANGESERVER_FEED); unset = 404 there. */
  feed?: string;
}

export function changeserverRoutes(opts: ChangeserverRouteOptions): RestRoute[] {
  return [
    defineRoute<{ changes: GqlChangeList }>({
      method: 'GET', path: '/changes', input: 'query', tags: ['changeserver'],
      summary: 'Changes of the configured feed (CHANGESERVER_FEED)',
      description: 'Transicator\'s GET /changes: scope (or selector, repeatable, OR), since (exclusive), limit, block (long poll, seconds), snapshot; JSON or protobuf.',
      params, responses,
      operation: CHANGES_QUERY,
      variables: (req) => {
        if (!opts.feed) throw new RestError(404, 'no feed is configured for /changes: set CHANGESERVER_FEED, or use /feeds/{name}/changes', ChangeserverCode.NotFound);
        return changesVariables(req, opts.feed);
      },
      result: changesResult,
    }),
    defineRoute<{ changes: GqlChangeList }>({
      method: 'GET', path: '/feeds/:name/changes', input: 'query', tags: ['changeserver'],
      summary: 'Changes of any feed (a job name, its feed name, or a connection-service environmentId)',
      params: [{ name: 'name', in: 'path', description: 'Feed name' }, ...params], responses,
      operation: CHANGES_QUERY,
      variables: (req) => changesVariables(req, req.params.name!),
      result: changesResult,
    }),
  ];
}
