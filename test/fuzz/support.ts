/**
 * Shared pieces of the fuzz suites: junk-value arbitraries, the safety
 * rules for anything that could become a network address (only loopback,
 * and only refused or private-server ports), and the response checks every
 * case must pass (no stack trace, no undocumented 5xx, the dialect's error
 * shape).
 */
import fc from 'fast-check';

/** Body texts that look like leaks of internals. */
export const STACK_PATTERNS: RegExp[] = [/\n\s+at /, / {4}at [\w<.]/, /\.ts:\d+/, /\.js:\d+:\d+/, /node_modules\//, /node:internal/];

export function stackTraceIn(text: string): string | undefined {
  for (const p of STACK_PATTERNS) { const m = p.exec(text); if (m) return text.slice(Math.max(0, m.index - 80), m.index + 80); }
  return undefined;
}

/** The only 5xx any route documents: 503 (a dependency down, shutting down, too many waiters). */
export const DOCUMENTED_5XX = new Set([503]);

/** Hosts the fuzzer may put anywhere a host goes: loopback or names that cannot resolve. Never numbers (inet_aton reads "3232235777" as 192.168.1.1). */
export const SAFE_HOSTS = ['127.0.0.1', 'localhost', '', 'no-such-host.invalid', '☃.invalid', 'a'.repeat(300) + '.invalid', '[::1]', '127.0.0.1:1', 'host with spaces.invalid'];

export function safeConnectionStrings(ports: number[]): string[] {
  return [
    'postgres://user:pw@127.0.0.1:1/db', 'mysql://root:pw@127.0.0.1:1/db', 'mariadb://root@127.0.0.1:1', 'postgresql://u@no-such-host.invalid/x',
    'sqlserver://u:p@127.0.0.1:1/db', 'postgres://', 'not a url', '://', 'postgres://u:p@[::1', 'mysql://u:%zz@127.0.0.1:1/d',
    // Each private server in its own protocol: real authentication failures, fast.
    ...(ports[0] ? [`postgres://nobody:wrong@127.0.0.1:${ports[0]}/nodb`] : []), ...(ports[1] ? [`mysql://nobody:wrong@127.0.0.1:${ports[1]}/nodb`] : []),
  ];
}

/** Strings that have broken parsers before: huge, unicode, control characters, format strings, JSON-ish, SQL-ish. */
export const junkString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.nat({ max: 200_000 }).map((n) => 'x'.repeat(n)) },
  { weight: 3, arbitrary: fc.constantFrom(
    '', ' ', '0', '-1', '1e309', 'NaN', 'null', 'undefined', 'true', '[]', '{}', '{"a":', '%s%n', '%zz', '%', '\u0000', '\uFFFF', '\uD800',
    '𝕏', '🙂'.repeat(50), 'ä', '<script>', "' OR 1=1 --", 'SELECT pg_sleep(10)', '../../etc/passwd', '?a=b?c=d', 'a&b=c', '\r\nX-Injected: 1',
    '1.2.3', '00000000-0000-0000-0000-000000000000', '9'.repeat(40), '-9007199254740993', '0x10', '1_000', ' 42 ', 'True', 'False', 'None',
  ) },
);

/** Any JSON value, with the shapes that hurt: deep nesting, wide arrays, big numbers. */
export const junkJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: junkString },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53 + 2, -(2 ** 63), 1e308, [], {}) },
  { weight: 1, arbitrary: fc.nat({ max: 3000 }).map((d) => { let v: unknown = 1; for (let i = 0; i < d; i++) v = i % 2 ? [v] : { a: v }; return v; }) },
  { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => Array.from({ length: n }, (_, i) => i)) },
);

