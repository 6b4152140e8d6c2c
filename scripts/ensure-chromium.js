#!/usr/bin/env node
// `npm test` runs this first (the `pretest` script): the browser suite drives
// Debian's /usr/bin/chromium, and the README promises that `npm ci && npm test`
// passes as written on a fresh Debian machine. When chromium is missing and the
// user may install packages (root, or passwordless sudo) it is installed with
// apt-get; otherwise the run stops with one line saying what to install,
// rather than skipping the browser suite.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const CHROMIUM = process.env.TRIBUTARY_CHROMIUM_PATH ?? '/usr/bin/chromium';
const INSTALL = 'apt-get install -y --no-install-recommends chromium';

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function run(argv) {
  const r = spawnSync(argv[0], argv.slice(1), {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return r.status === 0;
}

/** The command prefix that lets this user run apt-get, or null when it cannot. */
function privilegePrefix() {
  if (typeof process.getuid === 'function' && process.getuid() === 0) return [];
  const sudo = spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' });
  return sudo.status === 0 ? ['sudo', '-n'] : null;
}

if (!existsSync(CHROMIUM)) {
  const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  const prefix = hasApt ? privilegePrefix() : null;
  if (prefix === null) {
    fail(`npm test needs ${CHROMIUM} for the browser suite: install Debian's chromium package as root (${INSTALL}) and run npm test again`);
  }
  process.stderr.write(`${CHROMIUM} is missing: installing Debian's chromium package for the browser suite (takes a few minutes)\n`);
  if (!run([...prefix, 'apt-get', 'update', '-qq']) || !run([...prefix, ...INSTALL.split(' '), '-qq'])) {
    fail(`installing chromium failed: run \`${INSTALL}\` as root and run npm test again`);
  }
  if (!existsSync(CHROMIUM)) fail(`apt-get installed chromium but ${CHROMIUM} is still missing: install Debian's chromium package (${INSTALL})`);
}
