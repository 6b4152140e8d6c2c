#!/usr/bin/env node
// Runs the TypeScript entry point through tsx, so a fresh clone needs no build step.
import v8 from 'node:v8';
import { register } from 'tsx/esm/api';

// Old space grows to 1.5x what the last full collection kept instead of V8's
// default (up to 4x): peak RSS of a streaming job fell from 540-600 MiB to
// 380-420 MiB and its CPU per change by 10-15% (docs/benchmarks.md). The npm
// scripts pass it as a flag too; a flag of the caller's own wins.
if (!/heap-growing-percent/.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`)) v8.setFlagsFromString('--heap-growing-percent=50');
register();
await import('../src/cli.ts');
