/** componentsBelow: what a Capture's task runs fused (and cancels with itself); pgPartitionName: partition names within 63 bytes. */
import { describe, expect, it } from 'vitest';
import { componentsBelow, PipelineModule, type PlannedComponent } from '../../../src/domain/pipeline-model.ts';
import { pgPartitionName } from '../../../src/replication/tables/table-io.ts';

const c = (name: string, downstream: string[]): PlannedComponent => ({ name, module: PipelineModule.Filter, inputs: [], upstream: [], downstream, outputs: ['data'], parameters: {} });

describe('componentsBelow', () => {
  it('walks every branch once, diamonds included, and nothing above or beside', () => {
    const dag = [c('cap', ['f', 'm']), c('f', ['w1', 'j']), c('m', ['j']), c('j', ['w2']), c('w1', []), c('w2', []), c('other', ['w3']), c('w3', [])];
    expect(componentsBelow(dag, 'cap').sort()).toEqual(['f', 'j', 'm', 'w1', 'w2']);
    expect(componentsBelow(dag, 'j')).toEqual(['w2']);
    expect(componentsBelow(dag, 'w1')).toEqual([]);
    expect(componentsBelow(dag, 'nope')).toEqual([]);
  });
});

describe('pgPartitionName', () => {
  it('is <table>_p<i> when that fits PostgreSQL\'s 63 bytes', () => {
    expect(pgPartitionName('users', 0)).toBe('users_p0');
    expect(pgPartitionName('a'.repeat(57), 1023)).toBe(`${'a'.repeat(57)}_p1023`);
  });
  it('cuts a long name and tells such names apart by a hash, within 63 bytes', () => {
    const a = pgPartitionName(`${'t'.repeat(60)}_a`, 1023);
    const b = pgPartitionName(`${'t'.repeat(60)}_b`, 1023);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^t+_[0-9a-f]{8}_p1023$/);
    expect(new Set(Array.from({ length: 1024 }, (_, i) => pgPartitionName('x'.repeat(63), i))).size).toBe(1024);
  });
});
