// How a mapped view (proxy or class) says which record it stands for, so that
// putting it again shares the record instead of copying it.
import type { Heap } from '../heap'

export const MAPPED = Symbol('interprocess-objects.mapped')

export interface MappedHandle {
  readonly heap: Heap
  readonly ref: number
}

export function mappedHandleOf(value: object): MappedHandle | undefined {
  return (value as { [MAPPED]?: MappedHandle })[MAPPED]
}
