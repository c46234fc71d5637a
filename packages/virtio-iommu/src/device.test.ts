import { describe, expect, it } from 'vitest';
import { VirtioIommuDevice, normalizeRegions, type ResvRegion } from './device.js';
import { DEFAULT_FEATURES, LINUX_DRIVER_FEATURES, VirtioIommuConfigError } from './config.js';
import { encodeAttach, encodeDetach, encodeMap, encodeProbe, encodeUnmap, parseProperties } from './requests.js';
import { decodeFault } from './records.js';
import {
  CONFIG_OFFSET,
  VIRTIO_F_VERSION_1,
  VIRTIO_IOMMU_ATTACH_F_BYPASS,
  VIRTIO_IOMMU_FAULT_F_ADDRESS,
  VIRTIO_IOMMU_FAULT_F_READ,
  VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_FAULT_R_DOMAIN,
  VIRTIO_IOMMU_FAULT_R_MAPPING,
  VIRTIO_IOMMU_FAULT_R_UNKNOWN,
  VIRTIO_IOMMU_F_BYPASS,
  VIRTIO_IOMMU_F_BYPASS_CONFIG,
  VIRTIO_IOMMU_F_MAP_UNMAP,
  VIRTIO_IOMMU_F_MMIO,
  VIRTIO_IOMMU_F_PROBE,
  VIRTIO_IOMMU_MAP_F_MMIO,
  VIRTIO_IOMMU_MAP_F_READ,
  VIRTIO_IOMMU_MAP_F_WRITE,
  VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK,
  VIRTIO_IOMMU_PROBE_T_RESV_MEM,
  VIRTIO_IOMMU_RESV_MEM_T_MSI,
  VIRTIO_IOMMU_RESV_MEM_T_RESERVED,
  VIRTIO_IOMMU_S_INVAL,
  VIRTIO_IOMMU_S_NOENT,
  VIRTIO_IOMMU_S_OK,
  VIRTIO_IOMMU_S_RANGE,
  VIRTIO_IOMMU_S_UNSUPP,
  bit,
} from './spec.js';
import { RW, attach, detach, map, status, unmap } from './__tests__/rig.js';

const MSI: ResvRegion = { start: 0xfee00000n, end: 0xfeefffffn, subtype: VIRTIO_IOMMU_RESV_MEM_T_MSI };
const HOLE: ResvRegion = { start: 0x4000_0000n, end: 0x4000_ffffn, subtype: VIRTIO_IOMMU_RESV_MEM_T_RESERVED };

function device(opts: Partial<ConstructorParameters<typeof VirtioIommuDevice>[0]> = {}): VirtioIommuDevice {
  return new VirtioIommuDevice({ endpoints: [{ id: 8, reserved: [MSI] }, { id: 9, reserved: [MSI, HOLE] }, { id: 10 }], config: { bypass: 0 }, ...opts });
}

/** A device whose driver accepted everything the Linux driver knows. */
function linuxDevice(opts: Partial<ConstructorParameters<typeof VirtioIommuDevice>[0]> = {}): VirtioIommuDevice {
  const d = device(opts);
  d.negotiate(LINUX_DRIVER_FEATURES & d.features);
  return d;
}

