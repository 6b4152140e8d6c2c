/**
 * The shape every "state, then live events" subscription shares (task, job
 * and cached-query events): subscribe first, then read the current state, so
 * nothing published in between is lost (a duplicate of the current state is
 * possible and harmless); end after a terminal event when `isLast` says so.
 */
export async function* currentThenLive<T>(
  live: AsyncIterable<T>,
  current: () => Promise<T | undefined>,
  isLast: (event: T) => boolean = () => false,
): AsyncGenerator<T> {
  const it = live[Symbol.asyncIterator]();
  try {
    const now = await current();
    if (now !== undefined) {
      yield now;
      if (isLast(now)) return;
    }
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield next.value;
      if (isLast(next.value)) return;
    }
  } finally {
    await it.return?.();
  }
}
