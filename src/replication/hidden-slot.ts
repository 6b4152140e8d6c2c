/**
 * A hidden slot on objects Tributary does not own the class of (a change's
 * row, a plain object): a private class field stamped onto the object.
 *
 * Why: the captures attach to a row the bytes it was read from (pg-wire-rows.ts,
 * mysql-row-images.ts), for the apply and the feed, and nothing else may see
 * them: no copy, spread, Object.assign, JSON text, key list, symbol list or
 * deep comparison. A non-enumerable symbol property (Object.defineProperty)
 * gave that, but a defineProperty is a call into the runtime per row: about
 * 0.2 us, 2% of the apply bench's process (issue 12). A private field is
 * added by the class's own constructor on whatever object a base constructor
 * returns (the "return override" of ECMAScript classes), with an inline
 * cache, like any property store, and is invisible to every reflection API.
 * A copy of the row does not have it, so a row made from another (a merge, a
 * transform) never carries the bytes of the one it came from.
 */

/** Returns its argument from `new`: the object a subclass's fields are then added to. */
class ReturnsTarget {
  constructor(target: object) {
    return target as ReturnsTarget;
  }
}

export interface HiddenSlot<T> {
  /** The value set on `o`, or undefined. */
  get(o: object): T | undefined;
  /** Sets it (a second set replaces the first). */
  set(o: object, value: T): void;
  /**
   * Gives a new object the slot, empty, from its constructor: objects of one constructor whose slot is set later
   * then have room for it in the object itself (V8 sizes them by what their first instances had when made).
   */
  reserve(o: object): void;
}

/** A new slot: each has a private name of its own. */
export function hiddenSlot<T>(): HiddenSlot<T> {
  class Slot extends ReturnsTarget {
    #value: T | undefined;
    constructor(target: object, value: T) {
      super(target);
      this.#value = value;
    }
    static get(o: object): T | undefined {
      return #value in o ? (o as Slot).#value : undefined;
    }
    static set(o: object, value: T): void {
      if (#value in o) (o as Slot).#value = value;
      else new Slot(o, value);
    }
    static reserve(o: object): void {
      if (!(#value in o)) new Slot(o, undefined as T);
    }
  }
  return Slot;
}
