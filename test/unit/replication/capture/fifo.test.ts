import { describe, expect, it } from 'vitest';
import { Fifo } from '../../../../src/replication/capture/fifo.ts';

describe('Fifo', () => {
  it('gives items back in the order pushed, across compactions, interleaved with pushes', () => {
    const q = new Fifo<number>();
    const taken: number[] = [];
    let next = 0;
    // Push in bursts and take a little less than pushed, so the front passes the compaction point many times.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 997; i++) q.push(next++);
      for (let i = 0; i < 900; i++) taken.push(q.shift()!);
      expect(q.length).toBe(next - taken.length);
    }
    while (q.length > 0) taken.push(q.shift()!);
    expect(taken).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(q.shift()).toBeUndefined();
    expect(q.length).toBe(0);
    q.push(7);
    expect(q.length).toBe(1);
    expect(q.shift()).toBe(7);
  });
});
