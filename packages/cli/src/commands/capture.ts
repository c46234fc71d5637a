/**
 * `ioasid capture <out.tar.gz>`: collects, without any script, exactly what `ioasid probe --sysfs` reads, so
 * that the probe can run on another machine:
 *
 *   /sys/class/iommu/<unit>          the link, and in the unit's directory the vendor attribute files
 *                                    (intel-iommu/{version,cap,ecap,address}, amd-iommu/{cap,features}) and the
 *                                    devices/ links
 *   /sys/kernel/iommu_groups/<n>/    devices/ links, reserved_regions, type
 *   /sys/bus/pci/devices/<bdf>       the link and config (every device in a group)
 *   /dev/kmsg                        the kernel log, as dmesg.txt
 *
 * Everything is world-readable except the PCI config space past 64 bytes (ATS, PRI, PASID) and /dev/kmsg when
 * kernel.dmesg_restrict is set: run it as root for those; what could not be read is listed in MANIFEST.txt.
 */
import { closeSync, constants, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Command } from 'commander';
import { PLANNER_VENDORS } from '@ioasid/planner';
import type { CommandContext } from '../context.js';
import { type ArchiveFile, writeArchive } from '../host-files.js';
import { CliError, readInput, writeBytes } from '../io.js';

interface CaptureOpts {
  root?: string;
  dmesg?: string;
  hwInfo?: string;
}

const MAX_FILE = 1 << 20;
const MAX_KMSG_BYTES = 64 << 20;

export function registerCapture(program: Command, ctx: () => CommandContext): void {
  program
    .command('capture')
    .description("collect this host's IOMMU files (sysfs, PCI config, kernel log) into one archive for ioasid probe --sysfs elsewhere")
    .argument('<out>', 'the archive to write (.tar.gz)')
    .option('--root <dir>', 'read the files under this directory instead of / (a chroot or a test tree)')
    .option('--dmesg <file>', 'take the kernel log from this file instead of /dev/kmsg')
    .option('--hw-info <file>', 'add IOMMU_GET_HW_INFO output (see docs/cli.md) as hw-info.txt')
    .addHelpText(
      'after',
      `
Reads (no root needed, except for the PCI config space past 64 bytes and /dev/kmsg under dmesg_restrict):
  /sys/class/iommu/*               units: intel-iommu/{version,cap,ecap,address}, amd-iommu/{cap,features}, devices/
  /sys/kernel/iommu_groups/*       devices/, reserved_regions, type
  /sys/bus/pci/devices/<bdf>/config   ATS, PRI, PASID of each device in a group
  /dev/kmsg                        the kernel log (dmesg.txt)

Examples:
  $ sudo ioasid capture host.tar.gz
  $ ioasid probe --sysfs host.tar.gz --out host.yaml`,
    )
    .action(async (out: string, opts: CaptureOpts) => runCapture(ctx(), out, opts));
}

class Collector {
  readonly files = new Map<string, ArchiveFile>();
  readonly missing: string[] = [];
  constructor(private readonly root: string) {}

  private abs(p: string): string {
    return join(this.root, p);
  }

  /** Records the link at `p` (if it is one) and returns the path it leads to. */
  follow(p: string): string {
    let cur = p;
    for (let hops = 0; hops < 8; hops++) {
      const st = lstatSync(this.abs(cur), { throwIfNoEntry: false });
      if (!st?.isSymbolicLink()) return cur;
      const target = readlinkSync(this.abs(cur));
      this.files.set(cur, { path: cur, type: 'link', link: target });
      cur = target.startsWith('/') ? target.replace(/^\/+/, '') : posix.normalize(posix.join(posix.dirname(cur), target));
    }
    return cur;
  }

  list(p: string): string[] {
    try {
      return readdirSync(this.abs(p));
    } catch {
      return [];
    }
  }

  /** Each entry of a directory as a link (not followed): devices/ directories. */
  links(dir: string): string[] {
    const names = this.list(dir);
    for (const n of names) {
      const p = `${dir}/${n}`;
      try {
        this.files.set(p, { path: p, type: 'link', link: readlinkSync(this.abs(p)) });
      } catch {
        this.files.set(p, { path: p, type: 'file', data: new Uint8Array() });
      }
    }
    return names;
  }

  file(p: string, why: string): Uint8Array | null {
    try {
      const b = readFileSync(this.abs(p));
      if (b.length > MAX_FILE) throw new Error('larger than any sysfs attribute');
      this.files.set(p, { path: p, type: 'file', data: new Uint8Array(b) });
      return new Uint8Array(b);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.missing.push(`${p}: ${code ?? (e as Error).message} (${why})`);
      return null;
    }
  }
}

