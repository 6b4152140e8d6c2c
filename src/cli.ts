/**
 * `tributary` command line. Every failure the user can fix ends as one line
 * on stderr and a non-zero exit, never a stack trace.
 */
import { Command } from 'commander';
import { ConfigError, loadConfig, type Config } from './config/config.ts';
import { App, StartupError, VERSION } from './app.ts';
import { createPool, ensureDatabase, migrate } from './store/database.ts';
import { TokenRepo } from './store/token.repo.ts';
import { parseRole } from './auth/roles.ts';
import { printAppSchema } from './server/schema.ts';

function fail(message: string, code = 1): never {
  process.stderr.write(`tributary: ${message}\n`);
  process.exit(code);
}

function config(overrides: Partial<Config> = {}): Config {
  try {
    return loadConfig(process.env, overrides);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
}

async function run(serve: boolean, worker: boolean, overrides: Partial<Config>): Promise<void> {
  const cfg = config(overrides);
  const app = new App({ config: cfg, serve, worker });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => { app.logger.error('shutdown took longer than 10 s, exiting'); process.exit(1); }, 9_500);
    force.unref();
    app.close().then(() => { app.logger.flush?.(); setTimeout(() => process.exit(0), 50); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await app.start();
  } catch (err) {
    await app.close().catch(() => undefined);
    if (err instanceof StartupError) fail(err.message);
    fail(`start failed: ${(err as Error).message}`);
  }
  const addr = app.address();
  if (addr) {
    const base = `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
    process.stdout.write([
      '',
      `Tributary ${VERSION} is running (${app.role}).`,
      `  GraphiQL:  ${base}/graphiql`,
      `  GraphQL:   ${base}/graphql   (subscriptions: ws://${addr.host}:${addr.port}/graphql)`,
      `  Health:    ${base}/health  ${base}/ready  ${base}/metrics`,
      '',
      'Start a first job: open GraphiQL and run',
      '  mutation { runNoop(steps: 5, stepMs: 300) { taskId } }',
      'then subscribe to it with  subscription { taskEvents(taskId: "<taskId>") { state progress message } }',
      'Or run `npm run demo` to start private source and destination databases with a live replication job.',
      '',
    ].join('\n') + '\n');
  }
}

const program = new Command();
program.name('tributary').description('Change-data-capture and replication gateway').version(VERSION);

const portOption = (cmd: Command) => cmd.option('-p, --port <port>', 'HTTP port (PORT)').option('--host <host>', 'listen address (HOST)');
const overridesFrom = (o: { port?: string; host?: string; cluster?: string }): Partial<Config> => ({
  ...(o.port ? { port: Number(o.port) } : {}), ...(o.host ? { host: o.host } : {}), ...(o.cluster ? { workerCluster: o.cluster } : {}),
});

portOption(program.command('start').description('gateway and workers in one process')).action((o) => run(true, true, overridesFrom(o)));
portOption(program.command('serve').description('gateway only (GraphQL, REST compat, GraphiQL)')).action((o) => run(true, false, overridesFrom(o)));
program.command('worker').description('BullMQ workers only').option('--cluster <name>', 'serve this cluster\'s queue instead of the shared pool')
  .action((o) => run(false, true, overridesFrom(o)));

program.command('migrate').description('apply metadata database migrations').action(async () => {
  const cfg = config();
  try {
    await ensureDatabase(cfg.databaseUrl);
    const pool = createPool(cfg.databaseUrl, 2);
    const r = await migrate(pool);
    await pool.end();
    process.stdout.write(r.applied.length ? `applied ${r.applied.join(', ')}; schema version ${r.current}\n` : `up to date; schema version ${r.current}\n`);
  } catch (err) {
    fail((err as Error).message);
  }
});

async function withTokens<T>(fn: (repo: TokenRepo) => Promise<T>): Promise<T> {
  const cfg = config();
  try {
    await ensureDatabase(cfg.databaseUrl);
    const pool = createPool(cfg.databaseUrl, 2);
    await migrate(pool);
    try { return await fn(new TokenRepo(pool)); } finally { await pool.end(); }
  } catch (err) {
    fail((err as Error).message);
  }
}

const token = program.command('token').description('manage API tokens');
token.command('create').description('create a token (printed once)').requiredOption('--role <role>', 'admin, operator or reader').option('--name <name>', 'a label', 'token')
  .action(async (o: { role: string; name: string }) => {
    const role = parseRole(o.role);
    if (!role) fail(`--role must be admin, operator or reader, not "${o.role}"`, 2);
    const { row, token: clear } = await withTokens((r) => r.create(o.name, role));
    process.stdout.write(`${clear}\n`);
    process.stderr.write(`created ${row.role} token ${row.id} (${row.name}); it is shown only once\n`);
  });
token.command('list').description('list tokens (never the secret)').action(async () => {
  const rows = await withTokens((r) => r.list());
  for (const t of rows) {
    process.stdout.write(`${t.id}  ${t.prefix}…  ${t.role.padEnd(8)}  ${t.name}  created ${t.created_at.toISOString()}${t.revoked_at ? `  REVOKED ${t.revoked_at.toISOString()}` : ''}\n`);
  }
  if (!rows.length) process.stdout.write('no tokens: the gateway runs in open mode on loopback only\n');
});
token.command('revoke <id>').description('revoke a token by id, prefix or name').action(async (id: string) => {
  const ok = await withTokens((r) => r.revoke(id));
  if (!ok) fail(`no active token matches "${id}"`);
  process.stdout.write(`revoked ${id}\n`);
});

program.command('demo').description('private MariaDB -> PostgreSQL databases with a live replication job').option('-p, --port <port>', 'HTTP port', '8190')
  .action(async (o: { port: string }) => {
    const { runDemo } = await import('./devtools/demo.ts');
    try { await runDemo(Number(o.port)); } catch (err) { fail(`demo failed: ${(err as Error).message}`); }
  });

program.command('print-schema').description('print the GraphQL SDL').action(async () => {
  process.stdout.write(await printAppSchema());
});

program.parseAsync(process.argv).catch((err) => fail((err as Error).message));