describe('configuration and features', () => {
  it('lays out struct virtio_iommu_config little-endian in 40 bytes', () => {
    const d = device({ config: { page_size_mask: 0x40201000n, input_range: { start: 0x1000n, end: 0x7f_ffff_ffffn }, domain_range: { start: 1, end: 0xffff }, probe_size: 256, bypass: 1 } });
    const c = d.config;
    const v = new DataView(c.buffer);
    expect(c.length).toBe(40);
    expect(v.getBigUint64(0, true)).toBe(0x40201000n);
    expect(v.getBigUint64(8, true)).toBe(0x1000n);
    expect(v.getBigUint64(16, true)).toBe(0x7f_ffff_ffffn);
    expect(v.getUint32(24, true)).toBe(1);
    expect(v.getUint32(28, true)).toBe(0xffff);
    expect(v.getUint32(32, true)).toBe(256);
    expect(c[36]).toBe(1);
    expect([...c.subarray(37)]).toEqual([0, 0, 0]);
  });

  it('refuses a configuration the device must not present', () => {
    expect(() => device({ config: { page_size_mask: 0n } })).toThrow(VirtioIommuConfigError);
    expect(() => device({ config: { bypass: 2 } })).toThrow(/0 or 1/);
    expect(() => device({ config: { input_range: { start: 2n, end: 1n } } })).toThrow(/input_range/);
    expect(() => device({ config: { domain_range: { start: 0, end: 2 ** 32 } } })).toThrow(/domain_range/);
    expect(() => device({ features: DEFAULT_FEATURES | bit(VIRTIO_IOMMU_F_BYPASS) })).toThrow(/both BYPASS and BYPASS_CONFIG/);
  });

  it('offers QEMU\'s feature set and negotiates a subset, refusing unoffered bits and a driver without VERSION_1', () => {
    const d = device();
    expect(d.features).toBe(DEFAULT_FEATURES);
    expect(d.negotiate(LINUX_DRIVER_FEATURES)).toBe(LINUX_DRIVER_FEATURES);
    expect(() => d.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_BYPASS))).toThrow(/did not offer \(BYPASS\)/);
    expect(() => d.negotiate(bit(VIRTIO_IOMMU_F_MAP_UNMAP))).toThrow(/VERSION_1/);
  });

  it('lets the driver write only bypass, only with BYPASS_CONFIG negotiated, keeping bit 0', () => {
    const d = device();
    d.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_MAP_UNMAP));
    d.writeConfig(CONFIG_OFFSET.bypass, Uint8Array.of(1));
    expect(d.config[36]).toBe(0);
    d.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_BYPASS_CONFIG));
    d.writeConfig(CONFIG_OFFSET.page_size_mask, Uint8Array.of(0xff));
    expect(d.config[0]).toBe(0);
    d.writeConfig(CONFIG_OFFSET.bypass, Uint8Array.of(0xff));
    expect(d.config[36]).toBe(1);
    expect(d.unattachedBypass).toBe(true);
  });
});

describe('request framing', () => {
  it('returns the buffers unwritten when there is no room for the tail', () => {
    const d = linuxDevice();
    expect(d.request(encodeAttach({ domain: 1, endpoint: 8 }), 3).length).toBe(0);
    expect(d.request(new Uint8Array(2), 4).length).toBe(0);
  });

  it('leaves an unknown request type unwritten (spec), QEMU writes S_UNSUPP', () => {
    const out = new Uint8Array(20);
    out[0] = 6;
    expect(linuxDevice().request(out, 4).length).toBe(0);
    const q = linuxDevice({ quirks: 'qemu' }).request(out, 4);
    expect([...q]).toEqual([VIRTIO_IOMMU_S_UNSUPP, 0, 0, 0]);
  });

  it('answers INVAL to a request cut short before its fields end', () => {
    expect(status(linuxDevice(), encodeMap({ domain: 1, virtStart: 0n, virtEnd: 0xfffn, physStart: 0n, flags: RW }).subarray(0, 30))).toBe(VIRTIO_IOMMU_S_INVAL);
  });

  it('ignores the head reserved bytes and writes the tail at the end of the writable part with zero reserved bytes', () => {
    const d = linuxDevice();
    const out = encodeAttach({ domain: 1, endpoint: 8 });
    out[1] = out[2] = out[3] = 0xaa;
    const a = d.request(out, 8);
    expect([...a]).toEqual([0, 0, 0, 0, VIRTIO_IOMMU_S_OK, 0, 0, 0]);
  });
});

