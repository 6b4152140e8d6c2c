/**
 * A feed read's stream entries turned into change events: pieces (field `b`,
 * feed-codec.ts), single changes (field `e`, feeds written before pieces),
 * and entries this process appended, taken from memory (local-echo.ts).
 */
import type { ChangeEvent, ColumnType } from '../change-event.ts';
import { markCommitEstimate } from '../commit-clock.ts';
import { toStreamId } from '../sequence.ts';
import { echoedEvents, type StreamEntry } from './echo-reads.ts';
import { decodePiece, parsePiece, pieceColumnSets } from './feed-codec.ts';
import { compareStreamIds } from './feed-keys.ts';

/** Entries -> events: pieces (field `b`) and single changes (field `e`, feeds written before pieces). */
export async function decodeEntries(feed: string, entries: StreamEntry[], sinceId: string | null, resolve: (ids: Set<string>) => Promise<Map<string, ColumnType[]>>): Promise<ChangeEvent[]> {
  const parsed = entries.map(([id, fields]) => {
    const local = echoedEvents(fields);
    if (local) return { local, first: local.first };
    let e: string | undefined;
    let b: string | Buffer | undefined;
    let c: string | undefined;
    let f: string | undefined;
    let r: string | undefined;
    // Only a piece (`b`) may be bytes (echo-reads.ts entriesOf); the other fields are text.
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i];
      if (name === 'b') b = fields[i + 1];
      else if (name === 'e') e = String(fields[i + 1]);
      else if (name === 'c') c = String(fields[i + 1]);
      else if (name === 'f') f = String(fields[i + 1]);
      else if (name === 'r') r = String(fields[i + 1]);
    }
    if (b !== undefined) return { piece: parsePiece(b), first: f ?? id, estimate: r === undefined ? undefined : Number(r) };
    if (e === undefined) throw new Error(`feed ${feed}: entry ${id} without an "e" or "b" field`);
    return { e, c };
  });
  const ids = new Set<string>();
  for (const r of parsed) {
    if (r.local) continue;
    if (r.piece) for (const id of pieceColumnSets(r.piece)) ids.add(id);
    else if (r.c !== undefined) ids.add(r.c);
  }
  const sets = ids.size > 0 ? await resolve(ids) : new Map<string, ColumnType[]>();
  const out: ChangeEvent[] = [];
  for (const r of parsed) {
    if (r.local) {
      // Same rule as for a decoded piece: only one that begins at or below `since` holds changes already seen.
      if (sinceId !== null && compareStreamIds(r.first, sinceId) <= 0) {
        for (const e of r.local.events) if (compareStreamIds(toStreamId(e.sequence), sinceId) > 0) out.push(e);
      } else {
        for (const e of r.local.events) out.push(e);
      }
    } else if (r.piece) {
      // Only a piece that begins at or below `since` holds changes the reader has seen.
      const keep = sinceId !== null && compareStreamIds(r.first, sinceId) <= 0
        ? (seq: string) => compareStreamIds(toStreamId(seq), sinceId) > 0
        : undefined;
      const from = out.length;
      decodePiece(r.piece, sets, out, keep);
      if (r.estimate !== undefined) markCommitEstimate(out, r.estimate, from);
    } else {
      const event = JSON.parse(r.e) as ChangeEvent;
      if (r.c !== undefined) event.columns = sets.get(r.c)!;
      out.push(event);
    }
  }
  return out;
}
