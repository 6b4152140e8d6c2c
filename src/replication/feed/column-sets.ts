/**
 * Column sets stored once per feed instead of once per change.
 *
 * Measured (bench/feed.bench.ts payload: a six-column table, update with
 * before and after): the `columns` array is 428 of the event's 941 JSON
 * bytes. Every change of a table carries the same array until its schema
 * changes, so the feed stores it in a hash keyed by a content hash and each
 * stream entry keeps only that id (field `c`). Content addressing makes a set
 * immutable: writers need only HSETNX, readers can cache forever, and a
 * schema change simply yields a new id (old entries keep theirs).
 *
 * Retention never trims the hash: it holds one small entry per table and
 * schema version, and destroy() deletes it with the feed.
 *
 * Readers get the SAME array object for every event of one column set:
 * treat `columns` as read-only.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ColumnType } from '../change-event.ts';

export interface EncodedColumnSet { id: string; json: string }

/** Cached column sets per feed instance; beyond this many the cache starts over. */
const MAX_CACHED = 1000;

export class ColumnSetCodec {
  /** Captures usually hand over the same array for every row of a table: hash it once. */
  private readonly encoded = new WeakMap<ColumnType[], EncodedColumnSet>();
  private readonly decoded = new Map<string, ColumnType[]>();

  constructor(private readonly key: string) {}

  encode(columns: ColumnType[]): EncodedColumnSet {
    let enc = this.encoded.get(columns);
    if (!enc) {
      const json = JSON.stringify(columns);
      enc = { id: createHash('sha1').update(json).digest('base64url').slice(0, 16), json };
      this.encoded.set(columns, enc);
    }
    return enc;
  }

  /** Column sets for `ids`, from the cache or one HMGET for the misses. */
  async resolve(redis: Redis, ids: Iterable<string>): Promise<Map<string, ColumnType[]>> {
    const out = new Map<string, ColumnType[]>();
    const missing: string[] = [];
    for (const id of ids) {
      const hit = this.decoded.get(id);
      if (hit) out.set(id, hit);
      else if (!missing.includes(id)) missing.push(id);
    }
    if (missing.length === 0) return out;
    const values = await redis.hmget(this.key, ...missing);
    if (this.decoded.size + missing.length > MAX_CACHED) this.decoded.clear();
    missing.forEach((id, i) => {
      const json = values[i];
      if (json == null) throw new Error(`column set ${id} missing from ${this.key}`);
      const cols = JSON.parse(json) as ColumnType[];
      this.decoded.set(id, cols);
      out.set(id, cols);
    });
    return out;
  }
}
