// The Player struct that test/struct.test.ts and its peer process both define: one
// schema file, as an application would share it between its processes.
import { array, defineStruct, utf8 } from 'interprocess-objects'

export const Vec2 = defineStruct({ x: 'float64', y: 'float64' }, 'Vec2')
export const Player = defineStruct(
  {
    id: 'uint32',
    hp: 'int16',
    score: 'float64',
    alive: 'bool',
    big: 'int64',
    ubig: 'uint64',
    name: utf8(16),
    pos: Vec2,
    history: array('float32', 8),
    flags: 'uint8',
    tag: 'int8',
    f: 'float32',
    u16: 'uint16',
    i32: 'int32',
  },
  'Player',
)
