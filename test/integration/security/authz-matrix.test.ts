/**
 * The authorization matrix of docs/security.md, checked: every GraphQL root
 * field and every REST route, as anonymous, reader, operator and admin
 * (tokens defined, so no open mode), plus the ownership rules of clusters.
 * The expected matrix is authz-matrix.data.ts; the doc carries the same
 * tables (checked here too).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { getNamedType, isEnumType, isInputObjectType, isListType, isNonNullType, isObjectType, isScalarType, buildSchema, type GraphQLField, type GraphQLInputType, type GraphQLOutputType } from 'graphql';
import { startTestGateway, gql, type TestGateway } from '../../support/gateway.ts';
import { Role } from '../../../src/auth/roles.ts';
import { GRAPHQL_MATRIX, REST_MATRIX, ROLES, renderMatrix, type MatrixRole, type RestEntry } from './authz-matrix.data.ts';

const schema = buildSchema(readFileSync(new URL('../../../schema/schema.graphql', import.meta.url), 'utf8'));
const NO_ID = '00000000-0000-0000-0000-000000000000';
const rank = (r: MatrixRole) => ROLES.indexOf(r);

/** A value that passes validation, pointing at nothing real (and never at a reachable server). */
function minimal(type: GraphQLInputType, name: string): unknown {
  if (isNonNullType(type)) return minimal(type.ofType as GraphQLInputType, name);
  if (isListType(type)) return [minimal(type.ofType as GraphQLInputType, name)];
  if (isEnumType(type)) return type.getValues()[0]!.name;
  if (isInputObjectType(type)) {
    const out: Record<string, unknown> = {};
    for (const f of Object.values(type.getFields())) if (isNonNullType(f.type)) out[f.name] = minimal(f.type, f.name);
    return out;
  }
  if (isScalarType(type)) {
    if (/host/i.test(name)) return '127.0.0.1';
    if (/port/i.test(name)) return 1;
    if (/connectionString/i.test(name)) return 'postgres://u:p@127.0.0.1:1/authz';
    switch (type.name) {
      case 'Int': return name === 'block' ? 0 : 1;
      case 'Float': return 1;
      case 'Boolean': return false;
      case 'ID': return NO_ID;
      case 'JSON': return {};
      default: return name === 'name' ? `authz_${Math.random().toString(36).slice(2, 8)}` : 'authz-none';
    }
  }
  return null;
}

function leafSelection(type: GraphQLOutputType): string {
  const t = getNamedType(type);
  if (!isObjectType(t)) return '';
  const leaf = Object.values(t.getFields()).find((f) => !isObjectType(getNamedType(f.type)) && f.args.length === 0);
  return `{ ${leaf?.name ?? '__typename'} }`;
}

function operation(root: 'query' | 'mutation' | 'subscription', field: GraphQLField<unknown, unknown>): { query: string; variables: Record<string, unknown> } {
  const args = field.args.filter((a) => isNonNullType(a.type) || ['block'].includes(a.name));
  const decl = args.map((a) => `$${a.name}: ${a.type.toString()}`).join(', ');
  const call = args.map((a) => `${a.name}: $${a.name}`).join(', ');
  const variables = Object.fromEntries(args.map((a) => [a.name, minimal(a.type, a.name)]));
  return { query: `${root} Authz${decl ? `(${decl})` : ''} { ${field.name}${call ? `(${call})` : ''} ${leafSelection(field.type)} }`, variables };
}

const DENIED = new Set(['UNAUTHENTICATED', 'FORBIDDEN']);

