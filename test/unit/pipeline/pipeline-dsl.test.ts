import { describe, expect, it } from 'vitest';
import { RowExpression } from '../../../src/replication/transform/expression.ts';
import { aggregateTransform, filterTransform, mapTransform } from '../../../src/replication/transform/row-transforms.ts';
import { dagDependency, planDag } from '../../../src/domain/pipeline-dsl.ts';
import { transformSyntax } from '../../../src/replication/transform/parameter-syntax.ts';
import { AppError } from '../../../src/errors.ts';

const cols = [{ name: 'id', kind: 'int', sourceType: 'int' }, { name: 'city', kind: 'text', sourceType: 'text' }, { name: 'amount', kind: 'decimal', sourceType: 'decimal(10,2)' }] as const;
const schema = { columns: [...cols] as any, key: ['id'] };
const rows = [{ id: 1, city: 'Paris', amount: '10.50' }, { id: 2, city: 'Oslo', amount: '200.00' }, { id: 3, city: 'Paris', amount: '300.25' }, { id: 4, city: null, amount: null }];

describe('row expressions', () => {
  it('evaluates SQL and JS spellings with SQL null semantics', () => {
    expect(rows.filter((r) => RowExpression.parse("amount > 100 and city = 'Paris'").test(r)).map((r) => r.id)).toEqual([3]);
    expect(rows.filter((r) => RowExpression.parse('city == "Oslo" || id >= 3').test(r)).map((r) => r.id)).toEqual([2, 3, 4]);
    expect(rows.filter((r) => RowExpression.parse('city != null').test(r)).map((r) => r.id)).toEqual([1, 2, 3]);
    expect(rows.filter((r) => RowExpression.parse("not (city in ['Paris'])").test(r)).map((r) => r.id)).toEqual([2]);
    expect(RowExpression.parse("upper(city) + '-' + string(id)").evaluate(rows[0]!)).toBe('PARIS-1');
    expect(RowExpression.parse("city like 'P%'").test(rows[2]!)).toBe(true);
  });
  it('refuses anything outside the language', () => {
    for (const bad of ['constructor.constructor("x")()', 'a = 1; b', 'process.exit()', 'eval("1")', 'x => 1', '`id`.length']) {
      expect(() => RowExpression.parse(bad), bad).toThrow();
    }
    expect(() => RowExpression.parse('nope > 1', ['id'])).toThrow(/unknown column "nope"/);
  });
});

describe('transforms', () => {
  it('filter, map and aggregate', () => {
    const f = filterTransform(schema, { where: 'amount > 100' });
    expect(f.push(rows).map((r) => r.id)).toEqual([2, 3]);
    const m = mapTransform(schema, { select: ['id', 'city'], rename: { city: 'town' }, compute: { double: 'id * 2' } });
    expect(m.push(rows.slice(0, 1))).toEqual([{ id: 1, town: 'Paris', double: 2 }]);
    expect(m.finish().schema.columns.map((c) => `${c.name}:${c.kind}`)).toEqual(['id:int', 'town:text', 'double:int']);
    expect(m.finish().schema.key).toEqual(['id']);
    const a = aggregateTransform(schema, { group_by: ['city'], aggregates: { n: 'count(*)', total: 'sum(amount)', top: 'max(amount)', ids: 'sum(id)' } });
    a.push(rows);
    const out = a.finish();
    expect(out.rows.find((r) => r.city === 'Paris')).toEqual({ city: 'Paris', n: 2, total: '310.75', top: '300.25', ids: '4' });
    expect(out.rows.find((r) => r.city === null)).toEqual({ city: null, n: 1, total: null, top: null, ids: '4' });
  });
});

