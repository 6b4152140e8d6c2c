/**
 * The parts of a feed piece both of its encodings share (feed-codec.ts, JSON;
 * feed-codec-wire.ts, binary): the transaction's fields, written once per
 * piece, and the table list each change refers to by position.
 */
import type { ChangeEvent, ColumnType, SourceKind } from '../change-event.ts';

export type TxFields = [txid: string, commitSequence: string, commitTime: number, source: SourceKind];
export type TableRef = [schema: string, table: string, key: string[], columnSet: string];
/** A change's transaction fields where they differ from its piece's (never from a capture; the codec does not assume it). */
export type TxOverride = Partial<Pick<ChangeEvent, 'txid' | 'commitSequence' | 'commitTime' | 'source'>>;

export function txFieldsOf(e: ChangeEvent): TxFields {
  return [e.txid, e.commitSequence, e.commitTime, e.source];
}

/** The transaction fields of `e` that differ from the piece's, or undefined. */
export function txOverride(e: ChangeEvent, x: TxFields): TxOverride | undefined {
  let tx: TxOverride | undefined;
  if (e.txid !== x[0]) (tx ??= {}).txid = e.txid;
  if (e.commitSequence !== x[1]) (tx ??= {}).commitSequence = e.commitSequence;
  if (e.commitTime !== x[2]) (tx ??= {}).commitTime = e.commitTime;
  if (e.source !== x[3]) (tx ??= {}).source = e.source;
  return tx;
}

/** A piece's table list as it is built: each change's table, columns and key, by position. */
export class PieceTables {
  readonly list: TableRef[] = [];
  private readonly index = new Map<string, number>();
  // Events of a table share their column and key arrays: the previous event's table entry is reused without a lookup.
  private lastColumns: ColumnType[] | undefined;
  private lastKey: string[] | undefined;
  private lastSchema = '';
  private lastTable = '';
  private lastT = -1;

  constructor(private readonly columnSetId: (columns: ColumnType[]) => string) {}

  /** The position of `e`'s table in the list, added if new. */
  of(e: ChangeEvent): number {
    if (e.columns === this.lastColumns && e.key === this.lastKey && e.schema === this.lastSchema && e.table === this.lastTable) return this.lastT;
    const cs = this.columnSetId(e.columns);
    const tk = `${e.schema}\u0000${e.table}\u0000${cs}\u0000${e.key.join('\u0000')}`;
    let t = this.index.get(tk);
    if (t === undefined) {
      t = this.list.length;
      this.list.push([e.schema, e.table, e.key, cs]);
      this.index.set(tk, t);
    }
    this.lastColumns = e.columns; this.lastKey = e.key; this.lastSchema = e.schema; this.lastTable = e.table; this.lastT = t;
    return t;
  }
}

/** A piece's tables with their columns resolved (column sets from the feed's hash). */
export function resolveTables(T: TableRef[], columns: Map<string, ColumnType[]>): { schema: string; table: string; key: string[]; cols: ColumnType[] }[] {
  return T.map(([schema, table, key, cs]) => {
    const cols = columns.get(cs);
    if (!cols) throw new Error(`column set ${cs} missing`);
    return { schema, table, key, cols };
  });
}
