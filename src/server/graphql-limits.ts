/**
 * Query cost limits: a depth rule (validation) and a complexity check
 * (graphql-query-complexity, field `complexity` from type-graphql plus one
 * per field). Both apply to HTTP and WebSocket operations.
 */
import { GraphQLError, Kind, type ASTNode, type DocumentNode, type GraphQLSchema, type ValidationContext, type ASTVisitor, type FragmentDefinitionNode } from 'graphql';
import { createRequire } from 'node:module';

// The package's ESM build imports graphql/index.mjs, a second graphql realm
// next to the CJS one everything else loads; its CJS build shares ours.
const { fieldExtensionsEstimator, getComplexity, simpleEstimator } =
  createRequire(import.meta.url)('graphql-query-complexity') as typeof import('graphql-query-complexity');
import { ErrorCode } from '../errors.ts';

export const MAX_DEPTH = 12;
export const MAX_COMPLEXITY = 2000;
/** Aliased fields per operation (fragments counted where spread): many aliases of one field multiply its cost past what complexity sees cheaply. */
export const MAX_ALIASES = 50;

/** Validation rule: an operation may use at most `maxAliases` aliased fields. */
export function aliasLimitRule(maxAliases = MAX_ALIASES) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const def of context.getDocument().definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    const count = (node: ASTNode, seen: Set<string>): number => {
      if (!('selectionSet' in node) || !node.selectionSet) return 0;
      let n = 0;
      for (const sel of node.selectionSet.selections) {
        if (sel.kind === Kind.FIELD) n += (sel.alias ? 1 : 0) + count(sel, seen);
        else if (sel.kind === Kind.INLINE_FRAGMENT) n += count(sel, seen);
        else if (sel.kind === Kind.FRAGMENT_SPREAD && !seen.has(sel.name.value)) {
          const frag = fragments.get(sel.name.value);
          if (frag) n += count(frag, new Set([...seen, sel.name.value]));
        }
        if (n > maxAliases) return n;
      }
      return n;
    };
    return {
      OperationDefinition(op) {
        const n = count(op, new Set());
        if (n > maxAliases) {
          context.reportError(new GraphQLError(`the operation uses more than ${maxAliases} aliases (the limit): request fewer fields under aliases, or split the operation`, { nodes: [op], extensions: { code: ErrorCode.QueryTooComplex } }));
        }
      },
    };
  };
}

export function depthLimitRule(maxDepth = MAX_DEPTH) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const def of context.getDocument().definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    const depthOf = (node: ASTNode, depth: number, seen: Set<string>): number => {
      if (!('selectionSet' in node) || !node.selectionSet) return depth;
      let max = depth;
      for (const sel of node.selectionSet.selections) {
        if (sel.kind === Kind.FIELD) {
          if (sel.name.value.startsWith('__')) continue;
          max = Math.max(max, depthOf(sel, depth + 1, seen));
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          max = Math.max(max, depthOf(sel, depth, seen));
        } else if (sel.kind === Kind.FRAGMENT_SPREAD && !seen.has(sel.name.value)) {
          const frag = fragments.get(sel.name.value);
          if (frag) max = Math.max(max, depthOf(frag, depth, new Set([...seen, sel.name.value])));
        }
      }
      return max;
    };
    return {
      OperationDefinition(op) {
        const depth = depthOf(op, 0, new Set());
        if (depth > maxDepth) {
          context.reportError(new GraphQLError(`query depth ${depth} exceeds the limit of ${maxDepth}`, { nodes: [op], extensions: { code: ErrorCode.QueryTooComplex } }));
        }
      },
    };
  };
}

/** Throws a GraphQLError with QUERY_TOO_COMPLEX when the operation costs more than `max`. */
export function checkComplexity(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | undefined, operationName?: string | null, max = MAX_COMPLEXITY): number {
  const complexity = getComplexity({
    schema, query: document, variables: variables ?? {}, operationName: operationName ?? undefined,
    estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
  });
  if (complexity > max) {
    throw new GraphQLError(`query complexity ${complexity} exceeds the limit of ${max}`, { extensions: { code: ErrorCode.QueryTooComplex, http: { status: 400 } } });
  }
  return complexity;
}
