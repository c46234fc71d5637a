import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { decodeText, deviceOf, groupByDevice } from './decode.js';
import { decoders } from './plugins.js';

// Real lines as Linux prints them (drivers/iommu/intel/dmar.c dmar_fault_do_one, arm-smmu-v3.c).
const VTD_READ = 'DMAR: [DMA Read NO_PASID] Request device [5c:00.0] fault addr 0x7ff000 [fault reason 0x06] PTE Read access is not set';
const VTD_WRITE = 'DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0x1000 [fault reason 0x05] PTE Write access is not set';

describe('decodeText', () => {
  it('finds the vendor of a VT-d fault line by itself', () => {
    const [item] = decodeText({ text: VTD_READ }, decoders());
    expect(item.ok).toBe(true);
    expect(item.output?.vendor).toBe('vtd');
    expect(item.output?.fields.FR).toBe(6);
    expect(item.output?.linux).toBe(VTD_READ);
  });

  it('decodes a bare register value when the kind is named, and says why when it is not', () => {
    const named = decodeText({ text: '0xd2008c40660462', vendor: 'vtd', kind: 'cap' }, decoders());
    expect(named[0].ok).toBe(true);
    expect(named[0].output?.kind).toBe('cap');
    const bare = decodeText({ text: 'hello world' }, decoders());
    expect(bare[0].ok).toBe(false);
    expect(bare[0].errors?.map((e) => e.vendor)).toEqual(['vtd', 'smmuv3', 'amd-vi', 'virtio-iommu']);
  });

  it('decodes several lines one by one and groups them by device', () => {
    const items = decodeText({ text: `${VTD_READ}\n\n${VTD_WRITE}\r\n${VTD_READ.replace('0x7ff000', '0x800000')}` }, decoders());
    expect(items).toHaveLength(3);
    expect(items.map(deviceOf)).toEqual(['0000:5c:00.0', '0000:00:02.0', '0000:5c:00.0']);
    const groups = groupByDevice(items);
    expect(groups.map((g) => [g.device, g.items.length])).toEqual([
      ['0000:5c:00.0', 2],
      ['0000:00:02.0', 1],
    ]);
  });

  it('returns nothing for blank input and an error for an unknown vendor', () => {
    expect(decodeText({ text: '  \n ' }, decoders())).toEqual([]);
    expect(decodeText({ text: VTD_READ, vendor: 'nope' }, decoders())[0].ok).toBe(false);
  });
});

describe('multi-line records', () => {
  const SMMU_EVENT = [
    'arm-smmu-v3 arm-smmu-v3.0.auto: event 0x10 received:',
    'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000010000000010',
    'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000020800000000',
    'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x00000000ffff0000',
    'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000000',
  ];

  it('reads an SMMUv3 event header with its four dwords as one record, and the VT-d line after it alone', () => {
    const items = decodeText({ text: [...SMMU_EVENT, VTD_READ].join('\n') }, decoders());
    expect(items.map((i) => [i.output?.vendor, i.output?.kind])).toEqual([
      ['smmuv3', 'event'],
      ['vtd', 'dma-fault'],
    ]);
    expect(items[0].output?.fields.StreamID).toBe(0x100);
    expect(items[0].output?.fields.InputAddr).toBe('0xffff0000');
  });
});
