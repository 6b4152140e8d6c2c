/**
 * loadConfig: defaults, environment variables, a JSON config file through
 * TRIBUTARY_CONFIG, precedence (file < env < overrides), and invalid values
 * becoming one ConfigError naming the variable. maskSecrets and the logger:
 * credentials never reach a log line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ENV_VARS, isLoopback, loadConfig } from '../../src/config/config.ts';
import { createLogger, maskSecrets } from '../../src/observability/logger.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(content: unknown): string {
  const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function configError(env: NodeJS.ProcessEnv, overrides: Record<string, unknown> = {}): ConfigError {
  try {
    loadConfig(env, overrides as never);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig defaults', () => {
  it('gives safe defaults with an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8190,
      host: '127.0.0.1',
      databaseUrl: 'postgres://127.0.0.1:5432/tributary',
      redisUrl: 'redis://127.0.0.1:6379',
      secretKeyFile: '.tributary/secret.key',
      logLevel: 'info',
      workerConcurrency: 16,
      queuePrefix: 'tributary',
      maxBodyBytes: 10 * 1024 * 1024,
      feedMaxChanges: 1_000_000,
      feedMaxAgeSeconds: 7 * 24 * 3600,
      clusters: [],
    });
    expect(c.secretKey).toBeUndefined();
    expect(c.workerCluster).toBeUndefined();
    expect(c.udupPort).toBeUndefined();
    expect(c.changeserverSource).toBeUndefined();
  });

  it('does not read process.env when given an env map', () => {
    const saved = process.env.PORT;
    process.env.PORT = '1234';
    try {
      expect(loadConfig({}).port).toBe(8190);
    } finally {
      if (saved === undefined) delete process.env.PORT; else process.env.PORT = saved;
    }
  });

  it('treats an empty variable as unset', () => {
    const c = loadConfig({ PORT: '', LOG_LEVEL: '', UDUP_PORT: '' });
    expect(c).toMatchObject({ port: 8190, logLevel: 'info' });
    expect(c.udupPort).toBeUndefined();
  });
});

describe('loadConfig from the environment', () => {
  it('reads every documented variable', () => {
    const c = loadConfig({
      PORT: '9000',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgresql://u:p@db:5433/meta',
      REDIS_URL: 'rediss://cache:6380/2',
      TRIBUTARY_SECRET_KEY: '0123456789abcdef',
      TRIBUTARY_SECRET_KEY_FILE: '/etc/tributary/key',
      LOG_LEVEL: 'debug',
      WORKER_CONCURRENCY: '4',
      WORKER_CLUSTER: 'east-1',
      QUEUE_PREFIX: 'trib:prod',
      MAX_BODY_BYTES: '2048',
      UDUP_PORT: '8191',
      CELLO_PORT: '8192',
      CONNECTION_SERVICE_PORT: '8193',
      CHANGESERVER_PORT: '8194',
      FATEFLOW_PORT: '8195',
      CHANGESERVER_FEED: 'orders.v1',
      CHANGESERVER_SOURCE_URL: 'mysql://root@127.0.0.1:3306/shop',
      FEED_MAX_CHANGES: '500',
      FEED_MAX_AGE_SECONDS: '60',
    });
    expect(c).toMatchObject({
      port: 9000,
      host: '0.0.0.0',
      databaseUrl: 'postgresql://u:p@db:5433/meta',
      redisUrl: 'rediss://cache:6380/2',
      secretKey: '0123456789abcdef',
      secretKeyFile: '/etc/tributary/key',
      logLevel: 'debug',
      workerConcurrency: 4,
      workerCluster: 'east-1',
      queuePrefix: 'trib:prod',
      maxBodyBytes: 2048,
      udupPort: 8191,
      celloPort: 8192,
      connectionServicePort: 8193,
      changeserverPort: 8194,
      fateFlowPort: 8195,
      changeserverFeed: 'orders.v1',
      changeserverSource: 'mysql://root@127.0.0.1:3306/shop',
      feedMaxChanges: 500,
      feedMaxAgeSeconds: 60,
    });
  });

  it('lets explicit overrides (CLI flags) win over the environment, ignoring undefined ones', () => {
    const c = loadConfig({ PORT: '9000', HOST: '0.0.0.0' }, { port: 9100, host: undefined });
    expect(c.port).toBe(9100);
    expect(c.host).toBe('0.0.0.0');
  });

  it('accepts port 0 (any free port) and 65535', () => {
    expect(loadConfig({ PORT: '0' }).port).toBe(0);
    expect(loadConfig({ PORT: '65535' }).port).toBe(65535);
  });
});

describe('loadConfig from a config file (TRIBUTARY_CONFIG)', () => {
  it('reads settings and clusters from the file', () => {
    const file = configFile({
      port: 9300, logLevel: 'warn', workerConcurrency: 2,
      clusters: [{ name: 'east', size: 3, consensus_plugin: 'raft' }],
    });
    const c = loadConfig({ TRIBUTARY_CONFIG: file });
    expect(c).toMatchObject({ port: 9300, logLevel: 'warn', workerConcurrency: 2, host: '127.0.0.1' });
    expect(c.clusters).toEqual([{ name: 'east', size: 3, consensus_plugin: 'raft' }]);
  });

  it('environment variables override the file, overrides override both', () => {
    const file = configFile({ port: 9300, logLevel: 'warn', queuePrefix: 'fromfile' });
    const c = loadConfig({ TRIBUTARY_CONFIG: file, PORT: '9400', LOG_LEVEL: 'error' }, { port: 9500 });
    expect(c.port).toBe(9500);
    expect(c.logLevel).toBe('error');
    expect(c.queuePrefix).toBe('fromfile');
  });

  it('a missing file is one ConfigError naming TRIBUTARY_CONFIG and the path', () => {
    const missing = path.join(dir, 'nope.json');
    const e = configError({ TRIBUTARY_CONFIG: missing });
    expect(e.message).toMatch(/^TRIBUTARY_CONFIG: cannot read /);
    expect(e.message).toContain(missing);
    expect(e.message).not.toContain('\n');
  });

  it('a file that is not JSON is a ConfigError naming TRIBUTARY_CONFIG', () => {
    const e = configError({ TRIBUTARY_CONFIG: configFile('port = 9000') });
    expect(e.message).toMatch(/^TRIBUTARY_CONFIG: cannot read /);
  });

  it('an invalid value in the file names the setting\'s variable', () => {
    expect(configError({ TRIBUTARY_CONFIG: configFile({ port: 'eighty' }) }).message).toMatch(/^invalid configuration: PORT: /);
    expect(configError({ TRIBUTARY_CONFIG: configFile({ clusters: [{ name: 'x', size: 0 }] }) }).message).toMatch(/^invalid configuration: clusters: /);
  });
});

describe('invalid values name the variable', () => {
  const cases: [string, string][] = [
    ['PORT', 'abc'],
    ['PORT', '65536'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['DATABASE_URL', 'mysql://127.0.0.1/x'],
    ['DATABASE_URL', 'not a url'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['TRIBUTARY_SECRET_KEY', 'short'],
    ['LOG_LEVEL', 'loud'],
    ['WORKER_CONCURRENCY', '0'],
    ['WORKER_CONCURRENCY', 'many'],
    ['WORKER_CLUSTER', 'east 1'],
    ['QUEUE_PREFIX', 'has space'],
    ['MAX_BODY_BYTES', '10'],
    ['UDUP_PORT', '70000'],
    ['CHANGESERVER_FEED', 'a/b'],
    ['CHANGESERVER_SOURCE_URL', 'redis://127.0.0.1'],
    ['FEED_MAX_CHANGES', '0'],
    ['FEED_MAX_AGE_SECONDS', 'week'],
  ];
  for (const [name, value] of cases) {
    it(`${name}=${JSON.stringify(value)}`, () => {
      const e = configError({ [name]: value });
      expect(e.message).toMatch(new RegExp(`^invalid configuration: ${name}: \\S`));
      expect(e.message).not.toContain('\n');
    });
  }

  it('reports the offending variable even when others are valid', () => {
    expect(configError({ PORT: '9000', LOG_LEVEL: 'loud', HOST: '0.0.0.0' }).message).toMatch(/^invalid configuration: LOG_LEVEL: /);
  });

  it('never echoes a secret value in the message', () => {
    const e = configError({ TRIBUTARY_SECRET_KEY: 'tooshort' });
    expect(e.message).not.toContain('tooshort');
  });

  it('every setting has an environment variable', () => {
    expect(Object.values(ENV_VARS)).toContain('DATABASE_URL');
    expect(new Set(Object.values(ENV_VARS)).size).toBe(Object.values(ENV_VARS).length);
  });
});

describe('isLoopback', () => {
  it('recognises loopback hosts only', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com']) expect(isLoopback(h), h).toBe(false);
  });
});

describe('maskSecrets', () => {
  it('masks the password in URLs with credentials', () => {
    expect(maskSecrets('postgres://app:s3cret@db:5432/meta')).toBe('postgres://app:***@db:5432/meta');
    expect(maskSecrets('redis://:hunter2@cache:6379/0')).toBe('redis://:***@cache:6379/0');
    expect(maskSecrets('mysql://root:p%40ss@127.0.0.1:3306/shop')).toBe('mysql://root:***@127.0.0.1:3306/shop');
  });

  it('masks several URLs in one text', () => {
    const out = maskSecrets('from mysql://a:one@h1/x to postgresql://b:two@h2/y');
    expect(out).toBe('from mysql://a:***@h1/x to postgresql://b:***@h2/y');
  });

  it('masks password=... pairs in connection strings and JSON-ish text', () => {
    expect(maskSecrets('host=db user=app password=s3cret dbname=meta')).toBe('host=db user=app password=*** dbname=meta');
    expect(maskSecrets('{"password":"s3cret","user":"app"}')).toBe('{"password":"***","user":"app"}');
    expect(maskSecrets('PWD: s3cret; next')).toBe('PWD: ***; next');
    expect(maskSecrets('?user=a&passwd=s3cret&x=1')).toBe('?user=a&passwd=***&x=1');
  });

  it('leaves text without credentials alone', () => {
    for (const s of ['postgres://db:5432/meta', 'redis://127.0.0.1:6379', 'http://host/path?q=1', 'user app connected', 'at 12:30:45']) {
      expect(maskSecrets(s)).toBe(s);
    }
  });
});

describe('logger', () => {
  function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[]; raw: () => string } {
    const stream = new PassThrough();
    let raw = '';
    stream.on('data', (d: Buffer) => { raw += d.toString(); });
    const logger = createLogger('info', stream);
    return { logger, raw: () => raw, lines: () => raw.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
  }

  it('masks credentials in messages and errors, and redacts secret fields', async () => {
    const { logger, lines, raw } = capture();
    logger.info('connecting to postgres://app:pw-in-message@db/meta');
    logger.error({ err: new Error('connect failed for redis://:pw-in-error@cache:6379') }, 'redis down');
    logger.info({ databaseUrl: 'postgres://app:pw-in-field@db/meta', token: 'tok-secret', nested: { password: 'pw-nested' }, headers: { authorization: 'Bearer abc' } }, 'config');
    await new Promise((r) => setImmediate(r));
    const text = raw();
    for (const secret of ['pw-in-message', 'pw-in-error', 'pw-in-field', 'tok-secret', 'pw-nested', 'Bearer abc']) expect(text).not.toContain(secret);
    const [a, b, c] = lines();
    expect(a!.msg).toBe('connecting to postgres://app:***@db/meta');
    expect(a!.level).toBe('info');
    expect((b!.err as { message: string }).message).toBe('connect failed for redis://:***@cache:6379');
    expect(c).toMatchObject({ databaseUrl: '***', token: '***', nested: { password: '***' }, headers: { authorization: '***' } });
  });

  it('honours the level', async () => {
    const stream = new PassThrough();
    let raw = '';
    stream.on('data', (d: Buffer) => { raw += d.toString(); });
    const logger = createLogger('warn', stream);
    logger.info('hidden');
    logger.warn('shown');
    await new Promise((r) => setImmediate(r));
    expect(raw).not.toContain('hidden');
    expect(raw).toContain('shown');
  });
});
