// The error class and codes live in common/errors.ts (every layer and the page share
// them). This file stays so that core's modules keep one short import path.
export { ShmError, corrupt, type ShmErrorCode } from '../common/errors'
