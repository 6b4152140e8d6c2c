/**
 * A first-in first-out queue for the capture's decoded messages: push at the back, take from the front, both
 * O(1). Why (issue 12 profile of the PG -> PG apply bench): the queue was an array emptied with shift(), which V8
 * makes O(1) by moving the array's start only when the heap allows it; while incremental marking runs it may not,
 * and each shift then moves every queued message (up to QUEUE_HIGH of them) down one slot.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, removed; undefined when empty. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 4096 && this.head * 2 >= this.items.length) {
      // Mostly taken: the rest moves to a fresh array, so the taken slots do not pile up.
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
