/**
 * `ioasid demo`: a guided tour of what the model does, printed for people.
 */
import { createHost, uapi, ERRNO, errnoName, type Host } from '@ioasid/core';
import type { Output } from '../output.js';

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

export function runDemo(out: Output): Host {
  const host = createHost();
  out.heading('1. open("/dev/iommu") and allocate an IOAS');
  const fd = host.openIommufd();
  const ioas = fd.ioas.alloc();
  out.line(`iommufd is fd ${fd.fd}; IOMMU_IOAS_ALLOC -> ioas_id ${ioas}`);
  const ranges = fd.ioas.iovaRanges(ioas);
  out.line(`IOMMU_IOAS_IOVA_RANGES: ${ranges.ranges.map((r) => `[${hex(r.start)}, ${hex(r.last)}]`).join(' ')} alignment ${ranges.alignment}`);

  out.heading('2. IOMMU_IOAS_MAP user memory at a fixed and at an allocated IOVA');
  const len = 2n << 20n;
  const va = host.process.mmap(len);
  host.process.poke(va, new TextEncoder().encode('hello from user memory'));
  const fixed = fd.ioas.map({ ioasId: ioas, userVa: va, length: len, iova: 0x1000_0000n });
  out.line(`mapped ${len >> 10n} KiB of user VA ${hex(va)} at IOVA ${hex(fixed)} (FIXED_IOVA)`);
  const auto = fd.ioas.map({ ioasId: ioas, userVa: va, length: 1n << 20n });
  out.line(`mapped 1 MiB at allocated IOVA ${hex(auto)} (aligned to the length, never 0)`);
  out.line(`pinned pages charged to the process: ${host.process.lockedPages}`);

  out.heading('3. The raw ioctl path: the same handlers, kernel errno rules');
  const buf = uapi.iommu_ioas_map.encode(
    uapi.iommu_ioas_map.make({ size: 40, flags: uapi.IOMMU_IOAS_MAP_FIXED_IOVA | uapi.IOMMU_IOAS_MAP_READABLE, ioas_id: ioas, user_va: va, length: 4096n, iova: fixed }),
  );
  const rc = fd.ioctl(uapi.IOMMU_IOAS_MAP, buf);
  out.line(`ioctl(IOMMU_IOAS_MAP 0x${uapi.IOMMU_IOAS_MAP.toString(16)}) over an existing area -> ${rc} (${errnoName(rc)}): ${fd.lastError?.detail ?? ''}`);
  const short = new Uint8Array(40);
  new DataView(short.buffer).setUint32(0, 39, true);
  out.line(`size 39 < min_size 40 -> ${fd.ioctl(uapi.IOMMU_IOAS_MAP, short)} (-EINVAL is -${ERRNO.EINVAL})`);

  out.heading('4. IOMMU_IOAS_COPY shares the pinned pages with a second IOAS');
  const ioas2 = fd.ioas.alloc();
  const copied = fd.ioas.copy({ dstIoasId: ioas2, srcIoasId: ioas, srcIova: fixed, length: 64n << 10n });
  out.line(`copied 64 KiB of IOAS ${ioas} @ ${hex(fixed)} into IOAS ${ioas2} @ ${hex(copied)}; pinned pages still ${host.process.lockedPages}`);

  out.heading('5. IOMMU_IOAS_UNMAP: no splitting, unmap-all');
  try {
    fd.ioas.unmap(ioas, fixed + 4096n, 4096n);
  } catch (e) {
    out.line(`unmap of one page inside a 2 MiB area -> ${(e as Error).message}`);
  }
  out.line(`unmap-all of IOAS ${ioas} removed ${fd.ioas.unmapAll(ioas)} bytes`);
  out.line(`unmap-all of IOAS ${ioas2} removed ${fd.ioas.unmapAll(ioas2)} bytes; pinned pages now ${host.process.lockedPages}`);
  host.process.close(fd.fd);
  out.line(`closed the iommufd: every object destroyed`);
  return host;
}
