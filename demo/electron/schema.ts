// The demo's shared layout: one schema file used by main, the frame workers and the
// renderer (through the bridge). Pure: no Node, no Electron.
import { defineStruct } from 'interprocess-objects'

export const WIDTH = 320
export const HEIGHT = 200
export const FRAME_BYTES = WIDTH * HEIGHT * 4

/** Written by main after each frame; read by the renderer (and `paused` written by it). */
export const Control = defineStruct(
  {
    /** Frames completed. */
    frame: 'uint32',
    width: 'uint16',
    height: 'uint16',
    /** Which half of the pixels region holds the newest complete frame (0 or 1). */
    latest: 'uint8',
    /** Set by the renderer: producers stop advancing while true. */
    paused: 'bool',
    workers: 'uint8',
    /** Milliseconds the workers took for the newest frame. */
    computeMs: 'float64',
    zoom: 'float64',
    centerX: 'float64',
    centerY: 'float64',
  },
  'DemoControl',
)

/** Regions of the "frames" segment: two frame buffers (double buffering) and the control block. */
export const regions = { control: Control.byteLength, pixels: FRAME_BYTES * 2 }

/** Channel the renderer posts UI events on (clicks to re-centre the view). */
export const channels = ['input'] as const

export const SEGMENT_SIZE = 8 << 20
