/**
 * `npm run demo` stopped with Ctrl-C (SIGINT to the process) at several
 * moments: while the servers start, while Tributary starts, once the job is
 * live, and once the writer and the row reports run. Every time it must exit 0
 * without an unhandled error, remove its temporary directory and leave no
 * PostgreSQL, MariaDB or Redis process behind. With the port already taken it
 * says so at once and takes a free one (no worker errors first).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/devtools/private-servers.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/tributary.js');

interface Run { code: number | null; signal: NodeJS.Signals | null; out: string; tmp: string; leftover: string[] }

/** Processes whose command line names the run's private temp directory (the servers' data dirs are under it). */
function processesUnder(dir: string): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).stdout.split('\n');
  return ps.filter((l) => l.includes(dir) && !l.includes('ps -eo'));
}

/** Starts the demo; SIGINT once `when` matches the output (after `delayMs`). */
async function demoRun(port: number, when: RegExp, delayMs = 0): Promise<Run> {
  const child = spawn(process.execPath, [BIN, 'demo', '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let sent = false;
  const onData = (b: Buffer) => {
    out += b.toString();
    if (!sent && when.test(out)) { sent = true; setTimeout(() => child.kill('SIGINT'), delayMs); }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const killer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  clearTimeout(killer);
  await new Promise((r) => setTimeout(r, 500));
  // The demo names its temporary directory in its first lines; every server's data directory is under it.
  const tmp = /Redis under (\S+) \.\.\./.exec(out)?.[1] ?? '';
  return { code, signal, out, tmp, leftover: tmp ? processesUnder(tmp) : [] };
}

function expectClean(r: Run, label: string): void {
  const why = `${label}:\n${r.out}`;
  expect(r.signal, why).toBeNull();
  expect(r.code, why).toBe(0);
  expect(r.out, why).not.toMatch(/Unhandled|ECONNREFUSED|demo failed/);
  expect(r.out, why).toContain('Demo stopped; temporary databases removed.');
  expect(r.tmp, why).toMatch(/tributary-demo-/);
  expect(existsSync(r.tmp), why).toBe(false);
  expect(r.leftover, why).toEqual([]);
}

describe('npm run demo: Ctrl-C', () => {
  const tmps: string[] = [];
  afterAll(() => { for (const t of tmps) if (t) rmSync(t, { recursive: true, force: true }); });

  const moments: [string, RegExp, number][] = [
    ['while the servers start', /Starting private/, 300],
    ['while Tributary starts (the servers are up)', /Starting private/, 4000],
    ['once the job is live', /Tributary is running/, 0],
    ['with the writer and the row reports running', /source +\d+ rows/, 2500],
  ];
  it.each(moments)('stops cleanly %s', async (label, when, delayMs) => {
    const r = await demoRun(await freePort(), when, delayMs);
    tmps.push(r.tmp);
    expectClean(r, label);
  }, 180_000);

  it('takes a free port, and says so at once, when its port is taken', async () => {
    const taken = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      const r = await demoRun(port, /Tributary is running at http:\/\/127\.0\.0\.1:\d+/, 0);
      tmps.push(r.tmp);
      const lines = r.out.split('\n');
      expect(lines[0], r.out).toMatch(new RegExp(`^Port ${port} is in use .*: the demo listens on port (\\d+) instead\\.$`));
      const other = Number(/listens on port (\d+)/.exec(lines[0]!)![1]);
      expect(r.out).toContain(`Tributary is running at http://127.0.0.1:${other}`);
      expectClean(r, 'port taken');
    } finally {
      await new Promise((r) => taken.close(r));
    }
  }, 180_000);
});
