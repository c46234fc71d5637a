/**
 * The fault and queue-error lines checked against an independent source: the format strings of
 * drivers/iommu/riscv/iommu.c (riscv_iommu_fault, riscv_iommu_fltq_process, riscv_iommu_cmdq_process, all on
 * the IOMMU's device, so each line starts with the driver and device name) applied by a printf of their own
 * (kernelPrintf) to the values read from the fault record's bytes in the specification's layout, then read back
 * by parseFaultLine. No expected value comes from this package's renderers.
 */
import { describe, expect, it } from 'vitest';
import { PERM_EXEC, PERM_READ, PERM_WRITE, type FailedAccess } from '@ioasid/core/driver';
import { kernelPrintf } from '@ioasid/core/testing';
import { faultCodec } from './fault-codec.js';
import { commandQueueErrorLine, parseFaultLine } from './logs.js';

// dev_printk's "<driver> <device>: " prefix, then the driver's formats.
const FAULT = '%s %s: Fault %d devid: 0x%x iotval: %llx iotval2: %llx';
const FQ_ERROR = '%s %s: Queue #%u error; memory fault:%d overflow:%d';
const CQ_ERROR = '%s %s: Queue #%u error; fault:%d timeout:%d illegal:%d fence_w_ip:%d';
// Queue numbers as the driver assigns them (RISCV_IOMMU_INTR_CQ 0, RISCV_IOMMU_INTR_FQ 1).
const CQ = 0;
const FQ = 1;

/** The fault record as the specification lays it out: dw0 11:0 CAUSE, 63:40 DID; dw2 iotval; dw3 iotval2. */
function recordFields(rec: Uint8Array): {
  cause: number;
  did: number;
  iotval: bigint;
  iotval2: bigint;
} {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const dw0 = dv.getBigUint64(0, true);
  return {
    cause: Number(dw0 & 0xfffn),
    did: Number(dw0 >> 40n),
    iotval: dv.getBigUint64(16, true),
    iotval2: dv.getBigUint64(24, true),
  };
}

function access(over: Partial<FailedAccess>): FailedAccess {
  return { unit: 0, rid: 0, pasid: -1, addr: 0n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: false, grpid: 0, last: true, ...over };
}

// A PCI unit is bound by the PCI driver (module iommu_pci), a platform unit by "riscv,iommu".
const UNITS = [
  ['riscv-iommu@0000:00:01.0', 'iommu_pci', '0000:00:01.0'],
  ['riscv-iommu@3010000.iommu', 'riscv,iommu', '3010000.iommu'],
] as const;

/** Failed accesses: each kind of failure the model reports, addresses up to 64 bits. */
const CASES: { rid: number; addr: bigint; perm: number; failure: FailedAccess['failure'] }[] = [
  { rid: 0x10, addr: 0x1000n, perm: PERM_READ, failure: 'not-present' },
  { rid: 0x18, addr: 0xfffff000n, perm: PERM_WRITE, failure: 'not-present' },
  { rid: 0xabcdef, addr: 0x7f_ffff_f123n, perm: PERM_EXEC | PERM_READ, failure: 'permission-exec' },
  { rid: 0x08, addr: 0x2000n, perm: PERM_READ, failure: 'no-context' },
  { rid: 0x100, addr: 0xffff_ffff_ffff_f000n, perm: PERM_WRITE, failure: 'table-fault' },
];

describe('RISC-V IOMMU fault lines against riscv_iommu_fault() and the queue error formats', () => {
  it.each(UNITS.flatMap(([unit, driver, device]) => CASES.map((c) => ({ unit, driver, device, ...c }))))(
    '$unit: devid $rid, the line a failed access makes Linux print, and back',
    ({ unit, driver, device, rid, addr, perm, failure }) => {
      const rec = faultCodec.encodeFault(access({ rid, addr, perm, failure }));
      const r = recordFields(rec);
      expect(r.cause, 'a failed access has a cause').not.toBe(0);
      const line = kernelPrintf(FAULT, driver, device, r.cause, r.did, r.iotval, r.iotval2);
      expect(faultCodec.renderLog(faultCodec.decodeFault(rec, 0), '', unit)).toEqual([line]);
      const back = parseFaultLine(line);
      expect(back?.ok && back.value).toEqual({
        driver,
        device,
        cause: r.cause,
        did: r.did,
        iotval: r.iotval,
        iotval2: r.iotval2,
      });
    }
  );

  it('prints nothing for a record with cause 0 (riscv_iommu_fault reports only a non-zero cause)', () => {
    const rec = faultCodec.encodeFault(access({ rid: 0x10, addr: 0x1000n }));
    const f = { ...faultCodec.decodeFault(rec, 0), reason: 0 };
    expect(faultCodec.renderLog(f, '', UNITS[0][0])).toEqual([]);
  });

  it.each(UNITS)('%s: the fault queue overflow and the command queue error lines', (unit, driver, device) => {
    expect(faultCodec.renderOverflow?.('fault', unit)).toEqual([kernelPrintf(FQ_ERROR, driver, device, FQ, 0, 1)]);
    expect(commandQueueErrorLine(unit, true, false, true, false)).toBe(kernelPrintf(CQ_ERROR, driver, device, CQ, 1, 0, 1, 0));
    expect(commandQueueErrorLine(unit, false, true, false, true)).toBe(kernelPrintf(CQ_ERROR, driver, device, CQ, 0, 1, 0, 1));
  });

  it('reads back a line whose values fill their fields (12-bit cause, 24-bit devid, 64-bit iotval)', () => {
    const line = kernelPrintf(FAULT, 'riscv,iommu', '3010000.iommu', 4095, 0xffffff, 0xffff_ffff_ffff_ffffn, 0x1n);
    const back = parseFaultLine(`[   12.345678] ${line}`);
    expect(back?.ok && back.value).toEqual({
      driver: 'riscv,iommu',
      device: '3010000.iommu',
      cause: 4095,
      did: 0xffffff,
      iotval: 0xffff_ffff_ffff_ffffn,
      iotval2: 1n,
    });
  });
});
