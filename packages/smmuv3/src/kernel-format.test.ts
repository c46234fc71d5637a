/**
 * The event lines of arm_smmu_dump_raw_event() / arm_smmu_dump_event() checked against independent sources:
 * their dev_err() format strings applied by a printf of their own (kernelPrintf), and a record with the lines a
 * real kernel printed for it. Neither expected value comes from this package's renderers.
 */
import { describe, expect, it } from 'vitest';
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, readLe64Words, type FailedAccess } from '@ioasid/core/driver';
import { kernelPrintf } from '@ioasid/core/testing';
import { SmmuFaultCodec } from './fault-codec.js';
import { renderEventLines } from './logs.js';

// dev_err(smmu->dev, ...): "arm-smmu-v3 <dev_name>: " before each format.
const PREFIX = 'arm-smmu-v3 %s: ';
const RAW_HEAD = 'event 0x%02x received:';
const RAW_WORD = '\t0x%016llx';
const TRANSLATION = 'event: %s client: %s sid: %#x ssid: %#x iova: %#llx ipa: %#llx';
const DETAIL = '%s %s %s %s "%s"%s%s stag: %#x';

function access(over: Partial<FailedAccess>): FailedAccess {
  return { unit: 0, rid: 0, pasid: -1, addr: 0n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: false, grpid: 0, last: true, ...over };
}

describe('SMMUv3 event lines against arm_smmu_dump_event() formats', () => {
  const codec = new SmmuFaultCodec();

  it.each([
    // StreamID, SubstreamID (-1: none, printed as IOMMU_NO_PASID 0), IOVA, access, failure, event_str[] name
    [0x100, -1, 0x90000f040n, PERM_WRITE, 'not-present', 'F_TRANSLATION', 'unpriv data write'],
    [0x20600, 3, 0xff9bc000n, PERM_READ, 'permission-read', 'F_PERMISSION', 'unpriv data read'],
    [0x11, 0x1ffff, 0xffff_ffff_f000n, PERM_READ | PERM_PRIV | PERM_EXEC, 'not-present', 'F_TRANSLATION', 'priv inst read'],
  ] as const)('sid %#x ssid %d: the decoded lines', (sid, ssid, iova, perm, failure, name, access3) => {
    const record = codec.encodeFault(access({ rid: sid, pasid: ssid, addr: iova, perm, failure }));
    const f = codec.decodeFault(record, 0);
    const lines = codec.renderLog(f, '0000:01:00.0', 'fc900000.iommu');
    const p = (fmt: string, ...a: (string | number | bigint)[]) => kernelPrintf(PREFIX + fmt, 'fc900000.iommu', ...a);
    expect(lines[0]).toBe(p(RAW_HEAD, name === 'F_TRANSLATION' ? 0x10 : 0x13));
    // The raw dump is the record the SMMU wrote, dword by dword.
    expect(lines.slice(1, 5)).toEqual(readLe64Words(record, 4).map((w) => p(RAW_WORD, w)));
    // CLASS is IN for a fault on the input address: event_class_str[EVTQ_1_CLASS_IN].
    const [priv, kind, rw] = access3.split(' ');
    expect(lines.slice(5)).toEqual([
      p(TRANSLATION, name, '0000:01:00.0', sid, ssid < 0 ? 0 : ssid, iova, 0n),
      p(DETAIL, priv, kind, rw, 's1', 'Input address caused fault', '', '', 0),
    ]);
  });

  it('renders a real event record as the kernel printed it', () => {
    // An event a real arm64 board's SMMU (fc900000.iommu) logged for a PCIe endpoint (public report): dwords 1-3 as
    // its raw dump printed them, dword 0 from the event ID and StreamID its summary line names.
    const words = [0x0000_0100_0000_0010n, 0x0000_0200_0000_0000n, 0x0000_0009_0000_f040n, 0n];
    const lines = renderEventLines(words, { client: '0000:01:00.0', device: 'fc900000.iommu' });
    expect(lines).toEqual([
      'arm-smmu-v3 fc900000.iommu: event 0x10 received:',
      'arm-smmu-v3 fc900000.iommu: \t0x0000010000000010',
      'arm-smmu-v3 fc900000.iommu: \t0x0000020000000000',
      'arm-smmu-v3 fc900000.iommu: \t0x000000090000f040',
      'arm-smmu-v3 fc900000.iommu: \t0x0000000000000000',
      'arm-smmu-v3 fc900000.iommu: event: F_TRANSLATION client: 0000:01:00.0 sid: 0x100 ssid: 0x0 iova: 0x90000f040 ipa: 0x0',
      'arm-smmu-v3 fc900000.iommu: unpriv data write s1 "Input address caused fault" stag: 0x0',
    ]);
  });
});
