import { describe, expect, it } from 'vitest';
import { ApplyLag, STUCK_MS } from '../../../../src/queues/processors/apply-lag.ts';

describe('ApplyLag', () => {
  it('is null before the first batch, then the mean lag of the last applied batch', () => {
    const lag = new ApplyLag();
    expect(lag.figure(1_000, 0)).toBeNull();
    lag.batch(9_990, 10_000);
    lag.applied(9_985, 10_005);
    expect(lag.figure(10_100, 0)).toBe(20);
  });

  it('keeps the batch figure while a batch is applied within STUCK_MS (normal flow)', () => {
    const lag = new ApplyLag();
    lag.batch(9_990, 10_000);
    lag.applied(9_990, 10_010);
    lag.batch(10_000, 10_010);
    // Mid-apply, under STUCK_MS: still the last applied batch's figure, not the pending one's age.
    expect(lag.figure(10_010 + STUCK_MS - 1, 10_020)).toBe(20);
    expect(lag.stuck(10_010 + STUCK_MS - 1)).toBe(false);
  });

  it('grows with the clock while a batch stays unapplied, from its oldest change, then falls back once applied', () => {
    const lag = new ApplyLag();
    lag.batch(9_990, 10_000);
    lag.applied(9_990, 10_010);
    // Idle source: drained, caught up, 0.
    lag.drained(10_020);
    expect(lag.figure(11_100, 10_500)).toBe(0);
    // A minute later a change commits at 70_000 and its apply blocks.
    lag.batch(70_000, 70_005);
    expect(lag.figure(70_500, 69_000)).toBe(0);
    expect(lag.stuck(71_005)).toBe(true);
    expect(lag.figure(71_005, 70_750)).toBe(1_005);
    // The idle minute is not counted: the oldest unapplied change's age, not "last lag + time since the last apply".
    expect(lag.figure(75_000, 74_750)).toBe(5_000);
    expect(lag.figure(80_000, 79_750)).toBe(10_000);
    lag.applied(70_000, 80_100);
    expect(lag.stuck(80_200)).toBe(false);
    expect(lag.figure(80_200, 80_000)).toBe(10_100);
    // Caught up again: 0 only after that figure was written once.
    lag.drained(80_300);
    expect(lag.figure(81_200, 80_250)).toBe(0);
  });

  it('never shows less than the last measured lag while stuck', () => {
    const lag = new ApplyLag();
    lag.batch(0, 5_000);
    lag.applied(0, 8_000); // 8 s behind (a backlog)
    lag.batch(7_900, 8_000);
    expect(lag.figure(9_500, 8_100)).toBe(8_000);
    expect(lag.figure(20_000, 19_900)).toBe(12_100);
  });

  it('is not zeroed by an earlier drained read while a batch is in hand', () => {
    const lag = new ApplyLag();
    lag.batch(0, 0);
    lag.applied(0, 50);
    lag.drained(100);
    lag.batch(5_000, 5_000);
    expect(lag.figure(5_500, 4_000)).toBe(50);
  });

  it('a new attempt starts from the figure last published, and counts a change left unapplied as stuck at once', () => {
    const lag = new ApplyLag(3_000);
    expect(lag.figure(10_000, 0)).toBe(3_000);
    lag.behind(5_000);
    expect(lag.stuck(10_000)).toBe(true);
    expect(lag.figure(10_000, 0)).toBe(5_000);
    expect(lag.figure(12_000, 10_000)).toBe(7_000);
    // A healthy attempt reads its batch at once: the batch figure rules again, then its measured lag.
    lag.batch(5_000, 12_010);
    expect(lag.figure(12_100, 12_000)).toBe(3_000);
    lag.applied(5_000, 12_050);
    expect(lag.figure(12_300, 12_100)).toBe(7_050);
  });
});
