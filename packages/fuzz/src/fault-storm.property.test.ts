/**
 * The fault storm property: whatever the storm of faulting DMAs, page request groups, reads, responses,
 * attach/detach/replace, rebinds and HWPT recycling does, every page request group gets exactly one response and
 * every DMA settles. It runs on the mock vendor and on real units (VT-d in scalable mode with page requests,
 * SMMUv3 with PRI), with an "exactly once" judge that reads the response records in the vendor's own hardware
 * layout. Short runs here; STORM_RUNS and STORM_SEED lengthen or replay one.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHost, uapi as U, type Host, type HostProfile, type Iommufd, type PciDevice } from '@ioasid/core';
import { PERM_READ, type FailedAccess, type FaultCodec, type IommuPlugin, type PageRequestFields, type PageResponse } from '@ioasid/core/driver';
import { errCode, mockPlugin } from '@ioasid/core/testing';
import { plugin as vtdPlugin, presets as vtdPresets } from '@ioasid/vtd';
import { plugin as smmuPlugin, presets as smmuPresets } from '@ioasid/smmuv3';
import { iommufdCtx } from '@ioasid/core/internal';

const PAGE = 4096n;
const REC = U.iommu_hwpt_pgfault.size;

/** A unit with page requests, and how its page response records name the group they answer. */
interface StormVendor {
  name: string;
  plugin: IommuPlugin;
  unit: HostProfile['units'][number];
  /** `rid/pasid/grpid` (pasid -1 when none) of a page response record, read from the hardware layout. */
  responseKey(bytes: Uint8Array): string;
}

function qword(bytes: Uint8Array, i: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(i * 8, true);
}

function bits(v: bigint, hi: number, lo: number): number {
  return Number((v >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n));
}

function presetUnit(presets: readonly HostProfile[], name: string, unit: string): HostProfile['units'][number] {
  const u = presets.find((p) => p.name.startsWith(name))?.units.find((x) => x.id === unit);
  if (!u) throw new Error(`no preset unit ${name} ${unit}`);
  return u;
}

const VENDORS: StormVendor[] = [
  {
    name: 'mock',
    plugin: mockPlugin(),
    unit: { id: 'mock0', vendor: 'mock', registers: {} },
    // The mock's page response: u32 rid, s32 pasid, u32 grpid, u32 code.
    responseKey: (b) => {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return `${dv.getUint32(0, true)}/${dv.getInt32(4, true)}/${dv.getUint32(8, true)}`;
    },
  },
  {
    // Scalable mode, 20-bit PASID, page requests (ECAP.PRS).
    name: 'vtd granite rapids',
    plugin: vtdPlugin,
    unit: presetUnit(vtdPresets, 'Dell PowerEdge R770', 'dmar1'),
    // VT-d page group response descriptor (intel-iommu.h QI_PGRP_*): qw0 type 0x9 in bits 3:0, PASID present
    // bit 4, response code 15:12, RID 31:16, PASID 51:32; qw1 PRG index 11:3.
    responseKey: (b) => {
      const q0 = qword(b, 0);
      const q1 = qword(b, 1);
      if (bits(q0, 3, 0) !== 0x9) return `not a page group response (type ${bits(q0, 3, 0)})`;
      return `${bits(q0, 31, 16)}/${bits(q0, 4, 4) ? bits(q0, 51, 32) : -1}/${bits(q1, 11, 3)}`;
    },
  },
  {
    // SMMU_IDR0.PRI, SSID 20 bits, no stall model.
    name: 'smmuv3 mmu-700',
    plugin: smmuPlugin,
    unit: presetUnit(smmuPresets, 'Neoverse V2 class server', 'smmu0'),
    // CMD_PRI_RESP (arm-smmu-v3.h CMDQ_PRI_*): dw0 opcode 0x41 in 7:0, SSV bit 11, SSID 31:12, SID 63:32;
    // dw1 PRG index 8:0, response 13:12.
    responseKey: (b) => {
      const d0 = qword(b, 0);
      const d1 = qword(b, 1);
      if (bits(d0, 7, 0) !== 0x41) return `not CMD_PRI_RESP (opcode ${bits(d0, 7, 0)})`;
      return `${bits(d0, 63, 32)}/${bits(d0, 11, 11) ? bits(d0, 31, 12) : -1}/${bits(d1, 8, 0)}`;
    },
  },
];

