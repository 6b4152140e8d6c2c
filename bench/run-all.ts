/**
 * `npm run bench`: runs every bench/*.bench.ts (each exports `run()` and
 * measures itself against a peer or ceiling in the same run), writes
 * bench/results/latest.json and regenerates the tables in docs/benchmarks.md
 * between the BEGIN/END markers. `npm run bench -- feed` runs only matching scripts.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { machineCalibrationUs } from './support/harness.ts';

interface BenchResult {
  name: string;
  metrics: Record<string, number | string>;
  ratio?: { label: string; value: number };
  target?: string;
  notes?: string;
}

const dir = path.resolve('bench');
const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const files = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).filter((f) => only.length === 0 || only.some((o) => f.includes(o))).sort();
const resultsFile = path.resolve('bench/results/latest.json');
const previous: Record<string, BenchResult & { file: string; at: string }> = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : {};

for (const file of files) {
  process.stderr.write(`bench: ${file} ...\n`);
  // Taken before each script, alone: the same work's speed varies from machine to machine (harness.ts).
  const calibration = machineCalibrationUs();
  const mod = (await import(pathToFileURL(path.join(dir, file)).href)) as { run?: () => Promise<BenchResult | BenchResult[]> };
  if (typeof mod.run !== 'function') { process.stderr.write(`bench: ${file} exports no run(), skipped\n`); continue; }
  try {
    const out = await mod.run();
    for (const r of Array.isArray(out) ? out : [out]) {
      previous[r.name] = { ...r, metrics: { ...r.metrics, machineCalibrationUs: calibration }, file, at: new Date().toISOString() };
      process.stderr.write(`bench: ${r.name}: ${r.ratio ? `${r.ratio.label} = ${r.ratio.value}` : JSON.stringify(r.metrics)}\n`);
    }
  } catch (err) {
    process.stderr.write(`bench: ${file} failed: ${(err as Error).message}\n`);
  }
}

mkdirSync(path.dirname(resultsFile), { recursive: true });
writeFileSync(resultsFile, JSON.stringify(previous, null, 2) + '\n');

const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const lines: string[] = [`Machine of the last run: ${machine}.`, ''];
for (const r of Object.values(previous).sort((a, b) => a.name.localeCompare(b.name))) {
  lines.push(`### ${r.name}`, '', `Script: \`bench/${r.file}\`, run at ${r.at}.`, '');
  if (r.ratio) lines.push(`**Ratio: ${r.ratio.label} = ${r.ratio.value}**${r.target ? ` (target: ${r.target})` : ''}`, '');
  lines.push('| metric | value |', '|---|---|');
  for (const [k, v] of Object.entries(r.metrics)) lines.push(`| ${k} | ${v} |`);
  if (r.notes) lines.push('', r.notes);
  lines.push('');
}
const docFile = path.resolve('docs/benchmarks.md');
const begin = '<!-- BEGIN GENERATED: npm run bench -->';
const end = '<!-- END GENERATED -->';
const doc = existsSync(docFile) ? readFileSync(docFile, 'utf8') : `# Benchmarks\n\n${begin}\n${end}\n`;
const i = doc.indexOf(begin); const j = doc.indexOf(end);
const body = `${begin}\n${lines.join('\n')}\n${end}`;
writeFileSync(docFile, i >= 0 && j > i ? doc.slice(0, i) + body + doc.slice(j + end.length) : `${doc}\n${body}\n`);
process.stderr.write(`bench: wrote ${resultsFile} and ${docFile}\n`);
process.exit(0);