describe('ATTACH', () => {
  it('rejects non-zero reserved bytes with INVAL (QEMU does not check them)', () => {
    expect(attach(linuxDevice(), 1, 8, 0, 1)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(attach(linuxDevice({ quirks: { attachReserved: 'qemu' } }), 1, 8, 0, 1)).toBe(VIRTIO_IOMMU_S_OK);
  });

  it('rejects unknown flags, and the BYPASS flag unless BYPASS_CONFIG was negotiated', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 8, 2)).toBe(VIRTIO_IOMMU_S_INVAL);
    const n = device();
    n.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_MAP_UNMAP));
    expect(attach(n, 1, 8, VIRTIO_IOMMU_ATTACH_F_BYPASS)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(attach(d, 1, 8, VIRTIO_IOMMU_ATTACH_F_BYPASS)).toBe(VIRTIO_IOMMU_S_OK);
  });

  it('answers NOENT for an unknown endpoint and RANGE for a domain outside domain_range', () => {
    const d = linuxDevice({ config: { bypass: 0, domain_range: { start: 1, end: 15 } } });
    expect(attach(d, 1, 99)).toBe(VIRTIO_IOMMU_S_NOENT);
    expect(attach(d, 0, 8)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(attach(d, 16, 8)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(attach(d, 15, 8)).toBe(VIRTIO_IOMMU_S_OK);
  });

  it('rejects a BYPASS flag inconsistent with the existing domain', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(attach(d, 1, 9, VIRTIO_IOMMU_ATTACH_F_BYPASS)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(attach(d, 2, 9, VIRTIO_IOMMU_ATTACH_F_BYPASS)).toBe(VIRTIO_IOMMU_S_OK);
    expect(attach(d, 2, 10)).toBe(VIRTIO_IOMMU_S_INVAL);
  });

  it('shares a domain between endpoints and detaches implicitly when an endpoint moves', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(attach(d, 1, 10)).toBe(VIRTIO_IOMMU_S_OK);
    expect([...d.domain(1)!.endpoints]).toEqual([8, 10]);
    expect(map(d, 1, 0x1000n, 0x1fffn, 0xa000n)).toBe(VIRTIO_IOMMU_S_OK);
    expect(attach(d, 2, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.domainOf(8)?.id).toBe(2);
    expect([...d.domain(1)!.endpoints]).toEqual([10]);
    // Moving the last endpoint out: domain 1 and its mapping cease to exist.
    expect(attach(d, 2, 10)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.domain(1)).toBeUndefined();
    expect(attach(d, 1, 9)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.domain(1)!.mappings.size).toBe(0);
  });

  it('answers OK to attaching an endpoint to the domain it is already in', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.domain(1)!.endpoints.size).toBe(1);
  });

  it('refuses with UNSUPP an endpoint whose reserved regions the domain\'s mappings already use', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 10)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0x4000_0000n, 0x4000_0fffn, 0x1000n)).toBe(VIRTIO_IOMMU_S_OK);
    expect(attach(d, 1, 9)).toBe(VIRTIO_IOMMU_S_UNSUPP);
    expect(d.domainOf(9)).toBeUndefined();
  });
});

describe('DETACH', () => {
  it('answers NOENT for an unknown endpoint, INVAL when not attached to that domain', () => {
    const d = linuxDevice();
    expect(detach(d, 1, 99)).toBe(VIRTIO_IOMMU_S_NOENT);
    expect(detach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(detach(d, 2, 8)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(d.domainOf(8)?.id).toBe(1);
  });

  it('ignores reserved bytes; the last detach destroys the domain and frees its ID', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0x1000n, 0x1fffn, 0x1000n)).toBe(VIRTIO_IOMMU_S_OK);
    const out = encodeDetach({ domain: 1, endpoint: 8 });
    out.fill(0xff, 12, 20);
    expect(status(d, out)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.domain(1)).toBeUndefined();
    expect(d.translate(8, 0x1000n, false)).toMatchObject({ ok: false, fault: { reason: VIRTIO_IOMMU_FAULT_R_DOMAIN } });
    expect(attach(d, 1, 8, VIRTIO_IOMMU_ATTACH_F_BYPASS)).toBe(VIRTIO_IOMMU_S_OK);
  });
});