/** A fault queue: its object id and its fd. */
type Fault = ReturnType<Iommufd['fault']['alloc']>;

interface Env {
  host: Host;
  fd: Iommufd;
  ioas: number;
  devs: PciDevice[];
  devIds: number[];
  fault: Fault;
  /** A fault-capable HWPT on `ioas` using `fault`. */
  hwpt: number;
}

function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/** Two PRI devices behind the vendor's unit, both bound, device A attached to a fault-capable HWPT. */
function setup(v: StormVendor): Env {
  const profile: HostProfile = {
    name: `fault storm on ${v.name}`,
    units: [v.unit],
    devices: ['0000:00:01.0', '0000:00:05.0'].map((bdf, i) => ({
      bdf,
      unit: v.unit.id,
      group: i + 1,
      ats: true,
      pri: true,
      pasidBits: 20,
    })),
  };
  const host = createHost({ plugins: [v.plugin], profile });
  const fd = host.openIommufd();
  const devs = [...host.devices.values()];
  const devIds = devs.map((d) => d.bindIommufd(fd));
  const ioas = fd.ioas.alloc();
  const fault = fd.fault.alloc();
  const hwpt = fd.hwpt.alloc({
    devId: devIds[0],
    ptId: ioas,
    faultId: fault.id,
  });
  devs[0].attachPt(hwpt);
  return { host, fd, ioas, devs, devIds, fault, hwpt };
}

function respond(e: Env, cookie: number, c: number, f: Fault = e.fault): number {
  return e.host.process.write(f.fd, U.iommu_hwpt_page_response.encode({ cookie, code: c }));
}

/** One page of fresh user memory filled with `fill`, mapped at `iova` (a handler resolving the fault). */
function mapPage(e: Env, iova: bigint, fill: number): void {
  const va = e.host.process.mmap(Number(PAGE));
  e.host.process.poke(va, new Uint8Array(Number(PAGE)).fill(fill));
  e.fd.ioas.map({ ioasId: e.ioas, userVa: va, length: PAGE, iova });
}

/** Tracks whether a promise settled, without leaving a rejection unhandled. */
function track<T>(p: Promise<T>): {
  settled: boolean;
  result: Promise<T | unknown>;
} {
  const t = { settled: false, result: null as unknown as Promise<T | unknown> };
  t.result = p.then(
    (v) => ((t.settled = true), v),
    (x: unknown) => ((t.settled = true), x)
  );
  return t;
}

type StormOp =
  | { op: 'dma'; dev: number; page: number; write: boolean }
  | { op: 'group'; dev: number; n: number }
  | { op: 'read'; q: number; groups: number }
  | { op: 'respond'; pick: number; success: boolean; map: boolean }
  | { op: 'attach'; dev: number; target: number }
  | { op: 'detach'; dev: number }
  | { op: 'rebind'; dev: number }
  | { op: 'recycle'; which: number }
  | { op: 'destroyFault'; q: number }
  | { op: 'tick'; macro: boolean };

const dev01 = fc.integer({ min: 0, max: 1 });
const stormOp: fc.Arbitrary<StormOp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        dev: dev01,
        page: fc.integer({ min: 0, max: 31 }),
        write: fc.boolean(),
      })
      .map((r): StormOp => ({ op: 'dma', ...r })),
  },
  {
    weight: 3,
    arbitrary: fc.record({ dev: dev01, n: fc.integer({ min: 1, max: 3 }) }).map((r): StormOp => ({ op: 'group', ...r })),
  },
  {
    weight: 4,
    arbitrary: fc.record({ q: dev01, groups: fc.integer({ min: 1, max: 4 }) }).map((r): StormOp => ({ op: 'read', ...r })),
  },
  {
    weight: 5,
    arbitrary: fc.record({ pick: fc.nat(), success: fc.boolean(), map: fc.boolean() }).map((r): StormOp => ({ op: 'respond', ...r })),
  },
  {
    weight: 2,
    arbitrary: fc.record({ dev: dev01, target: fc.integer({ min: 0, max: 3 }) }).map((r): StormOp => ({ op: 'attach', ...r })),
  },
  {
    weight: 1,
    arbitrary: dev01.map((dev): StormOp => ({ op: 'detach', dev })),
  },
  {
    weight: 1,
    arbitrary: dev01.map((dev): StormOp => ({ op: 'rebind', dev })),
  },
  {
    weight: 1,
    arbitrary: dev01.map((which): StormOp => ({ op: 'recycle', which })),
  },
  {
    weight: 1,
    arbitrary: dev01.map((q): StormOp => ({ op: 'destroyFault', q })),
  },
  {
    weight: 4,
    arbitrary: fc.boolean().map((macro): StormOp => ({ op: 'tick', macro })),
  }
);

