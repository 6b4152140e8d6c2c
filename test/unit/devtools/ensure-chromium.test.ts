/**
 * `npm test`'s pretest step (scripts/ensure-chromium.js): on a machine without
 * Debian's chromium it installs it when the user may, and otherwise stops
 * with one line naming what to install. Run as the real script, as a user
 * who may not install packages (uid 65534) when the tests run as root.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = path.resolve('scripts/ensure-chromium.js');

/** As root the child runs as nobody; otherwise it gets a PATH without apt-get and sudo. */
function runScript(chromiumPath: string) {
  const root = process.getuid?.() === 0;
  return spawnSync(process.execPath, [SCRIPT], {
    encoding: 'utf8',
    cwd: os.tmpdir(),
    env: { PATH: root ? process.env.PATH : path.dirname(process.execPath), TRIBUTARY_CHROMIUM_PATH: chromiumPath },
    ...(root ? { uid: 65534, gid: 65534 } : {}),
  });
}

describe('pretest: ensure chromium', () => {
  it('is the pretest script of npm test', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.pretest).toBe('node scripts/ensure-chromium.js');
    expect(readFileSync('.ci/run', 'utf8')).not.toMatch(/apt-get/);
  });

  it('does nothing when chromium is there', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-chromium-check-'));
    try {
      chmodSync(dir, 0o755); // the child may run as nobody
      const fake = path.join(dir, 'chromium');
      writeFileSync(fake, '');
      const r = runScript(fake);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops with one line naming the package when chromium is missing and the user may not install it', () => {
    const r = runScript('/nonexistent/chromium');
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('apt-get install -y --no-install-recommends chromium');
    expect(lines[0]).toContain('/nonexistent/chromium');
  });
});
