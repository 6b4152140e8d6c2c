/**
 * Job and task events go through Redis pub/sub; the event target underneath
 * fires PUBLISH without handling its promise. Closing while a publish is still
 * queued (a task finishing during shutdown) must not end in an unhandled
 * rejection, which would crash the process (vitest fails the run on one).
 */
import { describe, expect, inject, it } from 'vitest';
import { createRedisPubSub } from '../../../src/events/pubsub.ts';

describe('pub/sub at shutdown', () => {
  it('delivers while open, and a publish queued at close or made after it is dropped quietly', async () => {
    const settings = { redisUrl: inject('redisUrl'), redisClusterNodes: undefined } as Parameters<typeof createRedisPubSub>[0];
    const a = createRedisPubSub(settings, 'x');
    const b = createRedisPubSub(settings, 'x');
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => { unhandled.push(r); };
    process.on('unhandledRejection', onUnhandled);
    try {
      const it = b.pubSub.subscribe('test-topic' as never)[Symbol.asyncIterator]();
      const got = it.next();
      await new Promise((r) => setTimeout(r, 200));
      a.publish('test-topic', { n: 1 });
      expect((await got).value).toEqual({ n: 1 });
      for (let i = 0; i < 50; i++) a.publish('test-topic', { n: i });
      await a.close();
      a.publish('test-topic', { n: 'after close' });
      await it.return?.();
      await b.close();
      await new Promise((r) => setTimeout(r, 300));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
