#!/usr/bin/env node
// Where a V8 CPU profile's time went (a window written by BENCH_CPU_PROF, or `node --cpu-prof`):
// self time by function and by file or package, and the share of (garbage collector), (program) and (idle).
// usage: node bench/support/profile-summary.mjs FILE.cpuprofile [top=30] [--inclusive]
// --inclusive adds total time by function: the samples with that function anywhere on their stack.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const inclusive = args.includes('--inclusive');
const [file, topArg] = args.filter((a) => a !== '--inclusive');
if (!file) { console.error('usage: profile-summary.mjs FILE.cpuprofile [top]'); process.exit(2); }
const top = Number(topArg ?? 30);
const prof = JSON.parse(readFileSync(file, 'utf8'));
if (prof.head) { heapSummary(prof.head); process.exit(0); }
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const selfUs = new Map();
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i + 1] ?? 0;
  selfUs.set(prof.samples[i], (selfUs.get(prof.samples[i]) ?? 0) + dt);
}
function where(cf) {
  const url = cf.url.replace(/^file:\/\//, '');
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (pkg) return pkg[1];
  const src = url.match(/\/(src|bench|test)\/.*$/);
  return src ? src[0].slice(1) : url || '(native)';
}
const fn = new Map(); const place = new Map();
let total = 0; let idle = 0;
for (const [id, us] of selfUs) {
  const cf = byId.get(id).callFrame;
  total += us;
  if (cf.functionName === '(idle)') { idle += us; continue; }
  const key = `${cf.functionName || '(anonymous)'}  ${where(cf)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  const p = cf.url ? where(cf) : cf.functionName;
  place.set(p, (place.get(p) ?? 0) + us);
}
const busy = total - idle;
const ms = (us) => (us / 1000).toFixed(0).padStart(6);
const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${ms(total)} ms sampled, busy ${ms(busy)} ms, idle ${ms(idle)} ms`);
console.log('\nby file or package (self, % of busy)');
for (const [k, us] of [...place].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(us)} ms ${pct(us)}  ${k}`);
console.log('\nby function (self, % of busy)');
for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(us)} ms ${pct(us)}  ${k}`);
if (inclusive) inclusiveSummary();

/** Time by function with its callees: each sample counts once for every distinct function on its stack. */
function inclusiveSummary() {
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (cf) => `${cf.functionName || '(anonymous)'}  ${where(cf)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  const incl = new Map();
  for (const [id, us] of selfUs) {
    if (byId.get(id).callFrame.functionName === '(idle)') continue;
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) seen.add(label(byId.get(at).callFrame));
    for (const k of seen) incl.set(k, (incl.get(k) ?? 0) + us);
  }
  console.log('\nby function, with callees (% of busy)');
  for (const [k, us] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(us)} ms ${pct(us)}  ${k}`);
}

/** A sampled allocation profile (.heapprofile): bytes allocated by function (self) and by file or package. */
function heapSummary(head) {
  const fnBytes = new Map(); const placeBytes = new Map(); let total = 0;
  const walk = (n) => {
    const self = n.selfSize ?? 0;
    if (self) {
      const cf = n.callFrame; total += self;
      const key = `${cf.functionName || '(anonymous)'}  ${where(cf)}`;
      fnBytes.set(key, (fnBytes.get(key) ?? 0) + self);
      const p = cf.url ? where(cf) : cf.functionName;
      placeBytes.set(p, (placeBytes.get(p) ?? 0) + self);
    }
    for (const c of n.children ?? []) walk(c);
  };
  walk(head);
  const mb = (b) => (b / 2 ** 20).toFixed(1).padStart(7);
  const share = (b) => `${((100 * b) / total).toFixed(1).padStart(5)}%`;
  console.log(`${file}: ${mb(total)} MiB allocated (sampled)`);
  console.log('\nby file or package');
  for (const [k, b] of [...placeBytes].sort((a, b2) => b2[1] - a[1]).slice(0, top)) console.log(`${mb(b)} MiB ${share(b)}  ${k}`);
  console.log('\nby function');
  for (const [k, b] of [...fnBytes].sort((a, b2) => b2[1] - a[1]).slice(0, top)) console.log(`${mb(b)} MiB ${share(b)}  ${k}`);
}
