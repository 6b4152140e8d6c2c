/**
 * Versioned pipeline definitions ("models", FATE-Flow's /v1/model/*): load a
 * DSL and runtime conf (validated, not run) as a version, list versions, and
 * deploy one as a running pipeline job.
 */
import type { PipelineRepo, ModelRow } from '../store/pipeline.repo.ts';
import { AppError, ErrorCode, badInput } from '../errors.ts';
import type { Principal } from '../auth/roles.ts';
import { planDag } from '../domain/pipeline-dsl.ts';
import { transformSyntax } from '../replication/transform/parameter-syntax.ts';
import { PipelineKind, pipelineOf } from '../domain/pipeline-model.ts';
import { UniqueViolationError } from '../store/store-errors.ts';
import type { FateVocabulary } from './legacy-vocabulary.ts';
import { dataError } from './pipeline-errors.ts';
import type { PipelineService } from './pipeline.service.ts';
import type { PipelineTracking, PipelineView } from './pipeline-tracking.ts';

export class PipelineModelRegistry {
  constructor(
    private readonly repo: PipelineRepo,
    private readonly pipelines: PipelineService,
    private readonly tracking: PipelineTracking,
    /** FATE-Flow's job ids name unnamed versions (rest-compat/fate-flow/fate-flow.dialect.ts). */
    private readonly fate: FateVocabulary,
  ) {}

  /** Validate and store a version of a pipeline definition; from a job's DSL and conf when `jobId` is given. */
  async loadModel(input: { namespace: string; name?: string | null; version?: string | null; dsl?: unknown; runtimeConf?: unknown; jobId?: string | null; description?: string | null }): Promise<ModelRow> {
    if (!input.namespace) throw badInput('model.namespace is required', 'namespace');
    let dsl = input.dsl;
    let conf = input.runtimeConf;
    if (input.jobId && (dsl === undefined || dsl === null)) {
      const spec = pipelineOf(await this.tracking.get(input.jobId));
      if (spec.kind !== PipelineKind.Dag) throw dataError(`job ${input.jobId} is a data ${spec.kind} job, not a pipeline`);
      dsl = spec.dsl; conf = spec.runtimeConf;
    }
    if (dsl === undefined || dsl === null) throw badInput('model.dsl (or model.job_id) is required', 'dsl');
    planDag(dsl, conf ?? {}, transformSyntax);
    const name = input.name || input.namespace;
    const version = input.version || this.fate.newJobId();
    if (!/^[A-Za-z0-9_.#-]{1,128}$/.test(version)) throw badInput('model version must match [A-Za-z0-9_.#-]{1,128}', 'version');
    try {
      return await this.repo.addModel({ namespace: input.namespace, name, version, dsl, runtimeConf: conf ?? {}, description: input.description, sourceJob: input.jobId });
    } catch (err) {
      if (err instanceof UniqueViolationError) throw new AppError(ErrorCode.Conflict, `model ${input.namespace}/${name} version ${version} already exists`, { category: 'operating' });
      throw err;
    }
  }

  /** Deploy a stored version (latest when none is named) as a running pipeline job. */
  async onlineModel(input: { namespace: string; name?: string | null; version?: string | null }, principal?: Principal): Promise<{ model: ModelRow; job: PipelineView }> {
    if (!input.namespace) throw badInput('model.namespace is required', 'namespace');
    const model = await this.repo.model(input.namespace, input.name ?? undefined, input.version ?? undefined);
    if (!model) throw dataError(`no model ${input.namespace}${input.name ? `/${input.name}` : ''}${input.version ? ` version ${input.version}` : ''}`);
    const job = await this.pipelines.submit({ dsl: model.dsl, runtimeConf: model.runtime_conf }, principal, { namespace: model.namespace, name: model.name, version: model.version });
    return { model, job };
  }

  async modelVersions(namespace: string, name?: string | null): Promise<ModelRow[]> {
    if (!namespace) throw badInput('namespace is required', 'namespace');
    return this.repo.models(namespace, name ?? undefined);
  }
}
