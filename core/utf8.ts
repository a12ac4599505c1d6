// UTF-8 decoding lives in common/utf8.ts (struct layouts in every process use it);
// this file keeps core's import path.
export { decodeUtf8 } from '../common/utf8'
