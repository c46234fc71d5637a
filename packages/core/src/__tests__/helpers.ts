
import { createHost, type Host } from '../host/host.js';
import type { Iommufd } from '../iommufd/iommufd.js';
import type { StructLayout, FieldSpec, StructValue } from '../uapi/struct.js';

export interface Fixture {
  host: Host;
  fd: Iommufd;
}

export function bareFixture(): Fixture {
  const host = createHost();
  return { host, fd: host.openIommufd() };
}

/** Encodes a command struct with `size` set to the kernel's size. */
export function encodeCmd<F extends readonly FieldSpec[]>(layout: StructLayout<F>, init: Partial<StructValue<F>>): Uint8Array {
  return layout.encode(layout.make({ size: layout.size, ...init } as Partial<StructValue<F>>));
}

/** Runs a raw ioctl and returns [rc, decoded struct]. */
export function rawIoctl<F extends readonly FieldSpec[]>(fd: Iommufd, request: number, layout: StructLayout<F>, init: Partial<StructValue<F>>): [number, StructValue<F>] {
  const buf = encodeCmd(layout, init);
  const rc = fd.ioctl(request, buf);
  return [rc, layout.decode(buf)];
}

export { errCode } from '../testing/err-code.js';

/** A xorshift32 generator from `seed`: each call returns an integer in [0, m). */
export function xorshiftRandom(seed: number): (m: number) => number {
  let x = seed | 0;
  return (m) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % m;
  };
}
