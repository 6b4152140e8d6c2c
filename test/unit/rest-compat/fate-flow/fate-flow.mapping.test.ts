/** FATE-Flow's envelope, retcodes, request fields and f_-prefixed records. */
import { describe, expect, it } from 'vitest';
import { RestError } from '../../../../src/rest-compat/rest-route.ts';
import {
  RetCode, envelope, fateError, fateJob, fateTask, fields, filterOf, graphqlErrorResponse, modelInfo, objectField, ok, pipelineFateStatus, required,
  retcodeOf, rowValues, type GqlPipeline, type GqlTask,
} from '../../../../src/rest-compat/fate-flow/fate-flow.mapping.ts';
import { restRequest } from '../support.ts';

const pipeline = (p: Partial<GqlPipeline> = {}): GqlPipeline => ({
  id: 'u', jobId: '2024050612304512300001', name: 'etl', kind: 'dag', description: '', tag: '', role: 'local', partyId: '0', roles: { local: [0], guest: [9999, 10000] },
  initiatorRole: 'local', initiatorPartyId: '0', isInitiator: true, dsl: {}, runtimeConf: {}, runIp: 'w1', status: 'RUNNING', statusReason: null, error: null,
  currentSteps: ['reader_0'], currentTasks: ['t1'], progress: 50, createTime: 1, updateTime: 2, startTime: 1, endTime: null, elapsed: 1, ...p,
});

describe('envelope', () => {
  it('leaves absent parts out, as FATE\'s get_json_result did', () => {
    expect(envelope(RetCode.DataError, 'no table')).toEqual({ status: 200, json: { retcode: 102, retmsg: 'no table' } });
    expect(ok({ a: 1 }, { jobId: 'j1' })).toEqual({ status: 200, json: { retcode: 0, retmsg: 'success', data: { a: 1 }, jobId: 'j1' } });
    expect(ok(null).json).toEqual({ retcode: 0, retmsg: 'success' });
  });
  it('answers checks of its own with 200 and the retcode', () => {
    const e = fateError(RetCode.ArgumentError, 'bad');
    expect(e).toBeInstanceOf(RestError);
    expect([e.status, e.code, e.message]).toEqual([200, 101, 'bad']);
  });
});

describe('GraphQL errors', () => {
  it('take the retcode from the service\'s category first, then from the code', () => {
    expect(retcodeOf({ message: '', extensions: { code: 'BAD_USER_INPUT', category: 'data' } })).toBe(RetCode.DataError);
    expect(retcodeOf({ message: '', extensions: { code: 'CONFLICT', category: 'operating' } })).toBe(RetCode.OperatingError);
    expect(retcodeOf({ message: '', extensions: { code: 'BAD_USER_INPUT' } })).toBe(RetCode.ArgumentError);
    expect(retcodeOf({ message: '', extensions: { code: 'NOT_FOUND' } })).toBe(RetCode.DataError);
    expect(retcodeOf({ message: '', extensions: { code: 'INVALID_STATE' } })).toBe(RetCode.OperatingError);
    expect(retcodeOf({ message: '' })).toBe(RetCode.Exception);
  });
  it('keep 401/403 as HTTP statuses, everything else in a 200 envelope', () => {
    expect(graphqlErrorResponse([{ message: 'no token', extensions: { code: 'UNAUTHENTICATED' } }])).toEqual({ status: 401, json: { retcode: 100, retmsg: 'no token' } });
    expect(graphqlErrorResponse([{ message: 'job x not found', extensions: { code: 'NOT_FOUND' } }])).toEqual({ status: 200, json: { retcode: 102, retmsg: 'job x not found' } });
  });
});

describe('request fields', () => {
  it('accept FATE\'s f_ prefixes and name what is missing', () => {
    const req = restRequest({ input: { f_job_id: 'j1', role: 'guest' } });
    expect(fields(req)).toEqual({ job_id: 'j1', role: 'guest' });
    expect(() => required(req, 'job_id')).not.toThrow();
    expect(() => required(req, 'job_id', 'party_id', 'model')).toThrow('required parameters are missing: party_id, model');
  });
  it('turn /v1/job/query filters into PipelineFilterInput, dropping absent ones', () => {
    const req = restRequest({ input: { job_id: 'j1', party_id: 9999, is_initiator: '1', status: 'success', progress: '50', roles: { guest: [1] }, tag: '' } });
    expect(filterOf(req)).toEqual({ jobId: 'j1', partyId: '9999', isInitiator: true, status: 'success', progress: 50, roles: { guest: [1] } });
    expect(() => filterOf(restRequest({ input: { create_time: 'yesterday' } }))).toThrow('create_time must be a number');
  });
  it('read an object field sent as JSON text', () => {
    expect(objectField(restRequest({ input: { model: '{"namespace":"n"}' } }), 'model')).toEqual({ namespace: 'n' });
    expect(objectField(restRequest({ input: { model: 'plain' } }), 'model')).toBeUndefined();
  });
});

describe('records', () => {
  it('write a job with FATE\'s status, mapped from Tributary\'s status and reason', () => {
    const j = fateJob(pipeline({ status: 'FAILED', statusReason: 'timeout' }));
    expect(j).toMatchObject({ f_job_id: '2024050612304512300001', f_status: 'timeout', f_cancel_signal: false, f_progress: 50, f_current_steps: ['reader_0'] });
    expect(fateJob(pipeline({ status: 'CANCELED' }))).toMatchObject({ f_status: 'canceled', f_cancel_signal: true });
    expect(pipelineFateStatus({ status: 'PAUSED' })).toBe('waiting');
    expect(pipelineFateStatus({ status: 'COMPLETE' })).toBe('success');
  });
  it('write a task with FATE\'s task status and the job\'s initiator', () => {
    const t: GqlTask = {
      taskId: 't1', jobId: 'j1', name: 'reader_0', module: 'Reader', status: 'complete', upstream: [], outputs: ['data'], parameters: { table: { name: 'x' } },
      role: 'local', partyId: '0', runIp: 'w1', attempts: 1, error: null, progress: {}, createTime: 1, updateTime: 2, startTime: 1, endTime: 2, elapsed: 1,
    };
    expect(fateTask(t, pipeline({ initiatorRole: 'guest', initiatorPartyId: '9999' }))).toMatchObject({
      f_task_id: 't1', f_component_name: 'reader_0', f_status: 'success', f_party_status: 'success', f_initiator_role: 'guest', f_initiator_party_id: '9999',
      f_component_parameters: { module: 'Reader', ReaderParam: { table: { name: 'x' } } },
    });
    expect(fateTask({ ...t, status: 'stopped' })).toMatchObject({ f_status: 'canceled', f_initiator_role: 'local' });
  });
  it('derive model_info from the roles and the job id', () => {
    expect(modelInfo(pipeline())).toEqual({ model_id: 'guest-9999_10000#local-0#model', model_version: '2024050612304512300001' });
    expect(modelInfo(pipeline({ roles: null }))).toEqual({ model_id: 'local-0#model', model_version: '2024050612304512300001' });
  });
  it('lay a row out in header order', () => {
    expect(rowValues(['b', 'a', 'c'], { a: 1, b: 2 })).toEqual([2, 1, null]);
  });
});