interface ReadGroup {
  q: number;
  cookie: number;
  devId: number;
  addrs: bigint[];
  answered: boolean;
}

/**
 * An "exactly once" checker that does not trust the pipeline's counters: it taps the vendor codec where the
 * hardware records are made. Each page request the device issues (the access handed to encodePageRequest) and
 * each page response sent back to it (the bytes encodePageResponse wrote, read here by the vendor's
 * `responseKey`, written from the hardware layout, not with the plugin's decoder) is logged in order; every
 * group, i.e. every LAST request, must get exactly one response, and no response may come for a group that is
 * not waiting for one.
 */
class ResponseTap {
  private readonly waiting = new Map<string, number>();
  readonly errors: string[] = [];
  lastRequests = 0;
  responses = 0;

  constructor(private readonly responseKey: (bytes: Uint8Array) => string) {}

  install(host: Host, unit: number): void {
    const ops = host.units[unit].ops as { faults: FaultCodec | undefined };
    const inner = ops.faults;
    if (inner?.encodePageRequest === undefined || inner.encodePageResponse === undefined) throw new Error('the unit has no page-request codec');
    const encodeRequest = inner.encodePageRequest.bind(inner);
    const encodeResponse = inner.encodePageResponse.bind(inner);
    // The codecs are class instances: the tap inherits from the vendor's (a spread would drop its prototype
    // methods) and overrides the encoders, the in-place ones (PageRequestInPlace) and those in numbers too.
    const tapped = Object.create(inner) as FaultCodec;
    tapped.encodePageRequest = (a: FailedAccess): Uint8Array => {
      this.request(a);
      return encodeRequest(a);
    };
    tapped.encodePageResponse = (r: PageResponse): Uint8Array => {
      const bytes = encodeResponse(r);
      this.response(bytes);
      return bytes;
    };
    const requestInto = inner.encodePageRequestInto?.bind(inner);
    if (requestInto) {
      tapped.encodePageRequestInto = (a: FailedAccess, out: Uint8Array): void => {
        this.request(a);
        requestInto(a, out);
      };
    }
    const requestFields = inner.encodePageRequestFields?.bind(inner);
    if (requestFields) {
      // The members in numbers (PageRequestFieldsCodec), which core prefers over both.
      tapped.encodePageRequestFields = (f: Readonly<PageRequestFields>, out: Uint8Array): void => {
        this.request(f);
        requestFields(f, out);
      };
    }
    const responseInto = inner.encodePageResponseInto?.bind(inner);
    if (responseInto) {
      tapped.encodePageResponseInto = (r: PageResponse, out: Uint8Array): void => {
        responseInto(r, out);
        this.response(out);
      };
    }
    ops.faults = tapped;
  }

  private request(a: Readonly<Pick<FailedAccess, 'rid' | 'pasid' | 'grpid' | 'last'>>): void {
    if (!a.last) return;
    const key = `${a.rid}/${a.pasid}/${a.grpid}`;
    this.waiting.set(key, (this.waiting.get(key) ?? 0) + 1);
    this.lastRequests++;
  }

  private response(bytes: Uint8Array): void {
    const key = this.responseKey(bytes);
    const n = this.waiting.get(key) ?? 0;
    if (n === 0) this.errors.push(`response to ${key}, which no group is waiting for`);
    else this.waiting.set(key, n - 1);
    this.responses++;
  }

