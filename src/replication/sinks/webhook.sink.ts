/**
 * Webhook sink: POSTs changes to an HTTPS (or HTTP) endpoint. One change per
 * request (batchSize 1) or a JSON array of up to batchSize changes; every
 * change carries its stable `id`, and the request carries Idempotency-Key
 * (the change's id, or "<first id>..<last sequence>" for a batch: a batch may
 * be cut differently after a crash, so receivers deduplicate by the changes'
 * ids) and an HMAC-SHA256 signature when a secret is set.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import { SinkFormat, SinkKind } from '../../domain/sink-model.ts';
import { hostAllowed, WebhookHeader } from './sink-constants.ts';
import { SinkConfigError, SinkRejectedError, SinkUnavailableError, type Sink, type SinkMessage, type SinkModule } from './sink.ts';

export const webhookConfigSchema = z.object({
  url: z.string().url().refine((u) => /^https?:$/.test(new URL(u).protocol), 'url must be http:// or https://'),
  /** Changes per request; > 1 sends a JSON array (JSON and DEBEZIUM formats only). Default 1. */
  batchSize: z.number().int().min(1).max(10_000).default(1),
  /** Per-request timeout, ms. Default 10000. */
  timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
  /** Extra request headers (not secret: they are returned by the API; use `authorization` for a credential). */
  headers: z.record(z.string(), z.string())
    .refine((h) => !Object.keys(h).some((k) => k.toLowerCase() === 'authorization'), 'put the Authorization header in `authorization` (stored encrypted), not in headers')
    .default({}),
  tls: z.object({
    /** PEM CA bundle to trust (a private CA). */
    ca: z.string().optional(),
    /** false accepts any certificate: for tests only. Default true. */
    rejectUnauthorized: z.boolean().default(true),
  }).default({ rejectUnauthorized: true }),
}).strict();
export type WebhookConfig = z.infer<typeof webhookConfigSchema>;
export const webhookSecretsSchema = z.object({
  /** HMAC-SHA256 key of the Tributary-Signature header. */
  secret: z.string().min(1).optional(),
  /** Sent as the Authorization header (e.g. "Bearer ..."): a secret, unlike `headers`. */
  authorization: z.string().min(1).optional(),
}).strict();
export type WebhookSecrets = z.infer<typeof webhookSecretsSchema>;

export const webhookSinkModule: SinkModule<WebhookConfig, WebhookSecrets> = {
  kind: SinkKind.Webhook, config: webhookConfigSchema as z.ZodType<WebhookConfig>, secrets: webhookSecretsSchema, secretKeys: ['secret', 'authorization'],
  settings: 'url, batchSize, timeoutMs, headers, tls {ca, rejectUnauthorized}, secret, authorization',
  create: (c, s, o) => new WebhookSink(c, s, o.format, o.allowedHosts),
};

/** `Tributary-Signature` value for `body` at `t` (unix seconds). */
export function webhookSignature(secret: string, t: number, body: Buffer): string {
  const mac = createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  return `t=${t},v1=${mac}`;
}

export class WebhookSink implements Sink {
  readonly kind = 'webhook';
  readonly atomicBatches = true;
  readonly maxBatch: number;
  private readonly url: URL;
  private readonly agent: http.Agent;

  constructor(private readonly cfg: WebhookConfig, private readonly secrets: WebhookSecrets, format: SinkFormat, allowedHosts: readonly string[] = []) {
    this.url = new URL(cfg.url);
    if (!hostAllowed(this.url.hostname, allowedHosts)) throw new SinkConfigError(`webhook host ${this.url.hostname} is not in SINK_ALLOWED_HOSTS`);
    if (cfg.batchSize > 1 && format === SinkFormat.Protobuf) throw new SinkConfigError('a webhook with batchSize > 1 needs the JSON or DEBEZIUM format');
    this.maxBatch = cfg.batchSize;
    this.agent = this.url.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, maxSockets: 64, ca: cfg.tls.ca, rejectUnauthorized: cfg.tls.rejectUnauthorized })
      : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  async open(): Promise<void> { /* connections are made per request (kept alive) */ }

  private body(messages: SinkMessage[]): Buffer {
    if (messages.length === 1 && this.cfg.batchSize === 1) return messages[0]!.body;
    const parts: Buffer[] = [Buffer.from('[')];
    messages.forEach((m, i) => { if (i) parts.push(Buffer.from(',')); parts.push(m.body); });
    parts.push(Buffer.from(']'));
    return Buffer.concat(parts);
  }

  deliver(messages: SinkMessage[], signal?: AbortSignal): Promise<void> {
    const body = this.body(messages);
    const first = messages[0]!;
    const headers: Record<string, string> = {
      ...this.cfg.headers,
      'content-type': first.contentType,
      'content-length': String(body.length),
      [WebhookHeader.IdempotencyKey]: messages.length === 1 ? first.id : `${first.id}..${messages.at(-1)!.sequence}`,
      [WebhookHeader.Count]: String(messages.length),
      [WebhookHeader.Feed]: first.feed,
    };
    if (this.secrets.authorization) headers.authorization = this.secrets.authorization;
    if (this.secrets.secret) headers[WebhookHeader.Signature] = webhookSignature(this.secrets.secret, Math.floor(Date.now() / 1000), body);
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(this.url, { method: 'POST', headers, agent: this.agent, timeout: this.cfg.timeoutMs, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => { if (chunks.length < 4) chunks.push(c); });
        res.on('end', () => {
          const s = res.statusCode ?? 0;
          if (s >= 200 && s < 300) return resolve();
          const text = Buffer.concat(chunks).toString('utf8').slice(0, 200);
          const msg = `webhook answered HTTP ${s}${text ? `: ${text}` : ''}`;
          // 408/425/429 and 5xx say "later"; any other status is the endpoint refusing this request.
          if (s === 408 || s === 425 || s === 429 || s >= 500) reject(new SinkUnavailableError(msg));
          else reject(new SinkRejectedError(msg));
        });
        res.on('error', (err) => reject(new SinkUnavailableError(`webhook response failed: ${err.message}`, { cause: err })));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.cfg.timeoutMs} ms`)));
      req.on('error', (err) => reject(new SinkUnavailableError(`webhook request failed: ${err.message}`, { cause: err })));
      req.end(body);
    });
  }

  async close(): Promise<void> { this.agent.destroy(); }
}
