/**
 * graphql's `subscribe`, with each event's execution shared between
 * subscribers that would compute the same result.
 *
 * graphql-js executes the subscription's selection set once per event per
 * subscriber. The change feed hands one event object to every subscriber of
 * its scope (feed-hub.ts), so 200 subscribers with the same query executed
 * the same selection set on the same object 200 times (with variable
 * coercion and the authorization middleware each time). Here the result is
 * kept per event object (a WeakMap: it goes when the event goes) under a key
 * of everything else execution depends on: the printed document, operation
 * name, variables, and the caller's identity (role, token, name), so no
 * result ever crosses principals. Resolvers of subscription payloads are
 * pure functions of those, which is what makes sharing sound.
 */
import { createSourceEventStream, execute, print, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';

type Result = ExecutionResult | Promise<ExecutionResult>;
const shared = new WeakMap<object, Map<string, Result>>();
const printed = new WeakMap<DocumentNode, string>();

function keyOf(args: ExecutionArgs): string {
  let doc = printed.get(args.document);
  if (doc === undefined) printed.set(args.document, (doc = print(args.document)));
  const p = (args.contextValue as { principal?: { role?: string; tokenId?: string; name?: string } } | undefined)?.principal;
  return JSON.stringify([doc, args.operationName ?? null, args.variableValues ?? null, p?.role ?? null, p?.tokenId ?? null, p?.name ?? null]);
}

export async function sharedSubscribe(args: ExecutionArgs): Promise<AsyncGenerator<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source; // errors before the stream started
  const key = keyOf(args);
  const it = source[Symbol.asyncIterator]();
  const map = (payload: unknown): Result => {
    if (payload === null || typeof payload !== 'object') return execute({ ...args, rootValue: payload });
    let perEvent = shared.get(payload);
    if (!perEvent) shared.set(payload, (perEvent = new Map()));
    let r = perEvent.get(key);
    if (!r) perEvent.set(key, (r = execute({ ...args, rootValue: payload })));
    return r;
  };
  const stream: AsyncGenerator<ExecutionResult> = {
    async next() {
      const n = await it.next();
      return n.done ? { done: true, value: undefined } : { done: false, value: await map(n.value) };
    },
    async return() {
      await it.return?.();
      return { done: true, value: undefined };
    },
    async throw(err: unknown) {
      if (it.throw) {
        const n = await it.throw(err);
        return n.done ? { done: true, value: undefined } : { done: false, value: await map(n.value) };
      }
      throw err;
    },
    [Symbol.asyncIterator]() { return this; },
  };
  return stream;
}
