/**
 * Relay-style cursor pagination shared by every list field: `first`/`after`
 * and `last`/`before`, edges with opaque cursors, and PageInfo.
 */
import { ArgsType, ClassType, Field, Int, ObjectType } from 'type-graphql';
import { badInput } from '../errors.ts';

@ObjectType()
export class PageInfo {
  @Field(() => Boolean) hasNextPage!: boolean;
  @Field(() => Boolean) hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true }) startCursor!: string | null;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

@ArgsType()
export class PageArgs {
  @Field(() => Int, { nullable: true, description: 'Items after `after` (max 1000, default 50).' }) first?: number;
  @Field(() => String, { nullable: true }) after?: string;
  @Field(() => Int, { nullable: true, description: 'Items before `before` (max 1000).' }) last?: number;
  @Field(() => String, { nullable: true }) before?: string;
}

export interface Edge<T> { node: T; cursor: string }
export interface Page<T> { edges: Edge<T>[]; pageInfo: PageInfo; totalCount: number }

export function Connection<T extends object>(nodeType: ClassType<T>, name: string) {
  @ObjectType(`${name}Edge`)
  class EdgeClass {
    @Field(() => nodeType) node!: T;
    @Field(() => String) cursor!: string;
  }
  @ObjectType()
  abstract class ConnectionClass {
    @Field(() => [EdgeClass]) edges!: EdgeClass[];
    @Field(() => PageInfo) pageInfo!: PageInfo;
    @Field(() => Int) totalCount!: number;
  }
  return ConnectionClass;
}

export const encodeCursor = (offset: number) => Buffer.from(`o:${offset}`).toString('base64url');
export function decodeCursor(cursor: string): number {
  const s = Buffer.from(cursor, 'base64url').toString();
  const m = /^o:(\d+)$/.exec(s);
  if (!m) throw badInput(`invalid cursor "${cursor}"`, 'cursor');
  return Number(m[1]);
}

const MAX_PAGE = 1000;

/** Offset window for a page request over `total` items: [start, end). */
export function pageWindow(args: PageArgs, total: number): { start: number; end: number } {
  for (const k of ['first', 'last'] as const) {
    const v = args[k];
    if (v !== undefined && v !== null && (v < 0 || v > MAX_PAGE)) throw badInput(`${k} must be between 0 and ${MAX_PAGE}`, k);
  }
  let start = args.after ? decodeCursor(args.after) + 1 : 0;
  let end = args.before ? Math.min(decodeCursor(args.before), total) : total;
  start = Math.min(start, end);
  if (args.first != null) end = Math.min(end, start + args.first);
  else if (args.last != null) start = Math.max(start, end - args.last);
  else end = Math.min(end, start + 50);
  return { start, end };
}

/** Build a page from the slice of items at offsets [start, end) of `total`. */
export function toPage<T>(items: T[], start: number, total: number): Page<T> {
  const edges = items.map((node, i) => ({ node, cursor: encodeCursor(start + i) }));
  return {
    edges,
    totalCount: total,
    pageInfo: {
      hasPreviousPage: start > 0,
      hasNextPage: start + items.length < total,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

/** Paginate an in-memory list. */
export function paginate<T>(all: T[], args: PageArgs): Page<T> {
  const { start, end } = pageWindow(args, all.length);
  return toPage(all.slice(start, end), start, all.length);
}
