/**
 * Validates a FATE-style job DSL and runtime conf and plans the DAG:
 *
 *   {components: {<name>: {module, input: {data: {data: ["<up>.<output>"]}}, output: {data: ["data"]}}}}
 *
 * Checks, each error naming its component: the DSL shape, known modules,
 * inputs that name existing components and outputs, the number of inputs a
 * module takes, module parameters (syntax only: columns are checked when
 * the component runs and sees its input), and no cycles. Parameters come
 * from the DSL's own `parameters`, then runtime conf `algorithm_parameters`
 * (DSL v1), `component_parameters.common` and
 * `component_parameters.role.<role>.<index|all>` (DSL v2), later ones winning.
 */
import { AppError, ErrorCode } from '../errors.ts';
import { PipelineModule, type ComponentInput, type DagDependency, type PlannedComponent } from './pipeline-model.ts';

/**
 * The syntax checks of the expression language (Filter `where`, Map
 * `compute`, Aggregate `aggregates`): the engine's parser, handed in so the
 * domain imports nothing of it (replication/transform/parameter-syntax.ts).
 * Each throws on a syntax error; its message is reported for the component.
 */
export interface ParameterSyntax {
  expression(source: string): void;
  aggregate(column: string, spec: string): void;
}

/** A DSL or runtime conf problem; `component` names the component when there is one. */
export function dslError(message: string, component?: string): AppError {
  return new AppError(ErrorCode.BadUserInput, component ? `component ${component}: ${message}` : message, { field: 'job_dsl', ...(component ? { component } : {}) });
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;
const MODULES = new Map(Object.values(PipelineModule).filter((m) => m !== PipelineModule.Upload && m !== PipelineModule.Download).map((m) => [m.toLowerCase(), m]));
const SOURCES = new Set([PipelineModule.Reader, PipelineModule.Capture]);

/** Where a Reader reads or a Writer writes: `{table: {name, namespace}}` or `{namespace, table_name|name}`. */
export interface TableParam { namespace: string; name: string }

export function tableParam(p: Record<string, unknown>, component: string): TableParam {
  const t = isObject(p.table) ? p.table : p;
  const namespace = t.namespace;
  const name = t.name ?? t.table_name ?? (typeof p.table === 'string' ? p.table : undefined);
  if (typeof namespace !== 'string' || !namespace) throw dslError('parameter table.namespace (a connection name or database) is required', component);
  if (typeof name !== 'string' || !name) throw dslError('parameter table.name is required', component);
  return { namespace, name };
}

function mergeParameters(name: string, dslParams: unknown, conf: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const add = (v: unknown) => { if (isObject(v)) Object.assign(out, v); };
  add(dslParams);
  add((conf.algorithm_parameters as Record<string, unknown> | undefined)?.[name]);
  const cp = isObject(conf.component_parameters) ? conf.component_parameters : {};
  add((cp.common as Record<string, unknown> | undefined)?.[name]);
  const role = isObject(cp.role) ? cp.role : {};
  const initiatorRole = isObject(conf.initiator) ? String(conf.initiator.role ?? '') : '';
  for (const [r, byIndex] of Object.entries(role)) {
    if (initiatorRole && r !== initiatorRole) continue;
    if (!isObject(byIndex)) continue;
    for (const idx of ['all', '0']) add((byIndex[idx] as Record<string, unknown> | undefined)?.[name]);
  }
  return out;
}

function checkParameters(c: PlannedComponent, syntax: ParameterSyntax): void {
  const p = c.parameters;
  try {
    switch (c.module) {
      case PipelineModule.Capture:
        tableParam(p, c.name);
        if (p.server_id !== undefined && !(Number.isInteger(Number(p.server_id)) && Number(p.server_id) >= 1 && Number(p.server_id) <= 0xffffffff)) throw dslError('server_id must be an integer from 1 to 4294967295', c.name);
        return;
      case PipelineModule.Reader:
      case PipelineModule.Writer:
        tableParam(p, c.name);
        if (p.rows_per_second !== undefined && !(Number.isFinite(Number(p.rows_per_second)) && Number(p.rows_per_second) >= 0)) throw dslError('rows_per_second must be a number >= 0', c.name);
        if (p.mode !== undefined && p.mode !== 'append' && p.mode !== 'replace') throw dslError('mode must be "append" or "replace"', c.name);
        return;
      case PipelineModule.Filter: {
        const where = p.where ?? p.condition ?? p.expression;
        if (typeof where !== 'string') throw dslError('parameter where (a row predicate, e.g. "amount > 10 and city = \'Paris\'") is required', c.name);
        syntax.expression(where);
        return;
      }
      case PipelineModule.Map: {
        if (p.select !== undefined && !(Array.isArray(p.select) && p.select.every((s) => typeof s === 'string'))) throw dslError('select must be a list of column names', c.name);
        if (p.rename !== undefined && !isObject(p.rename)) throw dslError('rename must be an object {old: new}', c.name);
        if (p.compute !== undefined && !isObject(p.compute)) throw dslError('compute must be an object {column: expression}', c.name);
        for (const e of Object.values((p.compute as Record<string, unknown>) ?? {})) syntax.expression(String(e));
        return;
      }
      case PipelineModule.Aggregate: {
        if (p.group_by !== undefined && !(Array.isArray(p.group_by) && p.group_by.every((s) => typeof s === 'string'))) throw dslError('group_by must be a list of column names', c.name);
        if (!isObject(p.aggregates) || !Object.keys(p.aggregates).length) throw dslError('parameter aggregates ({column: "count(*)" | "sum(col)" | ...}) is required', c.name);
        for (const [k, v] of Object.entries(p.aggregates)) syntax.aggregate(k, v as string);
        return;
      }
      default: return;
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw dslError((err as Error).message, c.name);
  }
}

/** Validate and plan; components come back in topological order. Throws AppError (BAD_USER_INPUT) naming the component. */
export function planDag(dsl: unknown, runtimeConf: unknown, syntax: ParameterSyntax): PlannedComponent[] {
  if (!isObject(dsl)) throw dslError('job_dsl must be an object');
  if (runtimeConf !== undefined && runtimeConf !== null && !isObject(runtimeConf)) throw new AppError(ErrorCode.BadUserInput, 'job_runtime_conf must be an object', { field: 'job_runtime_conf' });
  const conf = (runtimeConf ?? {}) as Record<string, unknown>;
  if (!isObject(dsl.components) || !Object.keys(dsl.components).length) throw dslError('job_dsl.components must be a non-empty object');
  const defs = dsl.components;
  const planned = new Map<string, PlannedComponent>();
  for (const [name, def] of Object.entries(defs)) {
    if (!NAME_RE.test(name)) throw dslError(`the name must match ${NAME_RE.source}`, name);
    if (!isObject(def)) throw dslError('must be an object with a module', name);
    if (typeof def.module !== 'string') throw dslError('module is required', name);
    const module = MODULES.get(def.module.toLowerCase());
    if (!module) throw dslError(`unknown module "${def.module}" (known: ${[...MODULES.values()].join(', ')})`, name);
    const output = def.output === undefined ? {} : def.output;
    if (!isObject(output)) throw dslError('output must be an object', name);
    const outData = output.data ?? ['data'];
    if (!Array.isArray(outData) || !outData.every((o) => typeof o === 'string' && o)) throw dslError('output.data must be a list of names', name);
    planned.set(name, { name, module, inputs: [], upstream: [], downstream: [], outputs: outData as string[], parameters: mergeParameters(name, def.parameters, conf) });
  }
  for (const [name, def] of Object.entries(defs) as [string, Record<string, unknown>][]) {
    const c = planned.get(name)!;
    const input = def.input ?? {};
    if (!isObject(input)) throw dslError('input must be an object', name);
    const data = input.data ?? {};
    if (!isObject(data)) throw dslError('input.data must be an object {key: ["component.output"]}', name);
    for (const [key, list] of Object.entries(data)) {
      if (!Array.isArray(list)) throw dslError(`input.data.${key} must be a list of "component.output"`, name);
      for (const ref of list) {
        if (typeof ref !== 'string' || !ref.includes('.')) throw dslError(`input "${String(ref)}" must read "component.output"`, name);
        const dot = ref.lastIndexOf('.');
        const up = ref.slice(0, dot);
        const out = ref.slice(dot + 1);
        const upc = planned.get(up);
        if (!upc) throw dslError(`input "${ref}" names unknown component "${up}"`, name);
        if (!upc.outputs.includes(out)) throw dslError(`input "${ref}": component ${up} has no output "${out}" (outputs: ${upc.outputs.join(', ')})`, name);
        const entry: ComponentInput = { key, component: up, output: out };
        c.inputs.push(entry);
        if (!c.upstream.includes(up)) c.upstream.push(up);
        if (!upc.downstream.includes(name)) upc.downstream.push(name);
      }
    }
  }
  const order = topoOrder(planned);
  for (const c of order) {
    if (SOURCES.has(c.module) && c.inputs.length) throw dslError(`module ${c.module} reads a table and takes no data input`, c.name);
    if (!SOURCES.has(c.module) && c.inputs.length !== 1) throw dslError(`module ${c.module} takes exactly one data input, got ${c.inputs.length}`, c.name);
  }
  for (const c of order) checkParameters(c, syntax);
  if (order.some((c) => c.module === PipelineModule.Capture)) checkStreaming(order);
  return order;
}

const STREAM_MODULES = new Set([PipelineModule.Capture, PipelineModule.Filter, PipelineModule.Map, PipelineModule.Writer]);

/** Whether the DAG streams (has a Capture): it then runs until stopped. */
export function isStreaming(components: PlannedComponent[]): boolean {
  return components.some((c) => c.module === PipelineModule.Capture);
}

/**
 * A DAG with a Capture streams changes: every component descends from a
 * Capture, takes changes row by row (Filter, Map) and ends in a Writer.
 * Aggregate (a finite input) and Reader branches cannot join a stream.
 */
function checkStreaming(order: PlannedComponent[]): void {
  const byName = new Map(order.map((c) => [c.name, c]));
  for (const c of order) {
    if (!STREAM_MODULES.has(c.module)) {
      throw dslError(`module ${c.module} cannot be part of a DAG with a Capture (a stream runs until stopped; it takes Capture, Filter, Map and Writer only)`, c.name);
    }
    let root = c;
    while (root.upstream.length) root = byName.get(root.upstream[0]!)!;
    if (root.module !== PipelineModule.Capture) throw dslError(`does not descend from a Capture, and a DAG with a Capture streams: every component must read the stream`, c.name);
    if (c.module !== PipelineModule.Writer && c.downstream.length === 0) throw dslError(`module ${c.module} ends a stream: every branch after a Capture ends in a Writer`, c.name);
  }
}

/** Kahn's algorithm; a cycle is reported with its path. */
function topoOrder(planned: Map<string, PlannedComponent>): PlannedComponent[] {
  const indegree = new Map([...planned.values()].map((c) => [c.name, c.upstream.length]));
  const ready = [...planned.keys()].filter((n) => indegree.get(n) === 0);
  const order: PlannedComponent[] = [];
  while (ready.length) {
    const n = ready.shift()!;
    order.push(planned.get(n)!);
    for (const d of planned.get(n)!.downstream) {
      indegree.set(d, indegree.get(d)! - 1);
      if (indegree.get(d) === 0) ready.push(d);
    }
  }
  if (order.length === planned.size) return order;
  // Walk upstream from any component left over until a name repeats: that is a cycle.
  const left = new Set([...planned.keys()].filter((n) => !order.some((c) => c.name === n)));
  let cur = [...left][0]!;
  const path: string[] = [];
  while (!path.includes(cur)) { path.push(cur); cur = planned.get(cur)!.upstream.find((u) => left.has(u))!; }
  const seg = path.slice(path.indexOf(cur)).reverse();
  const cycle = [...seg, seg[0]!];
  throw new AppError(ErrorCode.BadUserInput, `component ${cycle[0]}: the DAG has a cycle: ${cycle.join(' -> ')}`, { field: 'job_dsl', component: cycle[0], cycle });
}

/** FATE's dependency view of a planned DAG. */
export function dagDependency(components: PlannedComponent[], needRun: Record<string, boolean> = {}): DagDependency {
  const byName = new Map(components.map((c) => [c.name, c]));
  const dependencies: DagDependency['dependencies'] = {};
  for (const c of components) {
    if (!c.inputs.length) continue;
    dependencies[c.name] = c.inputs.map((i) => ({
      component_name: i.component,
      type: i.key === 'data' || i.key === 'train_data' ? i.key : 'validate_data',
      up_output_info: ['data', Math.max(0, byName.get(i.component)!.outputs.indexOf(i.output))],
    }));
  }
  return {
    component_list: components.map((c) => c.name),
    dependencies,
    component_module: Object.fromEntries(components.map((c) => [c.name, c.module])),
    component_need_run: Object.fromEntries(components.map((c) => [c.name, needRun[c.name] ?? true])),
  };
}
