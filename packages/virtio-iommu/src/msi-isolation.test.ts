import { describe, expect, it } from 'vitest';
import { IommufdError, createHost } from '@ioasid/core';
import { plugin } from './plugin.js';
import { qemuQ35 } from './presets.js';
import { deviceGroup } from '@ioasid/core/internal';

// device.c iommufd_device_bind in an x86 guest with virtio-iommu: no interrupt remapping, so the
// guest's MSIs are not isolated and iommufd binds only with allow_unsafe_interrupts set.
const WARNING =
  'MSI interrupts are not secure, they cannot be isolated by the platform. Check that platform features like interrupt remapping are enabled. Use the "allow_unsafe_interrupts" module parameter to override';

describe('virtio-iommu on q35: MSIs not isolated', () => {
  const bdf = qemuQ35.devices[0].bdf;

  it('is EPERM without iommufd.allow_unsafe_interrupts, before the DMA ownership is claimed', () => {
    const host = createHost({ plugins: [plugin], profile: qemuQ35 });
    expect(host.units[0].msiIsolated).toBe(false);
    const fd = host.openIommufd();
    const dev = host.device(bdf);
    let err: unknown;
    try {
      dev.bindIommufd(fd);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IommufdError);
    expect(err).toMatchObject({ code: 'EPERM', errno: 1 });
    expect(dev.devId).toBeNull();
    expect(deviceGroup(dev).owner).toBeNull();
    expect(host.log.lines.some((l) => l.includes('MSI interrupts'))).toBe(false);
  });

  it('binds with the module parameter and logs the kernel warning once per bind', () => {
    const host = createHost({ plugins: [plugin], profile: qemuQ35, allowUnsafeInterrupts: true });
    const fd = host.openIommufd();
    const dev = host.device(bdf);
    const id = dev.bindIommufd(fd);
    expect(dev.devId).toBe(id);
    expect(host.log.lines.filter((l) => l === `vfio-pci ${bdf}: ${WARNING}`)).toHaveLength(1);
    dev.unbind();
    dev.bindIommufd(fd);
    expect(host.log.lines.filter((l) => l === `vfio-pci ${bdf}: ${WARNING}`)).toHaveLength(2);
  });

  it('binds silently when the profile says the platform isolates MSIs', () => {
    const profile = { ...qemuQ35, units: qemuQ35.units.map((u) => ({ ...u, msiIsolated: true })) };
    const host = createHost({ plugins: [plugin], profile });
    expect(host.device(bdf).bindIommufd(host.openIommufd())).toBeGreaterThan(0);
    expect(host.log.lines.some((l) => l.includes('MSI interrupts'))).toBe(false);
  });
});
