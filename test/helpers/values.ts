// Generated values for round-trip tests: everything the codec promises to carry.
import fc from 'fast-check'

const key = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'length', '', '0', 'toString'))
const mapKey = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.double(), fc.bigInt(), fc.boolean(), fc.constant(null), fc.constant(undefined))

const typedArray = fc.oneof(
  fc.int8Array({ maxLength: 8 }),
  fc.uint8Array({ maxLength: 8 }),
  fc.uint8ClampedArray({ maxLength: 8 }),
  fc.int16Array({ maxLength: 8 }),
  fc.uint16Array({ maxLength: 8 }),
  fc.int32Array({ maxLength: 8 }),
  fc.uint32Array({ maxLength: 8 }),
  fc.float32Array({ maxLength: 8 }),
  fc.float64Array({ maxLength: 8 }),
  fc.bigInt64Array({ maxLength: 4 }),
  fc.bigUint64Array({ maxLength: 4 }),
)

const primitive = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(), // includes -0, NaN, ±Infinity
  fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 10 }), // lone surrogates included
  fc.date({ noInvalidDate: true }), // invalid Dates are checked apart: deepStrictEqual says NaN !== NaN
)

export const { value } = fc.letrec<{ value: unknown; container: unknown }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, primitive, typedArray, tie('container')),
  container: fc.oneof(
    fc.array(tie('value'), { maxLength: 5 }),
    fc.sparseArray(tie('value'), { maxLength: 6 }),
    fc.dictionary(key, tie('value'), { maxKeys: 5 }),
    fc.uniqueArray(fc.tuple(mapKey, tie('value')), { maxLength: 4, selector: ([k]) => k, comparator: 'SameValueZero' }).map((e) => new Map(e)),
    fc.uniqueArray(mapKey, { maxLength: 4, comparator: 'SameValueZero' }).map((e) => new Set(e)),
  ),
}))
