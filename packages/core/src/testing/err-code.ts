/**
 * The one errno helper of the test suites: runs `fn` and answers the errno code of the IommufdError it
 * throws, or 'ok'. Anything else it throws is rethrown, so a crash never passes for an errno.
 */
import { IommufdError } from '../uapi/errno.js';

/** 'ok' when `fn` returns, the errno name (e.g. 'EINVAL') when it throws an IommufdError; rethrows anything else. */
export function errCode(fn: () => unknown): string {

  try {
    fn();
  } catch (e) {
    if (e instanceof IommufdError) return e.code;
    throw e;
  }
  return 'ok';
}
