/**
 * ReplChanBufferSize room released in this process: the apply counts applied transactions down in Redis, and a
 * capture of the same job here, waiting at the bound, is told at once instead of finding out at its next poll
 * (every 20 ms; issue 12: at a job's start the capture waited at the bound for the first, slow batches).
 * Only a wake-up: the capture reads the counter from Redis either way.
 */
const waiting = new Map<string, Set<() => void>>();

/** Resolves when roomReleased(key) is called here, or after `ms`. */
export function roomOrTimeout(key: string, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    let set = waiting.get(key);
    if (!set) { set = new Set(); waiting.set(key, set); }
    const done = (): void => {
      clearTimeout(timer);
      const s = waiting.get(key);
      if (s?.delete(done) && s.size === 0) waiting.delete(key);
      resolve();
    };
    const timer = setTimeout(done, ms);
    set.add(done);
  });
}

/** The counter `key` went down (in Redis): whoever waits on it here looks again. */
export function roomReleased(key: string): void {
  const set = waiting.get(key);
  if (set) for (const done of [...set]) done();
}
