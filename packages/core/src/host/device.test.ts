import { describe, expect, it } from 'vitest';
import { IommufdError } from '../uapi/errno.js';
import { DmaFault } from './device.js';
import { mapPattern, mockFixture } from '../__tests__/mock-host.js';

describe('PciDevice DMA arguments (regressions found by the uAPI fuzz)', () => {
  it('refuses a transaction the bus cannot carry with EINVAL instead of a RangeError', async () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    mapPattern(f, ioas, 0x100000n, 1);
    dev.attachPt(ioas);
    const einval = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(IommufdError);
      expect((e as IommufdError).code).toBe('EINVAL');
    };
    await einval(dev.dma.read(0x100000n, -1));
    await einval(dev.dma.read(0x100000n, 1.5));
    await einval(dev.dma.read(-4096n, 8));
    await einval(dev.dma.read(1n << 64n, 8));
    await einval(dev.dma.read(0x100000n, 8, { pasid: 1.5 }));
    await einval(dev.dma.write(0x100000n, new Uint8Array(4), { pasid: 1 << 20 }));
    // Valid arguments still work, and an unmapped IOVA is still a DmaFault.
    expect((await dev.dma.read(0x100000n, 4)).every((b) => b === 0x5a)).toBe(true);
    await expect(dev.dma.read(0x200000n, 4)).rejects.toBeInstanceOf(DmaFault);
  });
});
