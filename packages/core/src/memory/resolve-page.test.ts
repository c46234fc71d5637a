import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Errno } from '../uapi/errno.js';
import { FrameAllocator, FrameRuns, PAGE_SIZE, PhysicalMemory } from './physical.js';
import { HostProcess, PROT_READ } from './process.js';

/** resolvePage's answer: the frame, or the errno it threw. */
function viaPage(p: HostProcess, page: number, write: boolean): number | string {
  try {
    return p.resolvePage(page, write);
  } catch (e) {
    if (e instanceof Errno) return e.code;
    throw e;
  }
}

/** The same page through resolveRuns, which always looks the VMA and the page index up. */
function viaRuns(p: HostProcess, page: number, write: boolean): number | string {
  const runs = new FrameRuns();
  try {
    p.resolveRuns(page, 1, write, runs);
    return runs.first[0];
  } catch (e) {
    if (e instanceof Errno) return e.code;
    throw e;
  }
}

function proc(): HostProcess {
  const mem = new PhysicalMemory();
  return new HostProcess(mem, new FrameAllocator(mem));
}

const pageOf = (va: bigint): number => Number(va / BigInt(PAGE_SIZE));

describe('HostProcess.resolvePage (the remembered run)', () => {
  it('answers as the lookup does after munmap, exit and for a read-only mapping', () => {
    const p = proc();
    const va = p.mmap(1024 * PAGE_SIZE);
    const first = pageOf(va);
    p.poke(va, new Uint8Array(600 * PAGE_SIZE));
    const f = viaPage(p, first + 10, true);
    expect(typeof f).toBe('number');
    // Inside the remembered run, past it (faulted in now), back inside it.
    for (const page of [first + 11, first + 599, first + 700, first + 10]) expect(viaPage(p, page, true)).toBe(viaRuns(p, page, true));
    expect(viaPage(p, first + 11, false)).toBe((f as number) + 1);
    // munmap of part of the mapping: the pages gone fault, the rest keep their frames.
    p.munmap(va + 8n * BigInt(PAGE_SIZE), 8 * PAGE_SIZE);
    expect(viaPage(p, first + 10, true)).toBe('EFAULT');
    expect(viaPage(p, first + 20, true)).toBe((f as number) + 10);
    const ro = p.mmap(16 * PAGE_SIZE, { prot: PROT_READ });
    expect(typeof viaPage(p, pageOf(ro), false)).toBe('number');
    expect(viaPage(p, pageOf(ro) + 1, true)).toBe('EPERM');
    expect(viaPage(p, pageOf(ro) + 1, false)).toBe(viaRuns(p, pageOf(ro) + 1, false));
    p.exit();
    expect(viaPage(p, first + 20, false)).toBe('EFAULT');
  });

  it('matches the lookup over random mmap, munmap, fork, fault-in and resolve sequences', () => {
    type Op =
      | { kind: 'mmap'; pages: number; ro: boolean; shared: boolean }
      | { kind: 'munmap'; vma: number; from: number; pages: number }
      | { kind: 'resolve'; vma: number; page: number; write: boolean }
      | { kind: 'touch'; vma: number; pages: number }
      | { kind: 'fork' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('mmap' as const), pages: fc.integer({ min: 1, max: 1300 }), ro: fc.boolean(), shared: fc.boolean() }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('munmap' as const), vma: fc.nat(), from: fc.nat({ max: 1300 }), pages: fc.integer({ min: 1, max: 600 }) }) },
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('resolve' as const), vma: fc.nat(), page: fc.nat({ max: 1400 }), write: fc.boolean() }) },
      // Faults a long stretch in at once: one run of frames for resolvePage to remember.
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('touch' as const), vma: fc.nat(), pages: fc.integer({ min: 1, max: 1300 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('fork' as const) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        let p = proc();
        const bases: number[] = [];
        for (const o of ops) {
          if (o.kind === 'mmap') bases.push(pageOf(p.mmap(o.pages * PAGE_SIZE, { prot: o.ro ? PROT_READ : undefined, shared: o.shared })));
          else if (o.kind === 'fork') p = p.fork();
          else if (bases.length === 0) continue;
          else if (o.kind === 'touch') {
            try {
              p.resolveRuns(bases[o.vma % bases.length], o.pages, false, new FrameRuns());
            } catch (e) {
              if (!(e instanceof Errno)) throw e;
            }
          } else if (o.kind === 'munmap') {
            const from = bases[o.vma % bases.length] + o.from;
            p.munmap(BigInt(from) * BigInt(PAGE_SIZE), o.pages * PAGE_SIZE);
            // The pages just unmapped and their neighbours, reads only (a read of a page still mapped
            // faults it in, as the lookup does).
            for (let page = from - 2; page < from + o.pages + 2; page++) expect(viaPage(p, page, false)).toBe(viaRuns(p, page, false));
          } else {
            const page = bases[o.vma % bases.length] + o.page;
            // resolvePage first (it may fault the page in and remember its run), then the lookup.
            expect(viaPage(p, page, o.write)).toBe(viaRuns(p, page, o.write));
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
