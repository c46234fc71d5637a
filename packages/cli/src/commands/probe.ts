/** `ioasid probe <file|->`: a host profile from a real kernel log. */
import type { Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { probeDmesg, probeSysfs, serializeProfile, type SysfsReader } from '@ioasid/planner';
import type { CommandContext } from '../context.js';
import { DirReader, readArchive } from '../host-files.js';
import { CliError, readInput, table, toJson, writeOutput } from '../io.js';

interface ProbeOpts {
  json?: boolean;
  out?: string;
  verbose?: boolean;
  name?: string;
  sysfs?: string | boolean;
  hwInfo?: string;
  dmesg?: string;
}

export function registerProbe(program: Command, ctx: () => CommandContext): void {
  program
    .command('probe')
    .description('read a kernel log (dmesg, dmesg -T, journalctl -k) and build a host profile of its IOMMUs')
    .argument('[file]', 'the log file, or - for standard input (not with --sysfs)')
    .option('--sysfs [root]', 'read the live host (/), a directory, or an ioasid capture archive instead of a log')
    .option('--hw-info <file>', 'with --sysfs: IOMMU_GET_HW_INFO output (iommu_hw_info lines, see docs/cli.md)')
    .option('--dmesg <file>', 'with --sysfs: the boot log of the same boot, for units sysfs gives no registers for')
    .option('--json', 'print the result as JSON')
    .option('-o, --out <profile>', 'write the host profile (.json, or .yaml/.yml for YAML)')
    .option('-v, --verbose', 'also list every line that could not be used')
    .option('--name <name>', 'the name of the host in the profile (default: the file name)')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo dmesg | ioasid probe - --out host.yaml
  $ journalctl -k -b | ioasid probe - --json
  $ ioasid probe boot.log --verbose
  $ ioasid probe boot.log --out host.json && ioasid plan host.json
  $ ioasid probe --sysfs --out host.yaml               # this host, from /sys
  $ ioasid probe --sysfs host.tar.gz --json            # a capture (ioasid capture) from another host

Exit status: 0 when at least one IOMMU unit was found, 1 when none, 2 on bad usage.`,
    )
    .action(async (file: string | undefined, opts: ProbeOpts) => {
      if (opts.sysfs !== undefined) {
        if (file !== undefined) throw new CliError('give either a log file or --sysfs [root], not both', 2, 'the boot log of the same boot goes with --dmesg <file>');
        return runSysfsProbe(ctx(), opts.sysfs === true ? '/' : String(opts.sysfs), opts);
      }
      if (file === undefined) throw new CliError('give a log file (or - for standard input), or --sysfs [root]', 2);
      return runProbe(ctx(), file, opts);
    });
}

function hostReader(root: string): SysfsReader {
  let st;
  try {
    st = statSync(root);
  } catch {
    throw new CliError(`cannot read ${root}: no such file or directory`, 1, 'give / (this host), a directory, or an archive written by ioasid capture');
  }
  if (st.isDirectory()) return new DirReader(root);
  try {
    return readArchive(new Uint8Array(readFileSync(root)));
  } catch (e) {
    throw new CliError(`${root} is not a capture archive: ${(e as Error).message}`, 1, 'write one with: ioasid capture <out.tar.gz>');
  }
}

export async function runSysfsProbe(ctx: CommandContext, root: string, opts: ProbeOpts): Promise<void> {
  const reader = hostReader(root);
  const vendors = await ctx.vendors();
  const name = opts.name ?? (root === '/' ? 'this host' : (root.split('/').filter(Boolean).pop() ?? root).replace(/\.tar\.gz$|\.tgz$/, ''));
  const r = probeSysfs(reader, vendors, {
    name,
    ...(opts.dmesg ? { dmesg: await readInput(ctx.io, opts.dmesg) } : {}),
    ...(opts.hwInfo ? { hwInfo: await readInput(ctx.io, opts.hwInfo) } : {}),
  });
  const found = r.profile.units.length > 0;
  if (opts.out && found) await writeOutput(opts.out, serializeProfile(r.profile, /\.ya?ml$/i.test(opts.out) ? 'yaml' : 'json'));
  if (opts.json) ctx.io.stdout.write(toJson({ profile: r.profile, units: r.units, warnings: r.warnings, ...(opts.verbose ? { read: r.read } : {}) }));
  else {
    const { c } = ctx;
    ctx.out(`${c.bold(root)}: ${r.profile.units.length} IOMMU unit(s), ${r.profile.devices.length} device(s) ${c.dim(`(${r.read.length} files read)`)}`);
    if (r.units.length) {
      ctx.out();
      const rows = [['UNIT', 'VENDOR', 'FROM', 'DEVICES', 'HW ID'].map((h) => c.bold(h))];
      for (const u of r.units) rows.push([u.id, u.vendor, u.source ?? '', String(u.devices.length), u.hwId ?? c.red(`not usable: ${u.error ?? ''}`)]);
      table(rows).forEach((l) => ctx.out(`  ${l}`));
    }
    if (r.profile.devices.length) {
      ctx.out();
      const rows = [['DEVICE', 'UNIT', 'GROUP', 'ATS', 'PRI', 'PASID', 'RESERVED'].map((h) => c.bold(h))];
      for (const d of r.profile.devices) {
        rows.push([d.bdf, d.unit, String(d.group ?? ''), d.ats ? 'yes' : '', d.pri ? 'yes' : '', d.pasidBits ? String(d.pasidBits) : '', (d.reservedRegions ?? []).map((x) => x.type).join(',')]);
      }
      table(rows).forEach((l) => ctx.out(`  ${l}`));
    }
    if (r.warnings.length) {
      ctx.out();
      for (const w of r.warnings) ctx.out(`${c.yellow('warning:')} ${w}`);
    }
    if (opts.verbose) {
      ctx.out();
      ctx.out(c.dim(`read: ${r.read.join(', ')}`));
    }
    if (found) {
      ctx.out();
      ctx.out(opts.out ? `wrote ${opts.out}; next: ioasid plan ${opts.out}` : 'save it with --out host.yaml, then: ioasid plan host.yaml');
    }
  }
  if (!found) throw new CliError(`no usable IOMMU unit under ${root}`, 1, 'see the warnings above; on an Arm host add IOMMU_GET_HW_INFO output with --hw-info (docs/cli.md)');
}

export async function runProbe(ctx: CommandContext, file: string, opts: ProbeOpts): Promise<void> {
  const text = await readInput(ctx.io, file);
  const vendors = await ctx.vendors();
  const name = opts.name ?? (file === '-' ? 'probed host' : (file.split('/').pop() ?? file).replace(/\.[^.]*$/, ''));
  const r = probeDmesg(text, vendors, { name });
  const found = r.profile.units.length > 0;
  if (opts.out && found) {
    const format = /\.ya?ml$/i.test(opts.out) ? 'yaml' : 'json';
    await writeOutput(opts.out, serializeProfile(r.profile, format));
  }
  if (opts.json) {
    ctx.io.stdout.write(
      toJson({
        profile: r.profile,
        units: r.units,
        counts: r.counts,
        rejected: r.rejected,
        ...(opts.verbose ? { unusable: r.unusable } : {}),
        warnings: r.warnings,
      }),
    );
  } else {
    const { c } = ctx;
    const where = file === '-' ? 'standard input' : file;
    ctx.out(
      `${c.bold(where)}: ${r.profile.units.length} IOMMU unit(s), ${r.profile.devices.length} device(s) ` +
        c.dim(`(${r.counts.lines} lines: ${r.counts.recognized} recognized, ${r.counts.rejected} rejected, ${r.counts.unusable - r.counts.rejected} other)`),
    );
    if (r.units.length) {
      ctx.out();
      const rows = [['UNIT', 'VENDOR', 'LINE', 'HW ID'].map((h) => c.bold(h))];
      for (const u of r.units) rows.push([u.id, u.vendor, String(u.lines[0]), u.hwId ?? c.red(`not usable: ${u.error ?? ''}`)]);
      table(rows).forEach((l) => ctx.out(`  ${l}`));
    }
    if (r.profile.devices.length) {
      ctx.out();
      const rows = [['DEVICE', 'UNIT', 'GROUP'].map((h) => c.bold(h))];
      for (const d of r.profile.devices) rows.push([d.bdf, d.unit, String(d.group ?? '')]);
      table(rows).forEach((l) => ctx.out(`  ${l}`));
    }
    if (r.rejected.length) {
      ctx.out();
      ctx.out(c.yellow(`${r.rejected.length} line(s) looked like IOMMU lines but could not be read:`));
      for (const x of r.rejected) ctx.out(`  line ${x.line}: ${x.reason}`);
    }
    if (r.warnings.length) {
      ctx.out();
      for (const w of r.warnings) ctx.out(`${c.yellow('warning:')} ${w}`);
    }
    if (opts.verbose) {
      const other = r.unusable.filter((u) => !r.rejected.includes(u));
      if (other.length) {
        ctx.out();
        ctx.out(c.dim(`${other.length} line(s) with nothing for a vendor:`));
        for (const x of other) ctx.out(c.dim(`  ${String(x.line).padStart(5)}: ${x.text}`));
      }
    }
    if (found) {
      ctx.out();
      ctx.out(opts.out ? `wrote ${opts.out}; next: ioasid plan ${opts.out}` : 'save it with --out host.yaml, then: ioasid plan host.yaml');
    }
  }
  if (!found) {
    throw new CliError(
      `no IOMMU unit found in ${file === '-' ? 'standard input' : file}`,
      1,
      `give the whole boot log (sudo dmesg, or journalctl -k -b) with the IOMMU enabled (${r.hint}); --verbose lists the lines that were read`,
    );
  }
}