  /** Groups that never got their response. */
  unanswered(): string[] {
    return [...this.waiting].filter(([, n]) => n > 0).map(([k, n]) => `${k} x${n}`);
  }
}

class Storm {
  readonly e: Env;
  readonly faults: Fault[];
  /** Fault-capable HWPTs: [on queue 0, on queue 1]; target 2 is a plain HWPT, 3 the automatic domain. */
  readonly hwpts: number[];
  readonly plain: number;
  /** HWPT each device is attached to (0 when none), as the test sees it. */
  readonly attachedTo = [0, 0];
  readonly pending: { settled: boolean; result: Promise<unknown> }[] = [];
  readonly groups: ReadGroup[] = [];
  nonLast = 0;
  readonly tap: ResponseTap;

  constructor(v: StormVendor) {
    this.tap = new ResponseTap(v.responseKey);
    this.e = setup(v);
    const e = this.e;
    // Both devices sit behind the one unit.
    this.tap.install(e.host, e.devs[0].unitIndex);
    this.faults = [e.fault, e.fd.fault.alloc()];
    this.hwpts = [
      e.hwpt,
      e.fd.hwpt.alloc({
        devId: e.devIds[1],
        ptId: e.ioas,
        faultId: this.faults[1].id,
      }),
    ];
    this.plain = e.fd.hwpt.alloc({ devId: e.devIds[0], ptId: e.ioas });
    this.attachedTo[0] = e.hwpt;
    e.devs[1].attachPt(this.hwpts[1]);
    this.attachedTo[1] = this.hwpts[1];
  }

  private devId(d: number): number {
    return this.e.devs[d].devId ?? 0;
  }

  /** Groups of `devId` read but unanswered become invalid when its attachment goes away. */
  private dropGroupsOf(devId: number): void {
    for (const g of this.groups) if (g.devId === devId) g.answered = true;
  }

  async apply(o: StormOp): Promise<void> {
    const e = this.e;
    switch (o.op) {
      case 'dma': {
        const iova = 0x1000000n + BigInt(o.page) * PAGE;
        const p: Promise<unknown> = o.write ? e.devs[o.dev].dma.write(iova, new Uint8Array([o.page])) : e.devs[o.dev].dma.read(iova, 2);
        this.pending.push(track(p));
        return;
      }
      case 'group': {
        const pages = Array.from({ length: o.n }, (_, i) => ({
          addr: 0x2000000n + BigInt(i) * PAGE,
          perm: PERM_READ,
        }));
        this.nonLast += o.n - 1;
        this.pending.push(track(e.devs[o.dev].requestPages(pages)));
        return;
      }
      case 'read': {
        const f = this.faults[o.q];
        if (e.host.process.file(f.fd) === undefined) return;
        const bytes = e.host.process.read(f.fd, o.groups * 3 * REC);
        let cur: ReadGroup | null = null;
        for (let off = 0; off < bytes.length; off += REC) {
          const r = U.iommu_hwpt_pgfault.decode(bytes, off);
          if (!cur) {
            cur = {
              q: o.q,
              cookie: r.cookie,
              devId: r.dev_id,
              addrs: [],
              answered: false,
            };
            this.groups.push(cur);
          }
          expect(r.cookie).toBe(cur.cookie);
          cur.addrs.push(r.addr);
          if (r.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE) cur = null;
        }
        expect(cur, 'a read returned part of a group').toBeNull();
        return;
      }
      case 'respond': {
        if (this.groups.length === 0) return;
        const g = this.groups[o.pick % this.groups.length];
        const f = this.faults[g.q];
        if (o.success && o.map) {
          for (const a of g.addrs) if (!iommufdCtx(e.fd).closed && e.fd.ioas.iovaRanges(e.ioas) && errCode(() => mapPage(e, a, 0x5c)) !== 'ok') break;
        }
        const rc = errCode(() => respond(e, g.cookie, o.success ? U.IOMMUFD_PAGE_RESP_SUCCESS : U.IOMMUFD_PAGE_RESP_INVALID, f));
        // The response goes to whichever group holds the cookie on that queue now: an answered group's cookie
        // is free again and may be a newer group's (fault.c: xa_alloc / xa_load on fault->response).
        const live = this.groups.find((x) => x.q === g.q && x.cookie === g.cookie && !x.answered);
        expect(rc, `response to cookie ${g.cookie} (a group holds it: ${live !== undefined})`).toBe(live ? 'ok' : 'EINVAL');
        if (live) live.answered = true;
        return;
      }
      case 'attach': {
        const target = o.target < 2 ? this.hwpts[o.target] : o.target === 2 ? this.plain : e.ioas;
        const id = this.devId(o.dev);
        if (id === 0) return;
        const old = this.attachedTo[o.dev];
        const used = e.devs[o.dev].attachPt(target);
        if (old !== 0 && old !== used) this.dropGroupsOf(id);
        this.attachedTo[o.dev] = used;
        return;
      }
      case 'detach': {
        const id = this.devId(o.dev);
        if (id === 0) return;
        e.devs[o.dev].detachPt();
        if (this.attachedTo[o.dev] !== 0) this.dropGroupsOf(id);
        this.attachedTo[o.dev] = 0;
        return;
      }
      case 'rebind': {
        const id = this.devId(o.dev);
        if (id !== 0) {
          e.devs[o.dev].unbind();
          this.dropGroupsOf(id);
        }
        this.attachedTo[o.dev] = 0;
        e.devs[o.dev].bindIommufd(e.fd);
        return;
      }
      case 'recycle': {
        const h = this.hwpts[o.which];
        const busy = this.attachedTo.includes(h);
        expect(errCode(() => e.fd.destroy(h))).toBe(busy ? 'EBUSY' : 'ok');
        if (!busy) {
          const devId = this.devId(0) || this.devId(1);
          this.hwpts[o.which] = e.fd.hwpt.alloc({
            devId,
            ptId: e.ioas,
            faultId: this.faults[o.which].id,
          });
        }
        return;
      }
      case 'destroyFault':
        // Held by its open fd and its HWPT.
        expect(errCode(() => e.fd.destroy(this.faults[o.q].id))).toBe('EBUSY');
        return;
      case 'tick':
        if (o.macro) await settle();
        else await Promise.resolve();
        return;
    }
  }

