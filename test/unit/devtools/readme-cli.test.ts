/**
 * `npm ci` does not put the `tributary` bin on the PATH, so every place the
 * README and docs show the CLI must run it through npx (or an npm script).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const files = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const SUBCOMMAND = /(^|[\s`(])tributary (start|serve|worker|migrate|token|demo|print-schema)\b/;

describe('CLI invocations in the docs', () => {
  it.each(files)('%s runs the CLI with npx', (file) => {
    const bare = readFileSync(file, 'utf8').split('\n').filter((line) => {
      const m = SUBCOMMAND.exec(line);
      return m !== null && !line.slice(0, m.index + m[1].length).endsWith('npx ');
    });
    expect(bare).toEqual([]);
  });
});

describe('GraphQL examples in the README', () => {
  it('each is valid against schema/schema.graphql (testConnection is a mutation, createJob takes what is shown)', async () => {
    const { buildSchema, parse, validate } = await import('graphql');
    const schema = buildSchema(readFileSync('schema/schema.graphql', 'utf8'));
    const blocks = [...readFileSync('README.md', 'utf8').matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const doc of blocks) expect(validate(schema, parse(doc)).map((e) => e.message), doc).toEqual([]);
  });
});
