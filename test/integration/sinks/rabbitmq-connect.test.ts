/**
 * How the RabbitMQ sink tells a refusal that will not heal (wrong password:
 * the sink fails) from an outage (nothing listens: the sink retries), against
 * the machine's RabbitMQ and a closed port. The closed port's number holds
 * "403", as a private broker's port did when a kill test saw its outage
 * taken for ACCESS_REFUSED.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { rabbitConfigSchema, RabbitMqSink, refusedForGood } from '../../../src/replication/sinks/rabbitmq.sink.ts';
import { SinkConfigError, SinkUnavailableError } from '../../../src/replication/sinks/sink.ts';
import { RABBIT } from '../../support/brokers.ts';

const config = (port: number) => rabbitConfigSchema.parse({ host: '127.0.0.1', port, username: RABBIT.username, exchange: 'amq.topic' });

/** A port in 40300-40399 (or 4030-4039) that nothing listens on. */
async function closedPortWith403(): Promise<number> {
  for (const port of [...Array.from({ length: 100 }, (_, i) => 40300 + i), ...Array.from({ length: 10 }, (_, i) => 4030 + i)]) {
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port with 403 in it');
}

describe('RabbitMQ sink connect errors', () => {
  it('a wrong password is ACCESS_REFUSED: a config error, not retried', async () => {
    const sink = new RabbitMqSink(config(RABBIT.port), { password: 'not-the-password' });
    const err = await sink.open().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SinkConfigError);
    expect((err as SinkConfigError).retriable).toBe(false);
    expect((err as Error).message).toMatch(/ACCESS.REFUSED/);
    expect((err as Error).message).not.toContain('not-the-password');
    await sink.close();
  });

  it('nothing listening on a port whose number holds 403 is an outage: retried', async () => {
    const port = await closedPortWith403();
    const sink = new RabbitMqSink(config(port), { password: RABBIT.password });
    const err = await sink.open().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SinkUnavailableError);
    expect((err as SinkUnavailableError).retriable).toBe(true);
    expect((err as Error).message).toContain(`ECONNREFUSED 127.0.0.1:${port}`);
    await sink.close();
  });

  it('refusedForGood reads the reply name, never a bare 403', () => {
    expect(refusedForGood(new Error('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"'))).toBe(true);
    expect(refusedForGood(new Error('connect ECONNREFUSED 127.0.0.1:40329'))).toBe(false);
    expect(refusedForGood(new Error('connect ECONNREFUSED 127.0.0.1:4030'))).toBe(false);
    expect(refusedForGood(new Error('Socket closed abruptly during opening handshake'))).toBe(false);
  });
});