/** Replace every value under a key that names a host, port or connection string with a safe one. */
export function sanitize(value: unknown, ports: number[], depth = 0): unknown {
  if (depth > 50 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => sanitize(v, ports, depth + 1));
  const out: Record<string, unknown> = {};
  const pick = <T>(list: T[], seed: string) => list[[...seed].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7) % list.length]!;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const seed = JSON.stringify(v) ?? '';
    if (/host|addr|server/i.test(k)) out[k] = typeof v === 'object' && v !== null ? sanitize(v, ports, depth + 1) : pick(SAFE_HOSTS, seed);
    // Never the private servers' ports here: a MySQL client on PostgreSQL's port waits its full 10 s connect timeout.
    else if (/port$/i.test(k) && (typeof v === 'number' || typeof v === 'string')) out[k] = pick([1, '1', 0, -1, 70000, 'x'], seed);
    else if (/connection_?string|url|uri|dsn/i.test(k) && typeof v !== 'object') out[k] = pick(safeConnectionStrings(ports), seed);
    else out[k] = sanitize(v, ports, depth + 1);
  }
  return out;
}

/** A flat string map safe for a query string or form body. */
export function sanitizeFlat(pairs: [string, string][], ports: number[]): [string, string][] {
  return pairs.map(([k, v]) => {
    if (/host|addr|server/i.test(k)) return [k, SAFE_HOSTS[v.length % SAFE_HOSTS.length]!];
    if (/port$/i.test(k)) return [k, String([1, 0, 70000][v.length % 3])];
    if (/connection_?string|url|uri|dsn/i.test(k)) { const cs = safeConnectionStrings(ports); return [k, cs[v.length % cs.length]!]; }
    return [k, v];
  });
}

/** encodeURIComponent that turns a lone surrogate into U+FFFD instead of throwing. */
export function encode(s: string): string {
  try { return encodeURIComponent(s); } catch { return encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, '\uFFFD')); }
}

export interface FuzzResponse {
  status: number;
  headers: Headers;
  text: string;
}

export interface CaseFailure { reason: string; request: string; status: number; body: string }

/** Checks common to every answer; returns a reason or undefined. */
export function commonProblems(res: FuzzResponse): string | undefined {
  // Node's HTTP parser answers an oversize request line or headers (16 KiB) itself, before any route: no body, no dialect.
  if (res.status === 431 && res.text === '') return undefined;
  if (res.status >= 500 && !DOCUMENTED_5XX.has(res.status)) return `undocumented ${res.status}`;
  const leak = stackTraceIn(res.text);
  if (leak) return `stack trace in body: ${JSON.stringify(leak)}`;
  return undefined;
}

export const truncate = (s: string, n = 600) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

/**
 * Longest wait for an answer: a case that gets none in this time fails
 * ("no answer"). Every request must end in bounded time whatever its input;
 * 30 s leaves room for a loaded 2-core CI machine (answers take milliseconds).
 */
export const ANSWER_TIMEOUT_MS = 30_000;

/** The slowest answer fetchOnce saw in this file (printed and reported with the case count). */
export const answerStats = { slowestMs: 0, slowest: '' };

/**
 * fetch, retried once when the connection fails before any answer: a pooled
 * keep-alive socket the server just closed as idle resets (ECONNRESET). A
 * gateway that is really gone fails the retry too.
 */
export async function fetchOnce(url: string, init?: RequestInit): Promise<Response> {
  const t0 = performance.now();
  try {
    try {
      return await fetch(url, init);
    } catch (err) {
      if ((err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError') throw err;
      return await fetch(url, init);
    }
  } finally {
    const ms = Math.round(performance.now() - t0);
    if (ms > answerStats.slowestMs) Object.assign(answerStats, { slowestMs: ms, slowest: `${init?.method ?? 'GET'} ${truncate(url, 160)}` });
  }
}

/**
 * CI runs a fixed seed so a green build stays green; exploration runs set
 * FUZZ_SEED=<n> or FUZZ_SEED=random (a failure prints its seed to replay).
 */
export function fuzzSeed(): number | undefined {
  const v = process.env.FUZZ_SEED;
  if (v === 'random') return undefined;
  return v ? Number(v) : 20261123;
}
