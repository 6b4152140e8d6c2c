/** Every header and property name the sinks put on the wire, in one place. */
export const WebhookHeader = {
  IdempotencyKey: 'Idempotency-Key',
  /** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` */
  Signature: 'Tributary-Signature',
  /** Number of changes in the body (a JSON array when batchSize > 1). */
  Count: 'Tributary-Count',
  Feed: 'Tributary-Feed',
} as const;

/** NATS and AMQP message headers beside the broker's own id (Nats-Msg-Id, message-id). */
export const MessageHeader = {
  Key: 'Tributary-Key',
  Sequence: 'Tributary-Sequence',
  Feed: 'Tributary-Feed',
  Op: 'Tributary-Op',
} as const;

/** Is `host` allowed by the operator's list (empty list: everything)? `*.x.org` matches sub-domains of x.org. */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  if (!allowed.length) return true;
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return allowed.some((a) => (a.startsWith('*.') ? h.endsWith(a.slice(1)) : h === a));
}
