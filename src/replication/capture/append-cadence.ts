/**
 * How often a capture hands a batch of small transactions to its handler (the feed append) while
 * transactions keep coming: at most once every APPEND_CADENCE_MS. A batch that is not full and was
 * formed sooner than that after the previous hand-over waits the rest, and takes every transaction that
 * arrives meanwhile (as a producer's linger does).
 *
 * Why (issue 12, lag bench): at 5,000 single-row transactions a second each capture batch went as soon as
 * the socket had nothing more queued, about 700 appends a second of 7 transactions each. Every append is a
 * script call in Redis and a write that wakes it; the appends were a quarter of the process's time, and on
 * a machine whose cores the source server already fills, each one also waited for a core. Bounded in time,
 * not in count: a lone transaction after a quiet spell goes at once (the previous hand-over is long past),
 * and no transaction waits more than APPEND_CADENCE_MS for company. TRIB_APPEND_CADENCE_MS sets it
 * (0: hand over as soon as nothing more is queued, the behaviour before).
 */
export const APPEND_CADENCE_MS = cadenceFromEnv(process.env.TRIB_APPEND_CADENCE_MS);

function cadenceFromEnv(raw: string | undefined): number {
  const n = raw === undefined || raw === '' ? 4 : Number(raw);
  return Number.isFinite(n) && n >= 0 && n <= 100 ? n : 4;
}

export class AppendCadence {
  private lastAt = -Infinity;

  constructor(private readonly everyMs = APPEND_CADENCE_MS) {}

  /** A batch is handed over now. */
  handedOver(): void {
    this.lastAt = performance.now();
  }

  /** How long a batch that is not full should still wait for company, ms (0: hand it over now). */
  waitMs(): number {
    if (this.everyMs <= 0) return 0;
    const left = this.lastAt + this.everyMs - performance.now();
    return left > 0 ? left : 0;
  }

  /** Waits the rest of the cadence (at most everyMs); resolves at once when there is nothing to wait. */
  async linger(): Promise<boolean> {
    const ms = this.waitMs();
    if (ms <= 0) return false;
    await new Promise<void>((resolve) => setTimeout(resolve, ms));
    return true;
  }
}
