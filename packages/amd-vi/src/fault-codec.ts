/**
 * The FaultCodec of an AMD IOMMU: core's failed accesses as the event log entries the IOMMU writes,
 * page requests as PPR log entries, page responses as COMPLETE_PPR_REQUEST commands, and the lines
 * Linux prints.
 *
 * | failure                    | event                   | flags                                   |
 * |----------------------------|-------------------------|-----------------------------------------|
 * | not-present, address-size, table-fault | IO_PAGE_FAULT | PR=0, RW for a write, GN with a PASID |
 * | permission-*               | IO_PAGE_FAULT           | PR=1, PE=1 (NX for an execute request)  |
 * | blocked                    | IO_PAGE_FAULT, domain 0 | the DTE has TV=1 and no table (Linux's blocked/clear DTE) |
 * | no-context                 | INVALID_DEVICE_REQUEST (with a PASID), ILLEGAL_DEV_TABLE_ENTRY (without) |
 *
 * With GN the 16 bits Linux prints as `domain=` carry the PASID (the event has one field for both).
 */
import {
  PAGE_RESP_FAILURE,
  PAGE_RESP_INVALID,
  PAGE_RESP_SUCCESS,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  permOf,
  PluginContractError,
  type FailedAccess,
  type DeviceInfo,
  type FaultCodec,
  type IommuFault,
  type PageRequestVerdict,
  type PageResponse,
} from '@ioasid/core/driver';
import { AMD_EVENT, EVENT_FLAG, EVTLOG_ENTRY_SIZE, PPRLOG_ENTRY_SIZE, PPR_FLAG, amdEventName, decodeEvent, decodePprEntry, encodeEvent, encodePprEntry, type AmdEvent } from './records.js';
import { CMD_ENTRY_SIZE, decodeCommand, encodeCommand } from './commands.js';
import { renderAmdEventLines, renderAmdLogRestartLine, type AmdEventEra } from './logs.js';

/** The normalized fault with what the event carries beyond it (the printed domain and flags). */
export interface AmdIommuFault extends IommuFault {
  /** The 20-bit DomainID / PASID field of the entry. */
  readonly domain: number;
  /** Event flags (59:48). */
  readonly flags: number;
  /** The raw entry. */
  readonly event: AmdEvent;
}

/** Whether a fault decoded by core came from this codec, so its event entry and flags can be read. */
export function isAmdIommuFault(f: IommuFault): f is AmdIommuFault {
  return typeof (f as Partial<AmdIommuFault>).flags === 'number' && typeof (f as Partial<AmdIommuFault>).event === 'object';
}

/** How {@link AmdFaultCodec} renders the unit's lines. */
export interface AmdFaultCodecOptions {
  /** Which kernel's lines renderLog produces (default 'v6'). */
  readonly era?: AmdEventEra;
  /** PCI segment of the unit (for segment-qualified devices). */
  readonly segment?: number;
  /** N of the unit's ivhdN device. */
  readonly ivhd?: number;
  /** The IOMMU's PCI function, printed in 5.x event lines (default `0000:00:00.2`). */
  readonly iommuPciAddress?: string;
  /** amd_iommu_max_pasid: (1 << (PASmax + 1)) - 1 with GTSup, 0 without (no PASID is valid then). */
  readonly maxPasid?: number;
  /**
   * The DeviceID the IOMMU sees for a requester ID (the IVRS alias table): what an event log entry
   * carries. Absent: the requester ID itself.
   */
  readonly ivrsAlias?: (rid: number) => number;
  /**
   * Whether the kernel finds a device with driver data at a DeviceID (amd_iommu_report_page_fault()'s
   * pci_get_domain_bus_and_slot() and dev_iommu_priv_get()): its IO_PAGE_FAULT line then has the
   * device's prefix, otherwise `device=` inside the brackets. Absent: always.
   */
  readonly deviceKnown?: (devid: number) => boolean;
}

function errEvent(bytes: Uint8Array, what: string): never {
  throw new PluginContractError('amd-vi', `${what}: ${bytes.length} bytes is not a valid record`);
}

/** The flags an IO_PAGE_FAULT carries for a failed access. */
export function eventFlagsFor(a: FailedAccess): number {
  let flags = 0;
  if (a.pasid >= 0) flags |= EVENT_FLAG.GN;
  if (a.perm & PERM_WRITE) flags |= EVENT_FLAG.RW;
  if (a.perm & PERM_EXEC) flags |= EVENT_FLAG.NX;
  // A request without the privileged bit is a user request.
  if (a.pasid >= 0 && !(a.perm & PERM_PRIV)) flags |= EVENT_FLAG.US;
  if (a.failure.startsWith('permission-')) flags |= EVENT_FLAG.PR | EVENT_FLAG.PE;
  return flags;
}