  async finish(closeIommufd: boolean): Promise<void> {
    const e = this.e;
    if (closeIommufd) e.host.process.close(e.fd.fd);
    else for (const d of e.devs) d.detachPt();
    for (let i = 0; i < 20 && this.pending.some((p) => !p.settled); i++) await settle();
  }
}

const RUNS = Number(process.env.STORM_RUNS ?? 60);

describe('fault storm (property)', () => {
  it.each(VENDORS.map((v) => [v.name, v] as const))('%s: answers every page request exactly once and settles every DMA, whatever happens', async (_name, v) => {
    let tappedGroups = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stormOp, { minLength: 1, maxLength: 40 }), fc.boolean(), async (ops, closeIommufd) => {
        const s = new Storm(v);
        for (const o of ops) await s.apply(o);
        await s.finish(closeIommufd);
        const st = s.e.host.faultStats;
        expect(
          s.pending.every((p) => p.settled),
          'a DMA or page request group never settled'
        ).toBe(true);
        expect(s.e.host.outstandingFaults).toBe(0);
        expect(st.duplicateResponses).toBe(0);
        // One response (by the handler, or automatic) per group, i.e. per LAST request.
        expect(st.responses + st.autoResponses).toBe(st.pageRequests - s.nonLast);
        expect(st.overflows).toBe(0);
        // The same, judged from the records the vendor codec wrote rather than from the counters above.
        expect(s.tap.errors).toEqual([]);
        expect(s.tap.unanswered()).toEqual([]);
        expect(s.tap.responses).toBe(s.tap.lastRequests);
        tappedGroups += s.tap.lastRequests;
      }),
      {
        numRuns: RUNS,
        seed: Number(process.env.STORM_SEED ?? Date.now() % 2 ** 31),
      }
    );
    // The tap saw page request groups go through the codec (it would pass vacuously otherwise).
    expect(tappedGroups).toBeGreaterThan(0);
  });
});
