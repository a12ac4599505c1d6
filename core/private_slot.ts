// A hidden per-object slot: what the library attaches to objects it hands out that are
// the platform's own (a Uint8Array over the segment: a loan's ticket, a byte view's
// record). A private class field, added to the object by a constructor that returns
// it ("return override"), costs about as much as a property store, where
// Object.defineProperty of a symbol on a TypedArray took ~0.4 µs (a slow runtime path,
// on every loan and every byte view read). Unlike a symbol property, nothing outside
// can see it (Reflect.ownKeys), overwrite it or forge it; a Proxy never sees the
// lookup (a `#slot in proxy` check runs no trap); the object keeps its prototype.

class ReturnsItsArgument {
  constructor(o: object) {
    // The object this constructor "makes" is `o`: the subclass's fields land on it.
    return o
  }
}

export interface PrivateSlot<T> {
  /** Attaches `value` to `o` (once per object: a second call replaces it). */
  set(o: object, value: T): void
  /** The value attached to `o`, or undefined (also for a primitive or a function, whatever its declared type). */
  get(o: object): T | undefined
}

/** A new slot: every call makes a private name of its own. */
export function privateSlot<T>(): PrivateSlot<T> {
  class Slot extends ReturnsItsArgument {
    #value: T
    constructor(o: object, value: T) {
      super(o)
      this.#value = value
    }
    static has(o: object): o is Slot {
      return #value in o
    }
    static read(o: Slot): T {
      return o.#value
    }
    static write(o: Slot, value: T): void {
      o.#value = value
    }
  }
  return {
    set(o, value) {
      if (Slot.has(o)) Slot.write(o, value)
      else new Slot(o, value)
    },
    get(o) {
      // (`#value in 5` throws: public calls may hand anything to what looks a slot up.)
      return typeof o === 'object' && o !== null && Slot.has(o) ? Slot.read(o) : undefined
    },
  }
}
