// The schema shared by test/bridge.test.ts, its child process and the renderer bundle
// that runs in the emulated main world: one file, as an app would have.
import { StructArray, array, defineStruct, utf8 } from 'interprocess-objects'

export const Vec2 = defineStruct({ x: 'float64', y: 'float64' }, 'BridgeVec2')
export const Stats = defineStruct(
  { frame: 'uint32', fps: 'float64', big: 'int64', ok: 'bool', name: utf8(16), pos: Vec2, history: array('float32', 4), ids: array('uint16', 3) },
  'BridgeStats',
)
export const Particle = defineStruct({ x: 'float32', mass: 'float64', id: 'uint16', alive: 'bool', label: utf8(6) }, 'BridgeParticle')

export const SAMPLES = 1024
export const PARTICLES = 8

/** Region sizes for SharedObjectsHost: name → bytes. */
export const regions = {
  stats: Stats.byteLength,
  samples: SAMPLES * 4,
  table: StructArray.byteLength(Particle, PARTICLES),
}
