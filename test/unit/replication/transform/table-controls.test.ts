/** Column and row controls: shapes, images, and how the row filter turns changes into inserts and deletes. */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Operation, type ChangeEvent, type ColumnType } from '../../../../src/replication/change-event.ts';
import { ControlError, ControlProblem, JobControls, MASK_TEXT, TableControl, hashValue } from '../../../../src/replication/transform/table-controls.ts';

const COLS: ColumnType[] = [
  { name: 'id', kind: 'int', sourceType: 'integer', pgOid: 23 },
  { name: 'email', kind: 'text', sourceType: 'character varying(100)', length: 100, pgOid: 1043 },
  { name: 'ssn', kind: 'text', sourceType: 'text', pgOid: 25 },
  { name: 'secret', kind: 'text', sourceType: 'text', pgOid: 25 },
  { name: 'amount', kind: 'decimal', sourceType: 'numeric(12,2)', precision: 12, scale: 2, pgOid: 1700 },
  { name: 'region', kind: 'text', sourceType: 'text', pgOid: 25 },
];
const TABLE = { schema: 'public', table: 'accounts', columns: COLS, key: ['id'] };
const SPEC = { columns: { exclude: ['secret'], mask: ['ssn'], hash: ['email'] }, where: "region = 'eu' AND amount >= 10" };
const SALT = 'pepper';
const control = () => TableControl.compile(SPEC, TABLE, { salt: SALT, dialect: 'postgres', strict: true });

const row = (id: number, region: string, amount: string) => ({ id, email: `u${id}@x`, ssn: 's', secret: 'pw', amount, region });
function event(op: Operation, before: Record<string, unknown> | null, after: Record<string, unknown> | null, beforeKeyOnly = false): ChangeEvent {
  return {
    source: 'postgres', sequence: '1.1.0', txid: '1', commitSequence: '1', index: 0, op, schema: 'public', table: 'accounts', key: ['id'],
    before: before as never, after: after as never, columns: COLS, commitTime: 0, beforeKeyOnly,
  };
}