/** The kernel log from /dev/kmsg (non-blocking reads, one record each), printed as dmesg prints it. */
function readKmsg(path: string): { text: string } | { error: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    return { error: `${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  const buf = Buffer.alloc(8192);
  const out: string[] = [];
  let total = 0;
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break;
        if (code === 'EPIPE') continue; // records overwritten while reading: the next read resumes
        return { error: code ?? (e as Error).message };
      }
      if (n <= 0) break;
      const rec = buf.toString('utf8', 0, n);
      const semi = rec.indexOf(';');
      const head = rec.slice(0, semi).split(',');
      const usec = Number(head[2] ?? 0);
      const msg = rec.slice(semi + 1).split('\n')[0];
      out.push(`[${Math.floor(usec / 1e6).toString().padStart(5)}.${(usec % 1e6).toString().padStart(6, '0')}] ${msg}`);
      total += n;
      if (total > MAX_KMSG_BYTES) break;
    }
  } finally {
    closeSync(fd);
  }
  return { text: `${out.join('\n')}\n` };
}

export async function runCapture(ctx: CommandContext, out: string, opts: CaptureOpts): Promise<void> {
  const c = new Collector(opts.root ?? '/');
  const units = c.list('sys/class/iommu');
  if (!units.length) ctx.err(`warning: ${join(opts.root ?? '/', 'sys/class/iommu')} is empty or missing: no IOMMU is enabled on this host`);
  for (const u of units) {
    const real = c.follow(`sys/class/iommu/${u}`);
    for (const pv of PLANNER_VENDORS) {
      if (!pv.sysfs) continue;
      for (const f of pv.sysfs.files) c.file(`${real}/${pv.sysfs.dir}/${f}`, `${pv.name} registers`);
    }
    c.links(`${real}/devices`);
  }
  const members = new Set<string>();
  for (const g of c.list('sys/kernel/iommu_groups')) {
    const dir = `sys/kernel/iommu_groups/${g}`;
    for (const d of c.links(`${dir}/devices`)) members.add(d);
    c.file(`${dir}/reserved_regions`, 'reserved regions');
    c.file(`${dir}/type`, 'default domain type');
  }
  let shortConfig = 0;
  for (const bdf of [...members].sort()) {
    if (!/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(bdf)) continue;
    const real = c.follow(`sys/bus/pci/devices/${bdf}`);
    const cfg = c.file(`${real}/config`, 'PCI config space');
    if (cfg && cfg.length <= 256) shortConfig++;
  }
  const extra: ArchiveFile[] = [];
  if (opts.dmesg) extra.push({ path: 'dmesg.txt', type: 'file', data: new TextEncoder().encode(await readInput(ctx.io, opts.dmesg)) });
  else {
    const k = readKmsg(join(opts.root ?? '/', 'dev/kmsg'));
    if ('text' in k) extra.push({ path: 'dmesg.txt', type: 'file', data: new TextEncoder().encode(k.text) });
    else c.missing.push(`/dev/kmsg: ${k.error} (the kernel log; run as root, or pass --dmesg <file>)`);
  }
  if (opts.hwInfo) extra.push({ path: 'hw-info.txt', type: 'file', data: new TextEncoder().encode(await readInput(ctx.io, opts.hwInfo)) });
  if (shortConfig) c.missing.push(`${shortConfig} PCI config space(s) cut at 64 bytes: not root, so ATS, PRI and PASID are not in the capture`);
  const manifest = [
    `ioasid capture of ${opts.root ?? '/'}`,
    `${c.files.size} sysfs entries, ${units.length} IOMMU unit(s), ${members.size} device(s) in IOMMU groups`,
    ...(c.missing.length ? ['not captured:', ...c.missing.map((m) => `  ${m}`)] : ['everything was readable']),
  ].join('\n');
  const files = [...c.files.values(), ...extra, { path: 'MANIFEST.txt', type: 'file' as const, data: new TextEncoder().encode(`${manifest}\n`) }];
  let archive: Uint8Array;
  try {
    archive = writeArchive(files);
  } catch (e) {
    throw new CliError(`cannot write the archive: ${(e as Error).message}`, 1);
  }
  await writeBytes(out, archive);
  ctx.out(`wrote ${out}: ${units.length} IOMMU unit(s), ${members.size} device(s) in groups${c.missing.length ? `; not captured: ${c.missing.length} item(s) (see MANIFEST.txt)` : ''}`);
  for (const m of c.missing) ctx.out(`  not captured: ${m}`);
  ctx.out(`next, anywhere: ioasid probe --sysfs ${out} --out host.yaml`);
}
