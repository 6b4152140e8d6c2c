/**
 * Checks real answers against a dialect's served OpenAPI document: the
 * operation exists, the status is documented, the content type is one of
 * that status's media types, and the body validates against its schema
 * (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses). Records which operations
 * were answered as documented, so a suite can require every one.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';

export interface Answer { status: number; contentType: string | null; body: Buffer }

interface Operation { key: string; re: RegExp; params: number; op: { responses: Record<string, { content?: Record<string, { schema?: Record<string, unknown> }> }> } }

const JSON_TYPES = /^application\/(.+\+)?json$/;

export class OpenApiChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly ops: Operation[] = [];
  /** `METHOD /template` of every operation answered as documented. */
  readonly covered = new Set<string>();

  constructor(readonly name: string, readonly doc: { paths: Record<string, Record<string, unknown>> }) {
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const re = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
        this.ops.push({ key: `${method.toUpperCase()} ${template}`, re, params: (template.match(/\{/g) ?? []).length, op: op as Operation['op'] });
      }
    }
    // A literal path wins over a templated one (/v1/job/query before /v1/job/{id}).
    this.ops.sort((a, b) => a.params - b.params);
  }

  operations(): string[] {
    return this.ops.map((o) => o.key);
  }

  /** Problems of the document itself: a response with content but no schema, an operation without a documented success body. */
  documentProblems(): string[] {
    const out: string[] = [];
    for (const o of this.ops) {
      let success = false;
      for (const [status, r] of Object.entries(o.op.responses)) {
        for (const [type, media] of Object.entries(r.content ?? {})) {
          if (!media.schema || Object.keys(media.schema).length === 0) out.push(`${this.name} ${o.key} ${status} ${type}: no schema`);
          else if (status.startsWith('2')) success = true;
        }
      }
      if (!success) out.push(`${this.name} ${o.key}: no success response with a schema`);
    }
    return out;
  }

  /** Problems of one answer; none = it is what the document says. */
  check(method: string, path: string, a: Answer): string[] {
    const where = `${this.name} ${method} ${path} -> ${a.status}`;
    const o = this.ops.find((x) => x.key.startsWith(`${method.toUpperCase()} `) && x.re.test(path));
    if (!o) return [`${where}: no such operation in the document`];
    const response = o.op.responses[String(a.status)];
    if (!response) return [`${where}: status not documented (documented: ${Object.keys(o.op.responses).join(', ')})`];
    const problems: string[] = [];
    if (a.body.length === 0) {
      if (response.content && method !== 'HEAD') problems.push(`${where}: empty body, document says ${Object.keys(response.content).join(', ')}`);
    } else {
      const type = (a.contentType ?? '').split(';')[0]!.trim().toLowerCase();
      const media = response.content?.[type];
      if (!media) problems.push(`${where}: content type "${type}" not documented (documented: ${Object.keys(response.content ?? {}).join(', ') || 'no body'})`);
      else {
        const schema = media.schema ?? {};
        let value: unknown;
        if (JSON_TYPES.test(type)) {
          try { value = JSON.parse(a.body.toString('utf8')); } catch (err) { problems.push(`${where}: body is not JSON: ${(err as Error).message}`); }
        } else {
          value = a.body.toString(type.startsWith('text/') ? 'utf8' : 'latin1');
        }
        if (!problems.length) {
          const validate = this.ajv.compile(schema);
          if (!validate(value)) problems.push(`${where}: body does not match the schema: ${this.ajv.errorsText(validate.errors, { separator: '; ' })}; body ${a.body.toString('utf8').slice(0, 400)}`);
        }
      }
    }
    if (!problems.length) this.covered.add(o.key);
    return problems;
  }
}
