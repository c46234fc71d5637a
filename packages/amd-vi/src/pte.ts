/**
 * What the AMD-Vi page-table modules share besides core's radix engine: errno values and the walk
 * failure helper.
 */
import { WALK_ADDRESS_SIZE, WALK_NOT_PRESENT, WALK_RESERVED_BITS, type WalkResult } from '@ioasid/core/driver';

export const EINVAL = 22;
export const ENOMEM = 12;

export function walkFail(out: WalkResult, fault: number, level: number): false {
  out.fault = fault;
  out.level = level;
  out.perm = 0;
  out.dirty = false;
  return false;
}

export { WALK_ADDRESS_SIZE, WALK_NOT_PRESENT, WALK_RESERVED_BITS };
