/**
 * The pipeline domain: modules and the planned DAG stored in a pipeline
 * job's spec (FATE-Flow's words for its states: rest-compat/fate-flow/).
 *
 * A pipeline run is a job of type `pipeline` (job-model.ts state machine):
 *
 *   pending --submit--> running --every component complete--> complete
 *   running --a component failed (fatal, or out of attempts)--> failed
 *   running --timeout (job_parameters.common.timeout s)--> failed, reason "timeout"
 *   pending|running --stop--> canceled (every unfinished task: canceled)
 *
 * Tasks, one per component (name = component name), move
 * waiting -> queued -> running -> complete | failed | canceled.
 * Invariant: a component is enqueued only once every upstream component is
 * complete (component.processor.ts enqueues downstream components after
 * committing its own completion, so the last parent to finish always sees
 * all of them complete).
 */

export enum PipelineModule {
  Reader = 'Reader',
  Capture = 'Capture',
  Filter = 'Filter',
  Map = 'Map',
  Aggregate = 'Aggregate',
  Writer = 'Writer',
  /** The single component of a data upload job (FATE's upload_0). */
  Upload = 'Upload',
  /** The single component of a data download job (FATE's download_0). */
  Download = 'Download',
}

export enum PipelineKind { Dag = 'dag', Upload = 'upload', Download = 'download' }

/** One data input of a component: `input.data.<key>: ["<component>.<output>"]`. */
export interface ComponentInput { key: string; component: string; output: string }

export interface PlannedComponent {
  name: string;
  module: PipelineModule;
  inputs: ComponentInput[];
  upstream: string[];
  downstream: string[];
  outputs: string[];
  /** Merged: DSL `parameters`, runtime conf algorithm_parameters, component_parameters.common, .role.<role>.<idx>. */
  parameters: Record<string, unknown>;
}

/** FATE's dag dependency shape (dsl_parser.get_dependency). */
export interface DagDependency {
  component_list: string[];
  dependencies: Record<string, { component_name: string; type: string; up_output_info: [string, number] }[]>;
  component_module: Record<string, string>;
  component_need_run: Record<string, boolean>;
}

export interface PipelineSpecData {
  kind: PipelineKind;
  /** job_dsl and job_runtime_conf exactly as sent. */
  dsl: unknown;
  runtimeConf: unknown;
  /** Topological order. */
  components: PlannedComponent[];
  description: string;
  tag: string;
  role: string;
  partyId: string;
  roles: Record<string, unknown>;
  initiatorRole: string;
  initiatorPartyId: string;
  timeoutSeconds?: number;
  stageMaxRows: number;
  model?: { namespace: string; name: string; version: string };
}

/** A string at `path` in a runtime conf ('' when absent). */
export function confString(conf: Record<string, unknown>, path: string[]): string {
  let v: unknown = conf;
  for (const p of path) v = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[p] : undefined;
  return v === undefined || v === null ? '' : String(v);
}

/** The planned pipeline a pipeline job's spec carries. */
export function pipelineOf(job: { spec: unknown }): PipelineSpecData {
  return (job.spec as { pipeline: PipelineSpecData }).pipeline;
}

/** Every component below `name` (a Capture's fused operator chain runs them in its own task). */
export function componentsBelow(components: readonly PlannedComponent[], name: string): string[] {
  const byName = new Map(components.map((c) => [c.name, c]));
  const seen = new Set<string>();
  const walk = (n: string): void => {
    for (const d of byName.get(n)?.downstream ?? []) if (!seen.has(d)) { seen.add(d); walk(d); }
  };
  walk(name);
  return [...seen];
}

export const DEFAULT_STAGE_MAX_ROWS = 1_000_000;
export const MAX_STAGE_ROWS = 50_000_000;
export const SAMPLE_ROWS = 100;
