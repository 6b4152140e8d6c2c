/**
 * Reader-side filters of the change feed: scopes (Transicator's
 * `_change_selector` value, several scopes are an OR) and tables.
 * A change without a scope matches no scope: Transicator only ever returned
 * rows whose selector column matched a requested scope.
 */
import type { ChangeEvent } from '../change-event.ts';
import { FeedParameterError } from './feed-errors.ts';

export const SCOPE_RE = /^[0-9a-z_-]+$/;

export function validateScope(scope: string): string {
  if (typeof scope !== 'string' || !SCOPE_RE.test(scope)) {
    throw new FeedParameterError('scope', scope, `expected ${SCOPE_RE.source}`);
  }
  return scope;
}

/** Validates each scope (the error names the first bad one); `required` demands at least one. */
export function validateScopes(scopes: readonly string[], opts: { required?: boolean } = {}): string[] {
  if (opts.required && scopes.length === 0) throw new FeedParameterError('scope', scopes, 'at least one scope is required');
  return scopes.map(validateScope);
}

export function matchesScopes(event: ChangeEvent, scopes: ReadonlySet<string> | readonly string[]): boolean {
  if (event.scope === undefined) return false;
  return scopes instanceof Set ? scopes.has(event.scope) : (scopes as readonly string[]).includes(event.scope);
}

/**
 * `tables` entries are "schema.table" (exact) or "table" (that name in any
 * schema). Names compare case-sensitively, as PostgreSQL quoted identifiers
 * and MariaDB on Linux do. An empty list matches everything.
 * Split at the first dot: a schema name never contains one in our sources.
 */
export function matchesTables(event: ChangeEvent, tables: readonly string[]): boolean {
  return tables.length === 0 || tableMatcher(tables)(event);
}

/** Compiled form of matchesTables for filtering many events. */
export function tableMatcher(tables: readonly string[]): (event: ChangeEvent) => boolean {
  if (tables.length === 0) return () => true;
  const qualified = new Set<string>();
  const bare = new Set<string>();
  for (const t of tables) {
    if (typeof t !== 'string' || t === '' || t.startsWith('.') || t.endsWith('.')) throw new FeedParameterError('table', t, 'expected "schema.table" or "table"');
    (t.includes('.') ? qualified : bare).add(t);
  }
  return (e) => bare.has(e.table) || qualified.has(`${e.schema}.${e.table}`);
}