describe('authorization matrix (docs/security.md)', () => {
  let gw: TestGateway;
  const tokens: Partial<Record<MatrixRole, string>> = {};
  let operatorB = '';
  let job = '';

  beforeAll(async () => {
    gw = await startTestGateway({ changeserverFeed: 'authz-feed' } as never, { worker: false });
    const admin = await gw.app.services.tokens.create('authz-admin', Role.Admin);
    tokens.admin = admin.token;
    tokens.operator = (await gw.app.services.tokens.create('op-a', Role.Operator)).token;
    tokens.reader = (await gw.app.services.tokens.create('authz-reader', Role.Reader)).token;
    operatorB = (await gw.app.services.tokens.create('op-b', Role.Operator)).token;
    gw.app.services.auth.invalidate();
  });
  afterAll(async () => { await gw?.close(); });

  async function ensureJob(): Promise<string> {
    const found = await gql(gw.url, 'query($id: ID!) { job(id: $id) { name } }', { id: 'authz-job' }, tokens.admin);
    if (found.body.data?.job) return 'authz-job';
    // On the private MariaDB, so Udup (MySQL only) can address it with the same connection.
    const conn = { kind: 'MYSQL', host: '127.0.0.1', port: Number(new URL(inject('mariaUrl')).port), user: 'root', password: '' };
    const r = await gql(gw.url, 'mutation($i: JobInput!) { createJob(input: $i) { name } }', { i: { name: 'authz-job', type: 'SYNCHRONOUS', source: conn, destination: conn, paused: true } }, tokens.admin);
    expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
    return 'authz-job';
  }

  it('docs/security.md carries the matrix this test checks', () => {
    const doc = readFileSync(new URL('../../../docs/security.md', import.meta.url), 'utf8');
    expect(doc).toContain(renderMatrix());
  });

  it('covers every root field of the schema', () => {
    for (const root of ['query', 'mutation', 'subscription'] as const) {
      const t = root === 'query' ? schema.getQueryType() : root === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
      expect(Object.keys(t!.getFields()).sort(), root).toEqual(Object.keys(GRAPHQL_MATRIX[root]).sort());
    }
  });

  for (const root of ['query', 'mutation'] as const) {
    it(`GraphQL ${root}: every field against every role`, async () => {
      const t = root === 'query' ? schema.getQueryType()! : schema.getMutationType()!;
      const wrong: string[] = [];
      for (const [name, need] of Object.entries(GRAPHQL_MATRIX[root])) {
        const { query, variables } = operation(root, t.getFields()[name]!);
        for (const role of ROLES) {
          const r = await gql(gw.url, query, variables, tokens[role]);
          const codes = (r.body.errors ?? []).map((e) => e.extensions?.code ?? '');
          const denied = codes.some((c) => DENIED.has(c));
          const expectDenied = rank(role) < rank(need);
          if (denied !== expectDenied) wrong.push(`${name} as ${role}: ${expectDenied ? 'allowed' : 'denied'} (${r.status} ${JSON.stringify(r.body.errors ?? []).slice(0, 200)})`);
          if (expectDenied && !codes.includes(role === 'anonymous' ? 'UNAUTHENTICATED' : 'FORBIDDEN')) wrong.push(`${name} as ${role}: wrong code ${codes.join(',')}`);
        }
      }
      expect(wrong).toEqual([]);
    });
  }

  it('GraphQL subscriptions over graphql-ws: anonymous is closed 4401, readers subscribe', async () => {
    const t = schema.getSubscriptionType()!;
    const wrong: string[] = [];
    for (const role of ['anonymous', 'reader'] as const) {
      let closeCode: number | undefined;
      const client = createClient({
        url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0,
        connectionParams: tokens[role] ? { authorization: `Bearer ${tokens[role]}` } : {},
        on: { closed: (e) => { closeCode = (e as { code?: number }).code; } },
      });
      for (const name of Object.keys(GRAPHQL_MATRIX.subscription)) {
        const { query, variables } = operation('subscription', t.getFields()[name]!);
        const outcome = await new Promise<string>((resolve) => {
          const timer = setTimeout(() => { dispose(); resolve('open'); }, 400);
          const dispose = client.subscribe({ query, variables }, {
            next: (v) => { clearTimeout(timer); dispose(); resolve(v.errors?.some((e) => DENIED.has(String(e.extensions?.code))) ? 'denied' : 'ok'); },
            error: (e) => { clearTimeout(timer); resolve(Array.isArray(e) ? (e.some((x) => DENIED.has(String(x.extensions?.code))) ? 'denied' : 'ok') : 'closed'); },
            complete: () => { clearTimeout(timer); resolve('ok'); },
          });
        });
        const denied = outcome === 'denied' || outcome === 'closed';
        if (denied !== (role === 'anonymous')) wrong.push(`${name} as ${role}: ${outcome}`);
      }
      await client.dispose();
      if (role === 'anonymous' && closeCode !== 4401) wrong.push(`anonymous close code ${closeCode}`);
    }
    expect(wrong).toEqual([]);
  });

  /** 401/403 in the dialect: HTTP status, or Cello's body code (its failures are HTTP 400). */
  function deniedStatus(status: number, text: string): number | undefined {
    if (status === 401 || status === 403) return status;
    try { const b = JSON.parse(text); if (b && b.status === 'FAIL' && (b.code === 401 || b.code === 403)) return b.code; } catch { /* not JSON */ }
    return undefined;
  }

  it('REST: every route of the five dialects (and the gateway\'s own) against every role', async () => {
    const wrong: string[] = [];
    const names: Record<MatrixRole, string> = { anonymous: 'anon', reader: 'authz-reader', operator: 'op-a', admin: 'authz-admin' };
    for (const e of REST_MATRIX as RestEntry[]) {
      for (const role of ROLES) {
        if (e.path.includes('{job}')) job = await ensureJob();
        const uniq = `authz_${role}_${Math.random().toString(36).slice(2, 7)}`;
        const fill = (s: string) => s.replace(/\{job\}/g, job).replace(/\{feed\}/g, 'authz-feed').replace(/\{self\}/g, names[role]).replace(/\{uniq\}/g, uniq).replace(/"\{mariaPort\}"/g, new URL(inject('mariaUrl')).port);
        let body = e.body ? JSON.parse(fill(JSON.stringify(e.body))) : undefined;
        if (e.api === 'udup' && e.method === 'POST' && e.path === '/v1/jobs') {
          const cc = { Host: '127.0.0.1', Port: 1, User: 'u', Password: 'p' };
          body = { Name: uniq, Tasks: [{ Type: 'Src', Config: { ConnectionConfig: cc } }, { Type: 'Dest', Config: { ConnectionConfig: cc } }] };
        }
        const res = await fetch(`${gw.url}${fill(e.path)}`, {
          method: e.method,
          headers: { ...(tokens[role] ? { authorization: `Bearer ${tokens[role]}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        });
        const text = await res.text();
        const denied = deniedStatus(res.status, text);
        const expectDenied = rank(role) < rank(e.role);
        if (!!denied !== expectDenied) wrong.push(`${e.method} ${e.path} as ${role}: ${expectDenied ? 'allowed' : 'denied'} (${res.status} ${text.slice(0, 160)})`);
        else if (expectDenied && denied !== (role === 'anonymous' ? 401 : 403)) wrong.push(`${e.method} ${e.path} as ${role}: ${denied} instead of ${role === 'anonymous' ? 401 : 403}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('ownership: clusters belong to the user that holds them; jobs have no owner check', async () => {
    const mk = await gql(gw.url, 'mutation { a: createCluster(input: {name: "authz_c1", size: 1}) { id } b: createCluster(input: {name: "authz_c2", size: 1}) { id } }', undefined, tokens.admin);
    expect(mk.body.errors, JSON.stringify(mk.body.errors)).toBeUndefined();
    // op-a applies: it acts as user "op-a".
    const applied = await gql(gw.url, 'mutation { applyCluster(input: {}) { name userId } }', undefined, tokens.operator);
    expect(applied.body.errors, JSON.stringify(applied.body.errors)).toBeUndefined();
    const mine = applied.body.data.applyCluster;
    expect(mine.userId).toBe('op-a');
    // op-b cannot see it, act on it, or apply in op-a's name.
    const seen = await gql(gw.url, 'query($id: ID!) { cluster(id: $id) { name } }', { id: mine.name }, operatorB);
    expect(seen.body.data.cluster).toBeNull();
    const list = await gql(gw.url, '{ clusters(first: 100) { edges { node { name userId } } } }', undefined, operatorB);
    expect(list.body.data.clusters.edges.map((x: any) => x.node.name)).not.toContain(mine.name);
    for (const m of ['stopCluster', 'startCluster', 'restartCluster']) {
      const r = await gql(gw.url, `mutation($id: ID!) { ${m}(id: $id) { name } }`, { id: mine.name }, operatorB);
      expect(r.body.errors?.[0]?.extensions?.code, m).toBe('NOT_FOUND');
    }
    const rel = await gql(gw.url, 'mutation($id: ID) { releaseCluster(clusterId: $id) { name } }', { id: mine.name }, operatorB);
    expect(['NOT_FOUND', 'FORBIDDEN']).toContain(rel.body.errors?.[0]?.extensions?.code);
    const forOther = await gql(gw.url, 'mutation { applyCluster(input: {userId: "op-a"}) { name } }', undefined, operatorB);
    expect(forOther.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // Cello says the same: another user's cluster is code 404.
    const cello = await fetch(`${gw.url}/v2/cluster_op?action=stop&cluster_id=${mine.name}`, { method: 'POST', headers: { authorization: `Bearer ${operatorB}` } });
    expect((await cello.json() as any).code).toBe(404);
    // A free cluster: operators may not start or stop what they do not hold.
    const free = mine.name === 'authz_c1' ? 'authz_c2' : 'authz_c1';
    const freeStop = await gql(gw.url, 'mutation($id: ID!) { stopCluster(id: $id) { name } }', { id: free }, operatorB);
    expect(freeStop.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // The holder acts on it; an admin acts on anyone's.
    const own = await gql(gw.url, 'mutation($id: ID!) { stopCluster(id: $id) { status } }', { id: mine.name }, tokens.operator);
    expect(own.body.errors, JSON.stringify(own.body.errors)).toBeUndefined();
    const adm = await gql(gw.url, 'mutation($id: ID!) { startCluster(id: $id) { status } }', { id: mine.name }, tokens.admin);
    expect(adm.body.errors, JSON.stringify(adm.body.errors)).toBeUndefined();
    const admSees = await gql(gw.url, 'query($id: ID!) { cluster(id: $id) { userId } }', { id: mine.name }, tokens.admin);
    expect(admSees.body.data.cluster.userId).toBe('op-a');
    // Jobs: created by op-a, paused and resumed by op-b (documented: operators act on every job).
    const jobName = await ensureJob();
    const paused = await gql(gw.url, 'mutation($id: ID!) { pauseJob(id: $id) { name } }', { id: jobName }, operatorB);
    expect(paused.body.errors?.some((e) => DENIED.has(String(e.extensions?.code))) ?? false).toBe(false);
  });
});