describe('TableControl', () => {
  it('shapes the columns: excluded gone, hashed char(64), masked varchar(4), the rest as they were', () => {
    const cols = control().shapeColumns(COLS);
    expect(cols.map((c) => c.name)).toEqual(['id', 'email', 'ssn', 'amount', 'region']);
    expect(cols[1]).toMatchObject({ kind: 'text', length: 64, fixed: true, sourceType: 'character(64)' });
    expect(cols[2]).toMatchObject({ kind: 'text', length: 4, fixed: false, sourceType: 'character varying(4)' });
    expect(cols[3]).toBe(COLS[4]);
  });

  it('applies the column controls to an image: HMAC-SHA256 hex with the salt, the mask, NULL kept', () => {
    const out = control().row({ ...row(1, 'eu', '12.00'), ssn: null });
    expect(out).toEqual({ id: 1, email: createHmac('sha256', SALT).update('u1@x').digest('hex'), ssn: null, amount: '12.00', region: 'eu' });
    expect(control().row(row(1, 'eu', '1'))).toMatchObject({ ssn: MASK_TEXT });
    expect(hashValue(SALT, 7)).toBe(createHmac('sha256', SALT).update('7').digest('hex'));
    expect(hashValue(SALT, null)).toBeNull();
    // One value, one hash, whichever representation the snapshot or the stream (or the other engine) gave it.
    expect(hashValue(SALT, '12.50', 'decimal')).toBe(hashValue(SALT, '12.5', 'decimal'));
    expect(hashValue(SALT, '{"b":1, "a":2}', 'json')).toBe(hashValue(SALT, '{"a":2,"b":1}', 'json'));
    expect(hashValue(SALT, '2024-01-02T03:04:05.120000Z', 'timestamptz')).toBe(hashValue(SALT, '2024-01-02 03:04:05.12', 'timestamptz'));
    expect(hashValue(SALT, true, 'bool')).toBe(hashValue(SALT, 1, 'bool'));
  });

  it('turns updates across the filter into inserts and deletes, and drops what stays outside', () => {
    const c = control();
    const op = (e: ChangeEvent) => c.change(e)?.op;
    expect(op(event(Operation.Insert, null, row(1, 'eu', '12')))).toBe(Operation.Insert);
    expect(op(event(Operation.Insert, null, row(1, 'us', '12')))).toBeUndefined();
    expect(op(event(Operation.Update, row(1, 'eu', '12'), row(1, 'eu', '13')))).toBe(Operation.Update);
    const moveIn = c.change(event(Operation.Update, row(1, 'us', '12'), row(1, 'eu', '12')))!;
    expect(moveIn.op).toBe(Operation.Insert);
    expect(moveIn.before).toBeNull();
    const moveOut = c.change(event(Operation.Update, row(1, 'eu', '12'), row(1, 'eu', '9')))!;
    expect(moveOut.op).toBe(Operation.Delete);
    expect(moveOut.after).toBeNull();
    expect(moveOut.before).not.toHaveProperty('secret');
    expect(op(event(Operation.Update, row(1, 'us', '12'), row(1, 'us', '13')))).toBeUndefined();
    expect(op(event(Operation.Delete, row(1, 'us', '12'), null))).toBeUndefined();
    expect(op(event(Operation.Delete, row(1, 'eu', '12'), null))).toBe(Operation.Delete);
  });

  it('without an old image (no REPLICA IDENTITY FULL) an update into the filter upserts and one out of it deletes by key', () => {
    const c = control();
    expect(c.change(event(Operation.Update, null, row(1, 'eu', '12')))!.op).toBe(Operation.Update);
    const out = c.change(event(Operation.Update, null, row(1, 'us', '12')))!;
    expect(out).toMatchObject({ op: Operation.Delete, before: { id: 1 }, after: null, beforeKeyOnly: true });
    expect(c.change(event(Operation.Delete, { id: 1 }, null, true))!.op).toBe(Operation.Delete);
  });

  it('a partial image without a WHERE column cannot be judged and is kept', () => {
    const { region: _r, ...partial } = row(1, 'eu', '12');
    expect(control().passes(partial)).toBeUndefined();
    expect(control().change(event(Operation.Update, null, partial))!.op).toBe(Operation.Update);
  });

  it('stops the stream when a controlled column is renamed at the source (it would flow unprotected)', () => {
    const renamedCols = COLS.map((c) => (c.name === 'ssn' ? { ...c, name: 'tax_id' } : c));
    const jc = new JobControls({ schemas: [{ schema: 'public', tables: ['accounts'], ...SPEC }] }, { salt: SALT, dialect: 'postgres' });
    const ddl = (stmt: string, cols: ColumnType[]) => ({ ...event(Operation.Ddl, null, null), ddl: stmt, columns: cols });
    expect(() => jc.change(ddl('ALTER TABLE "public"."accounts" RENAME COLUMN "ssn" TO "tax_id"', renamedCols)))
      .toThrow(expect.objectContaining({ name: 'ControlError', problem: ControlProblem.Renamed }));
    // Other DDL goes through, shaped.
    const added = jc.change(ddl('ALTER TABLE "public"."accounts" ADD COLUMN "z" integer', [...COLS, { name: 'z', kind: 'int', sourceType: 'integer', pgOid: 23 }]))!;
    expect(added.columns.map((c) => c.name)).toEqual(['id', 'email', 'ssn', 'amount', 'region', 'z']);
  });

  it('refuses controls that do not fit the table', () => {
    const problem = (spec: Record<string, unknown>, opts: Record<string, unknown> = {}) => {
      try { TableControl.compile(spec, TABLE, { salt: SALT, dialect: 'postgres', strict: true, ...opts }); } catch (err) {
        expect(err).toBeInstanceOf(ControlError);
        return (err as ControlError).problem;
      }
      return 'none';
    };
    expect(problem({ columns: { exclude: ['nope'] } })).toBe(ControlProblem.UnknownColumn);
    expect(problem({ columns: { exclude: ['id'] } })).toBe(ControlProblem.KeyColumn);
    expect(problem({ columns: { hash: ['id'] } })).toBe('none');
    expect(problem({ columns: { mask: ['ssn'], hash: ['ssn'] } })).toBe(ControlProblem.Conflict);
    expect(problem({ columns: { hash: ['email'] } }, { salt: undefined })).toBe(ControlProblem.NoSalt);
    expect(problem({ where: 'amount >' })).toBe(ControlProblem.Where);
    expect(problem({ where: "region LIKE 'e%'" })).toBe(ControlProblem.Where);
    expect(problem({ where: 'nope = 1' })).toBe(ControlProblem.UnknownColumn);
    expect(problem({ where: '1 = 1; DELETE FROM accounts' })).toBe(ControlProblem.Where);
    // Running (not strict): a named column the table no longer has is ignored.
    expect(problem({ columns: { exclude: ['gone'] } }, { strict: false })).toBe('none');
  });
});

describe('JobControls', () => {
  it('finds a table\'s controls by its selection and leaves other tables alone', () => {
    const jc = new JobControls({ schemas: [{ schema: 'public', tables: ['accounts'], ...SPEC }, { schema: 'public', tables: ['other'] }] }, { salt: SALT, dialect: 'postgres' });
    expect(jc.forTable(TABLE)).toBeDefined();
    expect(jc.forTable({ ...TABLE, table: 'other' })).toBeUndefined();
    const e = { ...event(Operation.Insert, null, row(1, 'eu', '12')), table: 'other' };
    expect(jc.change(e)).toBe(e);
    const tx = jc.transaction({ txid: '1', commitSequence: '1', commitTime: 0, resume: { kind: 'postgres', lsn: '0/1' }, events: [event(Operation.Insert, null, row(1, 'us', '1')), event(Operation.Insert, null, row(2, 'eu', '20'))] });
    expect(tx.events.map((x) => x.after!.id)).toEqual([2]);
  });
});
