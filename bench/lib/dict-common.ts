// The record bench/shared-dict.ts shares: a player with 9 numeric fields, as a
// struct (defineStruct), a plain object and a Map, and the increment loops the
// peer runs on each. Separate functions per kind keep every call site monomorphic.
import { defineStruct, MappedMap, type StructInstance } from 'interprocess-objects'

export const Player = defineStruct(
  {
    level: 'int32',
    hp: 'int32',
    mp: 'int32',
    strength: 'int32',
    agility: 'int32',
    gold: 'float64',
    xp: 'float64',
    x: 'float64',
    y: 'float64',
  },
  'BenchPlayer',
)

export type PlayerView = StructInstance<typeof Player.schema>

export const FIELDS = ['level', 'hp', 'mp', 'strength', 'agility', 'gold', 'xp', 'x', 'y'] as const
export type PlayerObject = Record<(typeof FIELDS)[number], number>

export function initialPlayer(): PlayerObject {
  return { level: 1, hp: 100, mp: 50, strength: 10, agility: 12, gold: 0.5, xp: 1000.25, x: -3.5, y: 7.75 }
}

/** Increments each of the 9 fields `passes` times. */
export function incrementStruct(p: PlayerView, passes: number): void {
  for (let i = 0; i < passes; i++) {
    p.level += 1
    p.hp += 1
    p.mp += 1
    p.strength += 1
    p.agility += 1
    p.gold += 1
    p.xp += 1
    p.x += 1
    p.y += 1
  }
}

export function incrementObject(p: PlayerObject, passes: number): void {
  for (let i = 0; i < passes; i++) {
    p.level += 1
    p.hp += 1
    p.mp += 1
    p.strength += 1
    p.agility += 1
    p.gold += 1
    p.xp += 1
    p.x += 1
    p.y += 1
  }
}

/** The same loop on a plain object, as a separate function so its call site sees only plain objects. */
export function incrementLocal(p: PlayerObject, passes: number): void {
  for (let i = 0; i < passes; i++) {
    p.level += 1
    p.hp += 1
    p.mp += 1
    p.strength += 1
    p.agility += 1
    p.gold += 1
    p.xp += 1
    p.x += 1
    p.y += 1
  }
}

export function incrementMap(m: MappedMap<string, number>, passes: number): void {
  for (let i = 0; i < passes; i++) {
    m.set('level', m.get('level')! + 1)
    m.set('hp', m.get('hp')! + 1)
    m.set('mp', m.get('mp')! + 1)
    m.set('strength', m.get('strength')! + 1)
    m.set('agility', m.get('agility')! + 1)
    m.set('gold', m.get('gold')! + 1)
    m.set('xp', m.get('xp')! + 1)
    m.set('x', m.get('x')! + 1)
    m.set('y', m.get('y')! + 1)
  }
}

export type RecordKind = 'struct' | 'object' | 'map'
