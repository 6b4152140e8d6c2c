/**
 * The layer rule of docs/architecture.md ("Layout and dependency direction"),
 * checked by `npm test` (npm run check:deps). Dependencies point one way:
 *
 *   cli/app -> server -> resolvers -> services -> queues -> store -> replication -> domain
 *              rest-compat (beside server: its own files, src/errors.ts and src/domain only)
 *
 * A layer may import any layer below it, never one above. Beside the layers:
 * - kernel: src/errors.ts, src/observability/, src/config/ import nothing of
 *   the project and may be imported by every layer but domain (which may use
 *   src/errors.ts only);
 * - src/events/ and src/auth/ sit with the store (pub/sub over Redis, tokens).
 * Resolvers call services: they import no queue, and from the store row types only.
 */

/** Path patterns of each layer, top first. */
const LAYERS = [
  { name: 'entry', path: '^src/(cli|app)\\.ts$|^src/devtools/' },
  { name: 'server', path: '^src/server/' },
  { name: 'resolvers', path: '^src/resolvers/' },
  { name: 'services', path: '^src/services/' },
  { name: 'queues', path: '^src/queues/' },
  { name: 'store', path: '^src/(store|events|auth)/' },
  { name: 'replication', path: '^src/replication/' },
  { name: 'domain', path: '^src/domain/' },
];

/** For each layer, the layers above it are forbidden. */
const upward = LAYERS.slice(1).map((layer, i) => ({
  name: `layer-${layer.name}`,
  comment: `${layer.name} imports nothing above it (${LAYERS.slice(0, i + 1).map((l) => l.name).join(', ')}): docs/architecture.md`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: LAYERS.slice(0, i + 1).map((l) => `(${l.path})`).join('|') },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'layer-above-rest-compat',
      comment: 'Only the entry point and the server wire in the REST compat modules.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|app)\\.ts$|^src/devtools/|^src/server/|^src/rest-compat/' },
      to: { path: '^src/rest-compat/' },
    },
    {
      name: 'rest-compat-translation-only',
      comment: 'REST compat is translation only: it imports its own files, src/errors.ts and the domain model whose states its dialects name, and runs GraphQL operations it is handed.',
      severity: 'error',
      from: { path: '^src/rest-compat/' },
      to: { path: '^src/', pathNot: '^src/rest-compat/|^src/errors\\.ts$|^src/domain/' },
    },
    {
      name: 'resolvers-call-services',
      comment: 'Resolvers call service methods; scheduling (queues) is the services\' business.',
      severity: 'error',
      from: { path: '^src/resolvers/' },
      to: { path: '^src/queues/' },
    },
    {
      name: 'resolvers-no-repositories',
      comment: 'Resolvers call service methods, never a repository: from the store they take row types only.',
      severity: 'error',
      from: { path: '^src/resolvers/' },
      to: { path: '^src/store/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'kernel-imports-nothing',
      comment: 'errors.ts, observability/ and config/ are imported by every layer, so they import none.',
      severity: 'error',
      from: { path: '^src/errors\\.ts$|^src/observability/|^src/config/' },
      to: { path: '^src/', pathNot: '^src/errors\\.ts$|^src/observability/|^src/config/' },
    },
    {
      name: 'domain-imports-nothing',
      comment: 'The domain model imports nothing of the project but src/errors.ts.',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { path: '^src/', pathNot: '^src/domain/|^src/errors\\.ts$' },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/.*\\.(proto|sql)$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