describe('DSL validation', () => {
  const conf = { initiator: { role: 'local', party_id: 0 }, component_parameters: { common: { r: { table: { namespace: 'ns', name: 't' } }, f: { where: 'id > 1' }, w: { table: { namespace: 'ns2', name: 'out' } } } } };
  const ok = { components: { r: { module: 'Reader', output: { data: ['data'] } }, f: { module: 'Filter', input: { data: { data: ['r.data'] } } }, w: { module: 'Writer', input: { data: { data: ['f.data'] } } } } };
  const err = (dsl: unknown, c: unknown = conf) => { try { planDag(dsl, c, transformSyntax); } catch (e) { expect(e).toBeInstanceOf(AppError); return (e as Error).message; } return 'no error'; };
  it('plans in topological order with FATE dependency', () => {
    const plan = planDag(ok, conf, transformSyntax);
    expect(plan.map((c) => c.name)).toEqual(['r', 'f', 'w']);
    expect(plan[1]!.parameters).toEqual({ where: 'id > 1' });
    expect(dagDependency(plan).dependencies.w).toEqual([{ component_name: 'f', type: 'data', up_output_info: ['data', 0] }]);
  });
  it('names the component in every error', () => {
    expect(err({ components: { ...ok.components, r: { module: 'Reader', input: { data: { data: ['w.data'] } } } } })).toMatch(/cycle: .*r.*/);
    expect(err({ components: { ...ok.components, f: { module: 'Filter', input: { data: { data: ['x.data'] } } } } })).toMatch(/component f: .*unknown component "x"/);
    expect(err({ components: { ...ok.components, f: { module: 'Sorter', input: { data: { data: ['r.data'] } } } } })).toMatch(/component f: unknown module "Sorter"/);
    expect(err({ components: { ...ok.components, f: { module: 'Filter', input: { data: { data: ['r.model'] } } } } })).toMatch(/component f: .*no output "model"/);
    expect(err(ok, { component_parameters: { common: { ...conf.component_parameters.common, f: { where: 'id >>> 2' } } } })).toMatch(/component f: operator ">>>"/);
    expect(err({ components: { a: { module: 'Filter', input: { data: { data: ['b.data'] } } }, b: { module: 'Map', input: { data: { data: ['a.data'] } } } } })).toMatch(/component (a|b): the DAG has a cycle: (a -> b -> a|b -> a -> b)/);
  });
});

describe('Capture (streaming DAGs)', () => {
  const t = (ns: string, name: string) => ({ table: { namespace: ns, name } });
  const conf = (p: Record<string, unknown>) => ({ component_parameters: { common: p } });
  const dsl = (mid: string) => ({
    components: {
      c: { module: 'Capture' },
      m: { module: mid, input: { data: { data: ['c.data'] } } },
      w: { module: 'Writer', input: { data: { data: ['m.data'] } } },
    },
  });
  it('accepts Capture -> Filter/Map -> Writer', () => {
    const planned = planDag(dsl('Filter'), conf({ c: t('src', 'orders'), m: { where: 'amount > 1' }, w: t('dst', 'out') }), transformSyntax);
    expect(planned.map((x) => x.module)).toEqual(['Capture', 'Filter', 'Writer']);
  });
  it('refuses an Aggregate, a Reader branch, or a branch not ending in a Writer, naming the component', () => {
    const err = (f: () => unknown) => { try { f(); } catch (e) { return (e as AppError).message; } return ''; };
    expect(err(() => planDag(dsl('Aggregate'), conf({ c: t('src', 'orders'), m: { aggregates: { n: 'count(*)' } }, w: t('dst', 'out') }), transformSyntax))).toMatch(/^component m: module Aggregate cannot be part of a DAG with a Capture/);
    const mixed = { components: { c: { module: 'Capture' }, r: { module: 'Reader' }, w: { module: 'Writer', input: { data: { data: ['r.data'] } } }, w2: { module: 'Writer', input: { data: { data: ['c.data'] } } } } };
    expect(err(() => planDag(mixed, conf({ c: t('s', 'a'), r: t('s', 'b'), w: t('d', 'x'), w2: t('d', 'y') }), transformSyntax))).toMatch(/^component r: module Reader cannot be part/);
    const open = { components: { c: { module: 'Capture' }, f: { module: 'Filter', input: { data: { data: ['c.data'] } } } } };
    expect(err(() => planDag(open, conf({ c: t('s', 'a'), f: { where: 'x > 1' } }), transformSyntax))).toMatch(/^component f: module Filter ends a stream/);
    expect(err(() => planDag(dsl('Filter'), conf({ c: {}, m: { where: 'x > 1' }, w: t('d', 'x') }), transformSyntax))).toMatch(/^component c: parameter table.namespace/);
  });
});
