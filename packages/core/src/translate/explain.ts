/**
 * A translation explained for a person: whether the IOTLB held it, every table entry each stage's walk
 * read, the result, and for a failure the record the unit would write and the lines Linux would print.
 * Nothing is queued or logged; the translation itself is done exactly as a DMA does (it fills the IOTLB).
 */
import { codecPageRequests, type FailedAccess, type TranslationFailure } from '../driver/fault.js';
import { PERM_READ, PERM_WRITE, WalkResult, type IoPageTable } from '../driver/pgtable.js';
import type { Stage2Lookup, WalkStep } from '../driver/walk-trace.js';
import type { PhysicalMemory } from '../memory/physical.js';
import { BIND_BLOCKED, BIND_PAGING, TranslateResult, type Binding, type IommuUnit } from './unit.js';

/** One translation stage's walk within an {@link ExplainedTranslation}. */
export interface StageTrace {
  /** 'paging' for a single-stage domain; 'stage 1' (guest-owned) and 'stage 2' for a nested one. */
  readonly stage: 'paging' | 'stage 1' | 'stage 2';
  /** The page-table format's id. */
  readonly format: string;
  /** The input page number of this stage's walk (IOVA for paging/stage 1, guest-physical for stage 2). */
  readonly inputPfn: number;
  /**
   * Every entry the walk read, root first; null when the format has no trace. For a nested domain's
   * stage 1, the unit's own reads (`WalkStep.context`) come first and each step carries the stage-2
   * walk of its guest-physical table page (`WalkStep.tableGpaPfn`, `WalkStep.stage2`).
   */
  readonly steps: readonly WalkStep[] | null;
}

/** What `PciDevice.explain` found for one access: for people and tools, never the DMA path. */
export interface ExplainedTranslation {
  /** The IOVA explained, in bytes. */
  readonly iova: bigint;
  /** The PASID of the access, -1 for none. */
  readonly pasid: number;
  /** A write access (a read otherwise). */
  readonly write: boolean;
  /** What the context (and PASID) entry selects. */
  readonly binding: 'blocked' | 'paging' | 'nested';
  /** Whether the IOTLB already held a translation with these permissions. */
  readonly iotlb: 'hit' | 'miss';
  /** The walks of each stage, in order (empty for blocked DMA). */
  readonly stages: readonly StageTrace[];
  /** The access translates with the permissions it needs. */
  readonly ok: boolean;
  /** The physical address of `iova` when it translates. */
  readonly pa?: bigint;
  /** PERM_* bits granted. */
  readonly perm?: number;
  /** Why it failed, when it did. */
  readonly failure?: TranslationFailure;
  /** The failure came from the stage-2 (parent) walk. */
  readonly stage2?: boolean;

  /** Whether the device would send a page request or stall (a handler can fix it) rather than fault. */
  readonly recoverable?: boolean;
  /** The record the unit writes for the failure (page request, stall or fault record), when it has a codec. */
  readonly record?: Uint8Array;
  /** What Linux prints for an unrecoverable fault. */
  readonly linux?: readonly string[];
}

export interface ExplainContext {
  readonly unit: IommuUnit;
  readonly binding: Binding;
  readonly bdf: string;
  readonly mem: PhysicalMemory;
  /** Builds the FailedAccess the device would report (the DMA path's own rules). */
  failedAccess(addr: bigint, perm: number, pasid: number, tr: TranslateResult): FailedAccess;
}

function stage(name: StageTrace['stage'], pt: IoPageTable, inputPfn: number): StageTrace {
  return { stage: name, format: pt.format, inputPfn, steps: pt.trace ? pt.trace(inputPfn) : null };
}

/**
 * A stage-1 table read through stage 2: the host page of guest-physical `gpaPfn` when stage 2 grants
 * read (the unit reads tables), with the stage-2 walk that found it.
 */
function stage2Read(parent: IoPageTable, gpaPfn: number): Stage2Lookup {
  const s2 = new WalkResult();
  const pfn = parent.walk(gpaPfn, s2) && (s2.perm & PERM_READ) !== 0 ? s2.pfn : -1;
  return { pfn, steps: parent.trace ? parent.trace(gpaPfn) : null };
}

export function explainTranslation(ctx: ExplainContext, iova: bigint, pasid: number, write: boolean): ExplainedTranslation {
  const { unit, binding: b } = ctx;
  const perm = write ? PERM_WRITE : PERM_READ;
  const iovaPfn = Number(iova >> 12n);
  const probe = { pfn: 0, perm: 0 };
  const hit = b.kind !== BIND_BLOCKED && unit.iotlb.hit(b.tag, pasid, iovaPfn, perm, probe);
  const stages: StageTrace[] = [];
  const kind = b.kind === BIND_BLOCKED ? 'blocked' : b.kind === BIND_PAGING ? 'paging' : 'nested';
  if (b.kind === BIND_PAGING && b.pt) stages.push(stage('paging', b.pt, iovaPfn));
  else if (b.nested && b.pt) {
    // The guest's stage 1 is walked (and traced, when the vendor can) by the vendor, every table page
    // through stage 2; its output (guest-physical) is then walked in the host's stage 2.
    if (b.nested.mode === 'translate') {
      const wr = new WalkResult();
      const parent = b.pt;
      const ok = b.nested.walkStage1(iovaPfn, pasid, ctx.mem, wr, (g) => stage2Read(parent, g).pfn);
      const steps = b.nested.traceStage1 ? b.nested.traceStage1(iovaPfn, pasid, ctx.mem, (g) => stage2Read(parent, g)) : null;
      stages.push({ stage: 'stage 1', format: b.nested.format ?? '', inputPfn: iovaPfn, steps });
      if (ok) stages.push(stage('stage 2', b.pt, wr.pfn));
    } else if (b.nested.mode === 'bypass') stages.push(stage('stage 2', b.pt, iovaPfn));
  }
  const tr = new TranslateResult();
  const base = { iova, pasid, write, binding: kind, iotlb: hit ? 'hit' : 'miss', stages } as const;
  if (unit.translate(b, pasid, iovaPfn, perm, tr)) {
    return { ...base, ok: true, pa: BigInt(tr.pfn) * 4096n + (iova & 0xfffn), perm: tr.perm };
  }
  const access = ctx.failedAccess(iova & ~0xfffn, perm, pasid, tr);
  const codec = unit.ops.faults;
  const out = { ...base, ok: false, failure: tr.failure, stage2: tr.stage2, recoverable: access.recoverable };
  if (!codec) return out;
  if (access.recoverable) {
    if (access.kind === 'stall' && codec.encodeStall) return { ...out, record: codec.encodeStall(access) };
    return codecPageRequests(codec) ? { ...out, record: codec.encodePageRequest(access) } : out;
  }
  const record = codec.encodeFault({ ...access, recoverable: false });
  return { ...out, record, linux: codec.renderLog(codec.decodeFault(record, unit.index), ctx.bdf, unit.ops.name) };
}
