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
  return maskUrlPasswords(text).replace(/(password|passwd|pwd)(["']?\s*[=:]\s*["']?)[^&\s"',;]+/gi, '$1$2***');
}

const isSchemeChar = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46;
const isLetter = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
const isSpace = (c: string) => /\s/.test(c);

/**
 * `scheme://user:PASSWORD@` -> `scheme://user:***@`, in linear time. It is
 * the replacement /([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi did,
 * but that regex backtracks quadratically on a long run of letters without
 * "://" (200,000 characters in an error message echoing a caller's id took
 * minutes and blocked the event loop, so every request of the gateway hung).
 */
export function maskUrlPasswords(text: string): string {
  let out = '';
  let copied = 0; // text before this index is in `out`
  let floor = 0; // a scheme may not start before the end of the previous match
  let stopFrom = -1; // cache: the first '@' or whitespace at or after stopFrom is at stopAt
  let stopAt = -1;
  for (let sep = text.indexOf('://'); sep >= 0; sep = text.indexOf('://', sep + 1)) {
    if (sep < floor) continue;
    // The scheme: a letter, then scheme characters, right before "://". ':' and '/' are no scheme
    // characters, so this walk never crosses an earlier "://": linear over the whole text.
    let s = sep;
    while (s > floor && isSchemeChar(text.charCodeAt(s - 1))) s--;
    while (s < sep && !isLetter(text.charCodeAt(s))) s++;
    if (s === sep) continue;
    // user part: no ':', '/', '@' or whitespace, then ':'
    let j = sep + 3;
    while (j < text.length) {
      const ch = text[j]!;
      if (ch === ':' || ch === '/' || ch === '@' || isSpace(ch)) break;
      j++;
    }
    if (text[j] !== ':') continue;
    // password: up to the first '@' or whitespace, which must be '@'
    const from = j + 1;
    if (!(stopFrom >= 0 && stopFrom <= from && stopAt >= from)) {
      let k = from;
      while (k < text.length && text[k] !== '@' && !isSpace(text[k]!)) k++;
      stopFrom = from;
      stopAt = k;
    }
    if (text[stopAt] !== '@') continue;
    out += text.slice(copied, from) + '***@';
    copied = stopAt + 1;
    floor = copied;
  }
  return copied === 0 ? text : out + text.slice(copied);
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
