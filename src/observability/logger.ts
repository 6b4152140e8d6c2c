/**
 * pino JSON logs. Secrets never reach a log line: known secret fields are
 * redacted by path, and any string that looks like a URL with credentials is
 * masked by the serializer below.
 */
import { pino, type Logger as PinoLogger } from 'pino';

const SECRET_KEYS = ['password', 'Password', 'connectionString', 'databaseUrl', 'redisUrl', 'redisClusterNodes', 'token', 'authorization', 'secretKey', 'secret'];
const paths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]).concat(['req.headers.authorization', 'headers.authorization']);

/** Masks credentials inside URLs ("postgres://u:pw@h" -> "postgres://u:***@h") and password=... pairs. */
export function maskSecrets(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@')
    .replace(/(password|passwd|pwd)(["']?\s*[=:]\s*["']?)[^&\s"',;]+/gi, '$1$2***');
}

export type Logger = PinoLogger;

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths, censor: '***' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          const masked = args.map((a) => (typeof a === 'string' ? maskSecrets(a) : a));
          method.apply(this, masked as Parameters<typeof method>);
        },
      },
      serializers: {
        err: (err: Error) => ({ type: err?.name, message: maskSecrets(String(err?.message ?? err)), code: (err as { code?: string })?.code }),
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