/** The AMD IOMMU's fault codec (core's `FaultCodec`): event log entries, PPR log entries, COMPLETE_PPR_REQUEST, and iommu_print_event's lines. */
export class AmdFaultCodec implements FaultCodec {
  readonly faultRecordSize = EVTLOG_ENTRY_SIZE;
  readonly pageRequestSize = PPRLOG_ENTRY_SIZE;

  constructor(private readonly options: AmdFaultCodecOptions = {}) {}

  /**
   * The event log entry of a failed access, under the DeviceID the IOMMU saw (the requester's IVRS alias):
   * a device behind an alias is reported as its alias.
   */
  encodeFault(a: FailedAccess): Uint8Array {
    const devid = this.options.ivrsAlias?.(a.rid) ?? a.rid;
    const pasidField = a.pasid >= 0 ? a.pasid & 0xfffff : (a.tag ?? 0) & 0xffff;
    if (a.failure === 'no-context') {
      return encodeEvent({
        code: a.pasid >= 0 ? AMD_EVENT.INVALID_DEVICE_REQUEST : AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY,
        devid,
        pasidOrDomain: pasidField,
        flags: eventFlagsFor(a) & (EVENT_FLAG.GN | EVENT_FLAG.RW | EVENT_FLAG.US | EVENT_FLAG.NX),
        address: a.addr,
      });
    }
    const domain = a.failure === 'blocked' ? (a.pasid >= 0 ? a.pasid : 0) : pasidField;
    return encodeEvent({ code: AMD_EVENT.IO_PAGE_FAULT, devid, pasidOrDomain: domain, flags: eventFlagsFor(a), address: a.addr });
  }

  decodeFault(record: Uint8Array, unit: number): AmdIommuFault {
    const r = decodeEvent(record);
    if (!r.ok) errEvent(record, 'event log entry');
    const e = r.value;
    const gn = (e.flags & EVENT_FLAG.GN) !== 0;
    let perm = e.flags & EVENT_FLAG.RW ? PERM_WRITE : PERM_READ;
    if (e.flags & EVENT_FLAG.NX) perm |= PERM_EXEC;
    if (gn && !(e.flags & EVENT_FLAG.US)) perm |= PERM_PRIV;
    const name = amdEventName(e.code) ?? 'UNKNOWN';
    return {
      kind: 'dma',
      unit,
      rid: e.devid,
      pasid: gn ? e.pasidOrDomain : -1,
      addr: e.address,
      perm,
      grpid: 0,
      last: true,
      reason: e.code,
      reasonText: name,
      stage2: false,
      domain: e.pasidOrDomain,
      flags: e.flags,
      event: e,
    };
  }

  encodePageRequest(a: FailedAccess): Uint8Array {
    let flags = 0;
    if (a.perm & PERM_READ) flags |= PPR_FLAG.READ;
    if (a.perm & PERM_WRITE) flags |= PPR_FLAG.WRITE;
    if (a.perm & PERM_EXEC) flags |= PPR_FLAG.EXEC;
    if (!(a.perm & PERM_PRIV)) flags |= PPR_FLAG.US;
    if (a.pasid >= 0) flags |= PPR_FLAG.GN;
    return encodePprEntry({ devid: a.rid, pasid: a.pasid >= 0 ? a.pasid : 0, tag: a.grpid, last: a.last, flags, address: a.addr & ~0xfffn });
  }

  /** ppr.c iommu_call_iopf_notifier(): READ/WRITE/EXEC, PRIV when US is clear, PASID only with GN. */
  decodePageRequest(record: Uint8Array, unit: number): IommuFault {
    const r = decodePprEntry(record);
    if (!r.ok) errEvent(record, 'PPR log entry');
    const p = r.value;
    const perm = permOf({ read: p.flags & PPR_FLAG.READ, write: p.flags & PPR_FLAG.WRITE, exec: p.flags & PPR_FLAG.EXEC, priv: !(p.flags & PPR_FLAG.US) });
    return {
      kind: 'page-request',
      unit,
      rid: p.devid,
      pasid: p.flags & PPR_FLAG.GN ? p.pasid : -1,
      addr: p.address & ~0xfffn,
      perm,
      grpid: p.tag,
      last: p.last,
      reason: 0,
      reasonText: 'PPR_REQ_FAULT',
      stage2: false,
    };
  }

