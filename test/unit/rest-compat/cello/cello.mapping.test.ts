/** Cello v2: the {code,data,error,status} envelope, its quirky parameters, and cluster objects. */
import { describe, expect, it } from 'vitest';
import { RestError } from '../../../../src/rest-compat/rest-route.ts';
import {
  CelloCode, appliedCluster, bool, celloCluster, clusterRef, fail, graphqlFail, int, ok, params, str, strOrEmpty, unquirkQuery, type GqlCluster,
} from '../../../../src/rest-compat/cello/cello.mapping.ts';
import { restRequest } from '../support.ts';

const cluster: GqlCluster = {
  id: 'c1', name: 'a', size: 4, consensusPlugin: 'solo', consensusMode: '', status: 'RUNNING', health: 'OK', userId: null, applyTs: null, releaseTs: null,
  releaseStatus: 'NONE', releaseProgress: 0, releaseMessage: '', queue: 'tasks-cluster-a', apiUrl: 'http://gw:8190', daemonUrl: 'redis://r:6379/0', workers: ['w1'], createdAt: '2024-01-01T00:00:00.000Z',
};

describe('envelope', () => {
  it('answers success with code 200 and failures with HTTP 400, the reason in code (500 stays 500)', () => {
    expect(ok({ x: 1 })).toEqual({ status: 200, json: { code: 200, data: { x: 1 }, error: '', status: 'OK' } });
    expect(fail('Invalid cluster_size')).toEqual({ status: 400, json: { code: 400, data: '', error: 'Invalid cluster_size', status: 'FAIL' } });
    expect(fail('nope', CelloCode.Forbidden).status).toBe(400);
    expect(fail('boom', CelloCode.Internal).status).toBe(500);
  });
  it('words GraphQL errors as Cello did: an unknown cluster names the id it was asked for', () => {
    const req = restRequest({ params: { id: 'c9' } });
    expect(graphqlFail([{ message: 'cluster c9 not found', extensions: { code: 'NOT_FOUND' } }], req).json).toEqual({ code: 404, data: '', error: 'cluster not found with id=c9', status: 'FAIL' });
    expect(graphqlFail([{ message: 'a', extensions: { code: 'CONFLICT' } }, { message: 'b' }], req).json).toMatchObject({ code: 400, error: 'a; b' });
    expect(graphqlFail([{ message: 'stack', extensions: { code: 'INTERNAL_SERVER_ERROR' } }], req)).toMatchObject({ status: 500, json: { error: 'internal error' } });
  });
});

describe('parameters', () => {
  it('splits the documented ?action=apply?user_id=x quirk, explicit parameters winning', () => {
    expect(unquirkQuery({ action: 'apply?user_id=bob?size=2' })).toEqual({ action: 'apply', user_id: 'bob', size: '2' });
    expect(unquirkQuery({ action: 'apply?user_id=bob', user_id: 'eve' })).toEqual({ action: 'apply', user_id: 'eve' });
    expect(unquirkQuery({ q: 'what?' })).toEqual({ q: 'what?' });
  });
  it('reads the query string over the body, first of repeated form values', () => {
    const req = restRequest({ query: { user_id: 'q' }, body: { user_id: 'b', size: ['3', '4'] } });
    expect(params(req)).toEqual({ user_id: 'q', size: '3' });
  });
  it('types values as Cello did, with its messages', () => {
    const req = restRequest({ body: { size: '3', zero: '0', n: 7, user: '', flag: 'False', yes: 'True', odd: 'maybe' } });
    expect(int(req, 'size', 'Invalid cluster_size')).toBe(3);
    expect(() => int(req, 'zero', 'Invalid cluster_size')).toThrow(new RestError(400, 'Invalid cluster_size'));
    expect(str(req, 'n')).toBe('7');
    expect(str(req, 'user')).toBeUndefined();
    expect(strOrEmpty(req, 'user')).toBe('');
    expect(bool(req, 'flag', 'Invalid allow_multiple')).toBe(false);
    expect(bool(req, 'yes', 'Invalid allow_multiple')).toBe(true);
    expect(bool(req, 'absent', 'Invalid allow_multiple')).toBe(false);
    expect(() => bool(req, 'odd', 'Invalid allow_multiple')).toThrow('Invalid allow_multiple');
  });
  it('names the cluster from the path, else cluster_id', () => {
    expect(clusterRef(restRequest({ params: { id: 'p' }, query: { cluster_id: 'q' } }))).toBe('p');
    expect(clusterRef(restRequest({ query: { cluster_id: 'q' } }))).toBe('q');
    expect(clusterRef(restRequest())).toBeUndefined();
  });
});

describe('clusters', () => {
  it('answers apply with the document\'s keys, an unheld cluster\'s user_id empty', () => {
    expect(appliedCluster(cluster)).toEqual({ api_url: 'http://gw:8190', consensus_mode: '', consensus_plugin: 'solo', daemon_url: 'redis://r:6379/0', id: 'c1', name: 'a', size: 4, user_id: '' });
  });
  it('shows a cluster in Cello\'s snake_case, lower-case states and empty strings for unset times', () => {
    expect(celloCluster({ ...cluster, status: 'STOPPED', health: '', userId: 'bob', applyTs: '2024-01-02T00:00:00.000Z' })).toMatchObject({
      status: 'stopped', health: '', user_id: 'bob', apply_ts: '2024-01-02T00:00:00.000Z', release_ts: '', release_status: 'none', worker_api: 'redis://r:6379/0', workers: ['w1'],
    });
  });
});
