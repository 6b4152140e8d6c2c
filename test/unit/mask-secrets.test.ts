/**
 * maskSecrets runs on every GraphQL error message, job log line and logged
 * string, and those echo callers' input. The URL-credential regex it used
 * backtracked quadratically on a long run of letters ("cluster xxx…x not
 * found" with a 200,000-character id took minutes and blocked the event
 * loop: every request of the gateway hung; found by the GraphQL fuzzer).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { maskSecrets, maskUrlPasswords } from '../../src/observability/logger.ts';

/** The former implementation: the reference for what gets masked. */
const reference = (text: string) => text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');

describe('maskSecrets', () => {
  it('masks URL passwords and password= pairs', () => {
    expect(maskSecrets('connect postgres://u:pw@h:5432/db failed')).toBe('connect postgres://u:***@h:5432/db failed');
    expect(maskSecrets('mysql://root:p@ss@h and redis://:secret@r')).toBe('mysql://root:***@ss@h and redis://:***@r');
    expect(maskSecrets('x password=hunter2 y')).toBe('x password=*** y');
    expect(maskSecrets('a://b:c://d:e@f')).toBe('a://b:***@f');
    expect(maskSecrets('no url here')).toBe('no url here');
  });

  it('masks URL passwords exactly as the former regex did (property)', () => {
    const ch = fc.constantFrom('a', 'Z', '1', '+', '-', '.', ':', '/', '@', ' ', '\n', '\u00a0', 'é', 'p', '=');
    const text = fc.oneof(
      fc.array(ch, { maxLength: 60 }).map((a) => a.join('')),
      fc.array(fc.constantFrom('pg', '://', 'u', ':', 'pw', '@', 'h', ' ', '/', '1', '-'), { maxLength: 30 }).map((a) => a.join('')),
    );
    fc.assert(fc.property(text, (t) => maskUrlPasswords(t) === reference(t)), { numRuns: 20_000, seed: 42 });
  });

  it('takes linear time on adversarial input (a 200,000-character echo)', () => {
    const inputs = [
      `cluster ${'x'.repeat(200_000)} not found`,
      'x'.repeat(100_000) + '://' + ':'.repeat(2) + 'y'.repeat(100_000),
      'a://u:'.repeat(40_000),
      'a://'.repeat(50_000),
      'password'.repeat(25_000),
      `pwd=${' '.repeat(100_000)}`,
      'pwd: '.repeat(40_000),
      `${'9'.repeat(100_000)}://u:${'p'.repeat(100_000)}@h`,
    ];
    for (const s of inputs) {
      const t0 = performance.now();
      maskSecrets(s);
      expect(performance.now() - t0, s.slice(0, 20)).toBeLessThan(500);
    }
  });
});