  /**
   * ppr.c iommu_call_iopf_notifier(): a request without a PASID (GN=0, ppr_is_valid(): "Request ignored due to
   * GN=0", dev_dbg only) or with PASID 0 or one at or past the device's max_pasids ("Invalid PASID", PASID 0
   * being what requests without a PASID use) never reaches the iopf queue: the driver completes it with
   * FAILURE (amd_iommu_complete_ppr()). max_pasids = min(amd_iommu_max_pasid, the device's 1 << PASID width).
   */
  screenPageRequest(f: IommuFault, dev: DeviceInfo | undefined): PageRequestVerdict | null {
    if (dev === undefined) return null;
    if (f.pasid < 0) return { code: PAGE_RESP_FAILURE, lines: [] };
    const maxPasids = dev.pasidBits > 0 ? Math.min(this.options.maxPasid ?? 0, 2 ** dev.pasidBits) : 0;
    if (f.pasid === 0 || f.pasid >= maxPasids) return { code: PAGE_RESP_FAILURE, lines: [`AMD-Vi: Invalid PASID : 0x${f.pasid.toString(16)}, device : 0x${f.rid.toString(16)}`] };
    return null;
  }

  /** build_complete_ppr(): status = the core code (SUCCESS 0, INVALID 1, FAILURE 2), GN only with a PASID. */
  encodePageResponse(r: PageResponse): Uint8Array {
    return encodeCommand({ op: 'COMPLETE_PPR_REQUEST', devid: r.rid, pasid: r.pasid >= 0 ? r.pasid : 0, gn: r.pasid >= 0, tag: r.grpid, status: r.code });
  }

  decodePageResponse(bytes: Uint8Array): PageResponse {
    if (bytes.length !== CMD_ENTRY_SIZE) errEvent(bytes, 'COMPLETE_PPR_REQUEST');
    const r = decodeCommand(bytes);
    if (!r.ok || r.value.op !== 'COMPLETE_PPR_REQUEST') errEvent(bytes, 'COMPLETE_PPR_REQUEST');
    const c = r.value;
    const code = c.status === PAGE_RESP_SUCCESS ? PAGE_RESP_SUCCESS : c.status === PAGE_RESP_INVALID ? PAGE_RESP_INVALID : PAGE_RESP_FAILURE;
    return { rid: c.devid, pasid: c.gn ? c.pasid : -1, grpid: c.tag, code };
  }

  /**
   * Log overflow: the IOMMU sets EVT_OVERFLOW / PPR_OVERFLOW and stops logging; the interrupt thread
   * restarts the log (amd_iommu_restart_event_logging(), amd_iommu_restart_ppr_log()).
   */
  renderOverflow(queue: 'fault' | 'page-request', _unitName: string): string[] {
    return [renderAmdLogRestartLine(queue === 'fault' ? 'Event' : 'PPR')];
  }

  renderLog(f: IommuFault, device: string, _unitName: string): string[] {
    let e: AmdEvent;
    if (isAmdIommuFault(f)) e = f.event;
    else {
      // A fault built elsewhere (a test, a tool): rebuild the entry from its normalized fields.
      const r = decodeEvent(
        encodeEvent({
          code: f.reason || AMD_EVENT.IO_PAGE_FAULT,
          devid: f.rid,
          pasidOrDomain: f.pasid >= 0 ? f.pasid : 0,
          flags: (f.perm & PERM_WRITE ? EVENT_FLAG.RW : 0) | (f.pasid >= 0 ? EVENT_FLAG.GN : 0),
          address: f.addr,
        }),
      );
      if (!r.ok) return [`AMD-Vi: ${r.error}`];
      e = r.value;
    }
    // A DeviceID without a device (an alias) is printed in the IOMMU's segment (iommu->pci_seg->id).
    const known = this.options.deviceKnown?.(e.devid) ?? true;
    const segment = known ? /^([0-9a-fA-F]{4}):/.exec(device) : null;
    return renderAmdEventLines(e, {
      era: this.options.era ?? 'v6',
      deviceKnown: known,
      segment: segment ? parseInt(segment[1], 16) : (this.options.segment ?? 0),
      ivhd: this.options.ivhd ?? 0,
      iommuPciAddress: this.options.iommuPciAddress,
    });
  }
}