describe('MAP', () => {
  it('must reject unknown flags, and MMIO unless F_MMIO was negotiated', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0x1000n, 0x1fffn, 0n, 1 << 3)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(map(d, 1, 0x1000n, 0x1fffn, 0n, VIRTIO_IOMMU_MAP_F_MMIO | VIRTIO_IOMMU_MAP_F_WRITE)).toBe(VIRTIO_IOMMU_S_OK);
    const n = device();
    n.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_MAP_UNMAP));
    expect(attach(n, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(n, 1, 0x1000n, 0x1fffn, 0n, VIRTIO_IOMMU_MAP_F_MMIO)).toBe(VIRTIO_IOMMU_S_INVAL);
  });

  it('answers NOENT for a missing domain, INVAL on a bypass domain, UNSUPP without MAP_UNMAP', () => {
    const d = linuxDevice();
    expect(map(d, 1, 0x1000n, 0x1fffn, 0n)).toBe(VIRTIO_IOMMU_S_NOENT);
    expect(attach(d, 2, 8, VIRTIO_IOMMU_ATTACH_F_BYPASS)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 2, 0x1000n, 0x1fffn, 0n)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(unmap(d, 2, 0x1000n, 0x1fffn)).toBe(VIRTIO_IOMMU_S_INVAL);
    const n = device();
    n.negotiate(bit(VIRTIO_F_VERSION_1));
    expect(attach(n, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(n, 1, 0x1000n, 0x1fffn, 0n)).toBe(VIRTIO_IOMMU_S_UNSUPP);
    expect(unmap(n, 1, 0x1000n, 0x1fffn)).toBe(VIRTIO_IOMMU_S_UNSUPP);
  });

  it('rejects virt_end <= virt_start with INVAL and a range not aligned on the granule with RANGE', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0x1000n, 0x1000n, 0n)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(map(d, 1, 0x2000n, 0x1fffn, 0n)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(map(d, 1, 0x1800n, 0x1fffn, 0n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(map(d, 1, 0x1000n, 0x1fffn, 0x800n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(map(d, 1, 0x1000n, 0x17ffn, 0n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(d.domain(1)!.mappings.size).toBe(0);
    // Byte granularity (bit 0 of page_size_mask): any alignment maps.
    const b = linuxDevice({ config: { bypass: 0, page_size_mask: 1n } });
    expect(attach(b, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(b, 1, 0x1001n, 0x1002n, 0x7n)).toBe(VIRTIO_IOMMU_S_OK);
  });

  it('rejects virtual addresses outside input_range with RANGE', () => {
    const d = linuxDevice({ config: { bypass: 0, input_range: { start: 0x1000n, end: 0xffff_ffffn } } });
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0n, 0xfffn, 0n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(map(d, 1, 0xffff_f000n, 0x1_0000_0fffn, 0n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(map(d, 1, 0xffff_f000n, 0xffff_ffffn, 0n)).toBe(VIRTIO_IOMMU_S_OK);
  });

  it('rejects any overlap with an existing mapping with INVAL: no replace, no merge', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0x10000n, 0x1ffffn, 0x100000n)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0x1f000n, 0x20fffn, 0n)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(map(d, 1, 0xf000n, 0x10fffn, 0n)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(map(d, 1, 0x10000n, 0x1ffffn, 0x100000n)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(map(d, 1, 0x20000n, 0x20fffn, 0n)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.domain(1)!.mappings.size).toBe(2);
  });

  it('rejects a mapping over an attached endpoint\'s RESV_MEM region with RANGE', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 9)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0xfee0_0000n, 0xfee0_0fffn, 0n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(map(d, 1, 0x3fff_f000n, 0x4000_0fffn, 0n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(map(d, 1, 0x4001_0000n, 0x4001_0fffn, 0n)).toBe(VIRTIO_IOMMU_S_OK);
  });

  it('QEMU checks neither alignment, input_range nor RESV_MEM', () => {
    const d = linuxDevice({ quirks: 'qemu', config: { bypass: 0, input_range: { start: 0n, end: 0xffffn } } });
    expect(attach(d, 1, 9)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0x1800n, 0x1fffn, 0x10n)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0xfee0_0000n, 0xfee0_0fffn, 0n)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0x1000n, 0x1fffn, 0n)).toBe(VIRTIO_IOMMU_S_INVAL);
  });

  it('translates PA = VA - virt_start + phys_start with the mapping\'s permissions', () => {
    const d = linuxDevice();
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(d, 1, 0x1000n, 0x1fffn, 0xa000n, VIRTIO_IOMMU_MAP_F_READ)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.translate(8, 0x1234n, false)).toEqual({ ok: true, pa: 0xa234n, flags: VIRTIO_IOMMU_MAP_F_READ });
    expect(d.translate(8, 0x1234n, true)).toEqual({
      ok: false,
      fault: { reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_WRITE, endpoint: 8, address: 0x1234n },
    });
    expect(d.translate(8, 0x2000n, false)).toMatchObject({ ok: false, fault: { reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_READ } });
    // The MSI doorbell is identity, the RESERVED hole faults.
    expect(d.translate(8, 0xfee0_0040n, true)).toMatchObject({ ok: true, pa: 0xfee0_0040n });
    expect(attach(d, 1, 10)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.translate(99, 0n, false)).toMatchObject({ ok: false, fault: { reason: VIRTIO_IOMMU_FAULT_R_UNKNOWN } });
    // QEMU sets the access flag only for a permission fault.
    const q = linuxDevice({ quirks: { faultAccessFlags: 'qemu' } });
    expect(attach(q, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    expect(q.translate(8, 0x2000n, true)).toMatchObject({ ok: false, fault: { flags: VIRTIO_IOMMU_FAULT_F_ADDRESS } });
    expect(map(d, 1, 0x3000n, 0x3fffn, 0xb000n, VIRTIO_IOMMU_MAP_F_WRITE)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.translate(10, 0x3000n, false)).toMatchObject({ ok: false, fault: { flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_READ } });
  });
});

describe('UNMAP', () => {
  function space(maps: Array<[bigint, bigint]>, quirks?: 'qemu'): VirtioIommuDevice {
    const d = linuxDevice({ config: { bypass: 0, page_size_mask: 1n }, ...(quirks ? { quirks } : {}) });
    expect(attach(d, 1, 8)).toBe(VIRTIO_IOMMU_S_OK);
    for (const [s, e] of maps) expect(map(d, 1, s, e, s)).toBe(VIRTIO_IOMMU_S_OK);
    return d;
  }
  const left = (d: VirtioIommuDevice): Array<[bigint, bigint]> => d.domain(1)!.mappings.all().map((m) => [m.start, m.end]);

  it.each([
    ['(1) unmap(0,4) on an empty space', [], [0n, 4n], VIRTIO_IOMMU_S_OK, []],
    ['(2) a=map(0,9); unmap(0,9)', [[0n, 9n]], [0n, 9n], VIRTIO_IOMMU_S_OK, []],
    ['(3) a=map(0,4); b=map(5,9); unmap(0,9)', [[0n, 4n], [5n, 9n]], [0n, 9n], VIRTIO_IOMMU_S_OK, []],
    ['(4) a=map(0,9); unmap(0,4) would split a', [[0n, 9n]], [0n, 4n], VIRTIO_IOMMU_S_RANGE, [[0n, 9n]]],
    ['(5) a=map(0,4); b=map(5,9); unmap(0,4)', [[0n, 4n], [5n, 9n]], [0n, 4n], VIRTIO_IOMMU_S_OK, [[5n, 9n]]],
    ['(6) a=map(0,4); unmap(0,9)', [[0n, 4n]], [0n, 9n], VIRTIO_IOMMU_S_OK, []],
    ['(7) a=map(0,4); b=map(10,14); unmap(0,14)', [[0n, 4n], [10n, 14n]], [0n, 14n], VIRTIO_IOMMU_S_OK, []],
  ] as Array<[string, Array<[bigint, bigint]>, [bigint, bigint], number, Array<[bigint, bigint]>]>)('spec example %s', (_name, maps, range, want, rest) => {
    const d = space(maps);
    expect(unmap(d, 1, range[0], range[1])).toBe(want);
    expect(left(d)).toEqual(rest);
  });

  it('removes nothing when a later mapping would be split (spec); QEMU keeps the removals made before it', () => {
    const spec = space([[0n, 4n], [5n, 9n], [10n, 19n]]);
    expect(unmap(spec, 1, 0n, 14n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(left(spec)).toEqual([[0n, 4n], [5n, 9n], [10n, 19n]]);
    const qemu = space([[0n, 4n], [5n, 9n], [10n, 19n]], 'qemu');
    expect(unmap(qemu, 1, 0n, 14n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(left(qemu)).toEqual([[10n, 19n]]);
  });

  it('refuses a range starting inside a mapping', () => {
    const d = space([[0n, 9n]]);
    expect(unmap(d, 1, 5n, 20n)).toBe(VIRTIO_IOMMU_S_RANGE);
    expect(left(d)).toEqual([[0n, 9n]]);
  });

  it('answers NOENT for a missing domain; reserved bytes give INVAL after unmapping', () => {
    const d = space([[0n, 9n]]);
    expect(unmap(d, 7, 0n, 9n)).toBe(VIRTIO_IOMMU_S_NOENT);
    expect(unmap(d, 1, 0n, 9n, 1)).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(left(d)).toEqual([]);
  });
});

describe('PROBE', () => {
  const probe = (d: VirtioIommuDevice, endpoint: number, inLen = 512 + 4): Uint8Array => d.request(encodeProbe({ endpoint }), inLen);

  it('reports RESV_MEM properties (MSI and RESERVED), zero-fills the rest and ends with the tail', () => {
    const a = probe(linuxDevice(), 9);
    expect(a.length).toBe(516);
    expect(a[512]).toBe(VIRTIO_IOMMU_S_OK);
    expect(parseProperties(a.subarray(0, 512))).toEqual([
      { type: VIRTIO_IOMMU_PROBE_T_RESV_MEM, subtype: VIRTIO_IOMMU_RESV_MEM_T_RESERVED, start: 0x4000_0000n, end: 0x4000_ffffn },
      { type: VIRTIO_IOMMU_PROBE_T_RESV_MEM, subtype: VIRTIO_IOMMU_RESV_MEM_T_MSI, start: 0xfee00000n, end: 0xfeefffffn },
    ]);
    // Header: type 1, length 20 (without the header); the second property 24 bytes after the first.
    expect([...a.subarray(0, 4)]).toEqual([1, 0, 20, 0]);
    expect(a[24]).toBe(1);
    expect(a.subarray(48, 512).every((x) => x === 0)).toBe(true);
  });

  it('answers NOENT for an unknown endpoint and INVAL for a properties buffer smaller than probe_size', () => {
    const d = linuxDevice();
    expect(probe(d, 99)[512]).toBe(VIRTIO_IOMMU_S_NOENT);
    const small = probe(d, 9, 256);
    expect(small[252]).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(small.subarray(0, 252).every((x) => x === 0)).toBe(true);
  });

  it('writes no property and answers INVAL when the properties do not fit probe_size', () => {
    const d = linuxDevice({ config: { bypass: 0, probe_size: 40 } });
    const a = probe(d, 9, 44);
    expect(a[40]).toBe(VIRTIO_IOMMU_S_INVAL);
    expect(a.subarray(0, 40).every((x) => x === 0)).toBe(true);
    expect(probe(d, 8, 44)[40]).toBe(VIRTIO_IOMMU_S_OK);
  });

  it('leaves the buffer unwritten when PROBE is not offered, UNSUPP when offered but not negotiated', () => {
    const off = device({ features: DEFAULT_FEATURES & ~bit(VIRTIO_IOMMU_F_PROBE) });
    expect(probe(off, 8).length).toBe(0);
    const notNegotiated = device();
    notNegotiated.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_MAP_UNMAP));
    expect(probe(notNegotiated, 8)[512]).toBe(VIRTIO_IOMMU_S_UNSUPP);
  });

  it('adds the draft page-size-mask property when asked, intersected with the device mask', () => {
    const d = linuxDevice({ probePageSizeMask: true, endpoints: [{ id: 8, pageSizeMask: 0x40201000n }] });
    expect(parseProperties(probe(d, 8).subarray(0, 512))).toEqual([{ type: VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK, mask: 0x40201000n }]);
  });

  it('presents sorted, non-overlapping regions with at most one MSI region', () => {
    expect(
      normalizeRegions([
        { start: 0x2000n, end: 0x2fffn, subtype: 1 },
        { start: 0x1000n, end: 0x1fffn, subtype: 0 },
        { start: 0x1800n, end: 0x27ffn, subtype: 0 },
        { start: 0x9000n, end: 0x9fffn, subtype: 1 },
      ]),
    ).toEqual([
      { start: 0x1000n, end: 0x2fffn, subtype: 0 },
      { start: 0x9000n, end: 0x9fffn, subtype: 0 },
    ]);
  });
});

describe('bypass', () => {
  it('lets unattached endpoints bypass when BYPASS_CONFIG is offered and bypass = 1, even without negotiating it', () => {
    const d = device({ config: { bypass: 1 } });
    d.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_MAP_UNMAP));
    expect(d.translate(8, 0x1234n, true)).toMatchObject({ ok: true, pa: 0x1234n });
  });

  it('blocks unattached endpoints with bypass = 0 (fault R_DOMAIN), unless the legacy BYPASS was negotiated', () => {
    const d = linuxDevice();
    expect(d.translate(8, 0x1000n, false)).toEqual({ ok: false, fault: { reason: VIRTIO_IOMMU_FAULT_R_DOMAIN, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_READ, endpoint: 8, address: 0x1000n } });
    const legacy = device({ features: bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_MAP_UNMAP) | bit(VIRTIO_IOMMU_F_BYPASS) });
    expect(legacy.translate(8, 0x1000n, false).ok).toBe(false);
    legacy.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_BYPASS));
    expect(legacy.translate(8, 0x1000n, false).ok).toBe(true);
  });

  it('makes endpoints of an ATTACH_F_BYPASS domain bypass; reset detaches all and keeps bypass, system reset restores it', () => {
    const d = device({ config: { bypass: 1 } });
    d.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_MAP_UNMAP) | bit(VIRTIO_IOMMU_F_BYPASS_CONFIG) | bit(VIRTIO_IOMMU_F_MMIO));
    d.writeConfig(CONFIG_OFFSET.bypass, Uint8Array.of(0));
    expect(attach(d, 1, 8, VIRTIO_IOMMU_ATTACH_F_BYPASS)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.translate(8, 0x5000n, true)).toMatchObject({ ok: true, pa: 0x5000n });
    expect(d.translate(9, 0x5000n, true).ok).toBe(false);
    d.reset();
    expect(d.domains).toEqual([]);
    expect(d.config[36]).toBe(0);
    d.systemReset();
    expect(d.config[36]).toBe(1);
  });
});

