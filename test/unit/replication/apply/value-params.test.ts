/** Date and time values into each destination: the four-digit fast checks decide as the full patterns do. */
import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../../../../src/replication/change-event.ts';
import { toMysqlParam, toPgParam } from '../../../../src/replication/apply/value-params.ts';

const col = (kind: ColumnType['kind'], sourceType: string): ColumnType => ({ name: 'c', kind, sourceType, fsp: 6 });
const site = (kind: ColumnType['kind'], sourceType: string) => ({ table: 't', column: col(kind, sourceType) });
const outcome = (f: () => unknown): unknown => { try { return f(); } catch (err) { return `refused: ${(err as Error).message.split(': ').pop()}`; } };

describe('date and time values', () => {
  it('PostgreSQL: four-digit years pass as they are, zero parts are refused, other years and forms take the full check', () => {
    const date = site('date', 'date');
    expect(['2024-02-29', '0001-01-01', '9999-12-31', '12345-01-01', 'infinity', '-infinity', '0044-03-15 BC'].map((v) => toPgParam(v, date)))
      .toEqual(['2024-02-29', '0001-01-01', '9999-12-31', '12345-01-01', 'infinity', '-infinity', '0044-03-15 BC']);
    for (const v of ['0000-01-01', '2024-00-01', '2024-01-00', '00000-01-01', '2024-1-01', '2024-01-01x', ' 2024-01-01', '5874898-01-01']) {
      expect(outcome(() => toPgParam(v, date)), v).toMatch(/^refused/);
    }
    const dt = site('datetime', 'datetime(6)');
    expect(['2024-02-29 13:14:15', '2024-02-29T13:14:15.123456', '12345-02-29 13:14:15.1', 'infinity'].map((v) => toPgParam(v, dt)))
      .toEqual(['2024-02-29 13:14:15', '2024-02-29T13:14:15.123456', '12345-02-29 13:14:15.1', 'infinity']);
    for (const v of ['0000-00-00 00:00:00', '2024-00-10 00:00:00', '2024-01-00 00:00:00', '2024-01-01 00:00:00.1234567', '2024-01-01 00:00', '2024-01-01 00:00:00Z', '300000-01-01 00:00:00']) {
      expect(outcome(() => toPgParam(v, dt)), v).toMatch(/^refused/);
    }
    const tz = site('timestamptz', 'timestamp(6)');
    expect(['2024-02-29T13:14:15.123456Z', '2024-02-29T13:14:15Z', '12345-02-29T13:14:15Z'].map((v) => toPgParam(v, tz)))
      .toEqual(['2024-02-29T13:14:15.123456Z', '2024-02-29T13:14:15Z', '12345-02-29T13:14:15Z']);
    for (const v of ['0000-01-01T00:00:00Z', '2024-01-01 00:00:00Z', '2024-01-01T00:00:00', '2024-00-01T00:00:00Z']) {
      expect(outcome(() => toPgParam(v, tz)), v).toMatch(/^refused/);
    }
  });

  it('MariaDB: four-digit years only; T becomes a space; a UTC instant becomes its local text', () => {
    const caps = { fsp: true } as unknown as Parameters<typeof toMysqlParam>[2];
    expect(toMysqlParam('0000-00-00', site('date', 'date'), caps)).toBe('0000-00-00');
    expect(outcome(() => toMysqlParam('12345-01-01', site('date', 'date'), caps))).toMatch(/^refused/);
    expect(toMysqlParam('2024-02-29T13:14:15.5', site('datetime', 'datetime(6)'), caps)).toBe('2024-02-29 13:14:15.5');
    expect(outcome(() => toMysqlParam('12345-02-29 13:14:15', site('datetime', 'datetime(6)'), caps))).toMatch(/^refused/);
    expect(toMysqlParam('2024-02-29T13:14:15.5Z', site('timestamptz', 'timestamptz'), caps)).toBe('2024-02-29 13:14:15.5');
    expect(outcome(() => toMysqlParam('2024-02-29T13:14:15.5', site('timestamptz', 'timestamptz'), caps))).toMatch(/^refused/);
  });
});
