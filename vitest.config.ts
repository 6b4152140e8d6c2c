import { defineConfig } from 'vitest/config';

const alias = [{ find: /^graphql$/, replacement: 'graphql/index.js' }];

// Suites that can run apart: unit (no servers), integration (private
// PostgreSQL, MariaDB and Redis started by the global setup), fuzz, browser
// (headless Debian Chromium against a running gateway) and chaos (fault injection).
export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node' },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Every piece an apply takes from memory (local echo) is compared with what Redis holds for it.
          env: { TRIB_ECHO_VERIFY: '1' },
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        // Property-based malformed input against one in-process gateway (fast-check); FUZZ_RUNS / FUZZ_GRAPHQL_RUNS scale it.
        resolve: { alias },
        test: {
          name: 'fuzz',
          include: ['test/fuzz/**/*.test.ts'],
          // test/fuzz/case-count.ts counts the cases of all files, prints the total and holds the 10,000 floor.
          globalSetup: ['test/support/global-setup.ts', 'test/fuzz/case-count.ts'],
          testTimeout: 600_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        // Fault injection (test/chaos): each case kills and restarts processes and private servers.
        // CHAOS_SCALE=ci (default, reduced counts, about 4 minutes) or full (`npm run test:chaos:full`).
        // Runs apart: `npm test` runs it in its own vitest invocation after the other projects.
        resolve: { alias },
        test: {
          name: 'chaos',
          include: ['test/chaos/**/*.test.ts'],
          env: { TRIB_ECHO_VERIFY: '1' },
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 900_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          // One case at a time: cases kill processes and servers and measure recovery on 2 cores.
          maxWorkers: 1,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
