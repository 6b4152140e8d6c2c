/**
 * Counts the fuzz cases of one `vitest run --project fuzz` across its files.
 * As a global setup it gives every file a directory (inject('fuzzCountDir'));
 * each file writes what it ran there (reportCases); the teardown prints the
 * total and fails the run when a complete default run (every test of both
 * files, no FUZZ_* scaling or filter) ran fewer than MIN_TOTAL cases.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    fuzzCountDir: string;
  }
}

/** The floor of a default run (issue 8: at least 10,000 cases in CI). */
export const MIN_TOTAL = 10_000;
/** The files that make up a complete run. */
const FILES = ['rest', 'graphql'];
const SCALING = ['FUZZ_RUNS', 'FUZZ_GRAPHQL_RUNS', 'FUZZ_OPS', 'FUZZ_ONLY'];

export interface CaseReport {
  file: string;
  cases: number;
  testsRun: number;
  testsDeclared: number;
  slowestMs: number;
}

export function reportCases(dir: string | undefined, r: CaseReport): void {
  if (dir) writeFileSync(join(dir, `${r.file}.json`), JSON.stringify(r));
}

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-fuzz-count-'));
  project.provide('fuzzCountDir', dir);
  return () => {
    const reports = readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as CaseReport);
    rmSync(dir, { recursive: true, force: true });
    if (reports.length === 0) return;
    const total = reports.reduce((a, r) => a + r.cases, 0);
    const parts = reports.map((r) => `${r.file} ${r.cases.toLocaleString('en')} (slowest answer ${r.slowestMs} ms)`).join(', ');
    const complete = FILES.every((f) => reports.some((r) => r.file === f && r.testsRun === r.testsDeclared));
    const defaults = SCALING.every((v) => !process.env[v]);
    console.log(`Fuzz: ${total.toLocaleString('en')} cases in all: ${parts}${complete && defaults ? '' : ' (partial or scaled run: no floor)'}`);
    if (complete && defaults && total < MIN_TOTAL) {
      // vitest logs a teardown's exception but keeps exit status 0: fail the run through the status itself.
      console.error(`FAIL: the default fuzz run ran ${total} cases, fewer than the ${MIN_TOTAL.toLocaleString('en')} it must (issue 8)`);
      process.exitCode = 1;
    }
  };
}