describe('fault reports', () => {
  it('queue while no event buffer takes them, bounded; then drop and count', () => {
    const d = device({ maxPendingEvents: 2 });
    for (let i = 0; i < 3; i++) d.reportFault({ reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS, endpoint: 8, address: BigInt(i) << 12n });
    expect(d.pendingEvents).toBe(2);
    expect(d.droppedEvents).toBe(1);
    const taken: Uint8Array[] = [];
    d.eventSink = (r) => (taken.push(r), true);
    d.flushEvents();
    expect(taken.map((r) => decodeFault(r)?.address)).toEqual([0n, 0x1000n]);
    expect(d.takeEvents()).toEqual([]);
  });
});

describe('the specification\'s example', () => {
  it('attach(endpoint 8, domain 1); map 0x1000-0x1fff -> 0xa000 READ; unmap; detach', () => {
    const d = linuxDevice();
    expect(status(d, encodeAttach({ domain: 1, endpoint: 8 }))).toBe(VIRTIO_IOMMU_S_OK);
    const m = encodeMap({ domain: 1, virtStart: 0x1000n, virtEnd: 0x1fffn, physStart: 0xa000n, flags: VIRTIO_IOMMU_MAP_F_READ });
    expect(Buffer.from(m).toString('hex')).toBe('03000000' + '01000000' + '0010000000000000' + 'ff1f000000000000' + '00a0000000000000' + '01000000');
    expect(status(d, m)).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.translate(8, 0x1fffn, false)).toMatchObject({ ok: true, pa: 0xafffn });
    expect(status(d, encodeUnmap({ domain: 1, virtStart: 0x1000n, virtEnd: 0x1fffn }))).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.translate(8, 0x1000n, false).ok).toBe(false);
    expect(status(d, encodeDetach({ domain: 1, endpoint: 8 }))).toBe(VIRTIO_IOMMU_S_OK);
    expect(d.domains).toEqual([]);
  });
});

it('offers the Linux driver everything it needs: VERSION_1 and MAP_UNMAP', () => {
  expect(DEFAULT_FEATURES & bit(VIRTIO_IOMMU_F_MAP_UNMAP)).not.toBe(0n);
  expect(DEFAULT_FEATURES & bit(VIRTIO_IOMMU_F_BYPASS_CONFIG)).not.toBe(0n);
  expect(DEFAULT_FEATURES & bit(VIRTIO_IOMMU_F_MMIO)).not.toBe(0n);
});
