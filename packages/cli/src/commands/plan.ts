/** `ioasid plan <profile...>`: the vIOMMU for a VM on these hosts. */
import { Option, type Command } from 'commander';
import type { HostProfile } from '@ioasid/core';
import { checkHotplug, loadProfile, plan, PlanError, POLICIES, ProfileError, type Plan, type Policy } from '@ioasid/planner';
import type { CommandContext } from '../context.js';
import { CliError, readInput, table, toJson } from '../io.js';
import { builtinProfiles, findBuiltin, type BuiltinProfile } from '../profiles.js';

interface PlanOpts {
  devices?: string;
  policy?: Policy;
  viommu?: string;
  json?: boolean;
  hotplug?: string;
  against?: string;
}

export function registerPlan(program: Command, ctx: () => CommandContext): void {
  program
    .command('plan')
    .description('choose the vIOMMU for a VM: model, properties, how each device is backed, QEMU and libvirt options')
    .argument('<profile...>', 'host profile files (YAML or JSON), built-in profile names (see ioasid profiles), or - for standard input')
    .option('-d, --devices <bdf,...>', 'the devices to assign (default: every device of the profiles)')
    .addOption(new Option('-p, --policy <policy>', 'strict (check --viommu), host (like -cpu host) or baseline (migration-safe)').choices(POLICIES))
    .option('--viommu <device>', 'the vIOMMU to check, as a QEMU -device value (implies --policy strict)')
    .option('--json', 'print the plan as JSON')
    .option('--hotplug <bdf>', 'check a device hot-plugged into a running VM (with --against)')
    .option('--against <plan.json>', 'the plan the VM was started with (ioasid plan … --json > plan.json)')
    .addHelpText(
      'after',
      `
Policies (default: strict with --viommu, host for one profile, baseline for several):
  strict    you name the vIOMMU; every device is checked the way QEMU checks it
  host      copy this host: nest devices where the IOMMU can, emulate the rest
  baseline  only what every unit (or every host of a fleet) supports: migration-safe

Examples:
  $ ioasid plan host.yaml
  $ ioasid plan mixed-vtd --devices 0000:6a:01.0,0000:00:02.0
  $ ioasid plan host.yaml --viommu "intel-iommu,aw-bits=48,caching-mode=on"
  $ ioasid plan arm-multi-smmu --viommu "arm-smmuv3,accel=on,ril=off,ssidsize=20"
  $ ioasid plan rack1.yaml rack2.yaml rack3.yaml --policy baseline --json
  $ ioasid plan host.yaml --json > plan.json && ioasid plan host.yaml --hotplug 0000:6a:02.0 --against plan.json

Exit status: 0 when every device is backed, 1 when QEMU would refuse the vIOMMU or a device, 2 on bad usage.`,
    )
    .action(async (profiles: string[], opts: PlanOpts) => runPlan(ctx(), profiles, opts));
}

export async function resolveProfiles(ctx: CommandContext, args: readonly string[]): Promise<HostProfile[]> {
  const vendors = await ctx.vendors();
  let builtins: BuiltinProfile[] | null = null;
  const out: HostProfile[] = [];
  for (const arg of args) {
    let text: string | null = null;
    try {
      text = await readInput(ctx.io, arg);
    } catch (e) {
      if (!(e instanceof CliError) || !e.message.endsWith('no such file')) throw e;
    }
    if (text !== null) {
      try {
        out.push(loadProfile(text, { vendors, file: arg === '-' ? '<stdin>' : arg }).profile);
      } catch (e) {
        if (e instanceof ProfileError) throw new CliError(`${arg} is not a usable host profile:\n${e.message}`, 1, 'fix the lines above; the schema is packages/planner/schema/host-profile.schema.json');
        throw e;
      }
      continue;
    }
    builtins ??= builtinProfiles(vendors, await ctx.presets());
    const hit = findBuiltin(builtins, arg);
    if (!hit) throw new CliError(`no file and no built-in profile named "${arg}"`, 1, 'list the built-in profiles with: ioasid profiles');
    if (Array.isArray(hit)) throw new CliError(`"${arg}" matches several built-in profiles: ${hit.map((h) => h.id).join(', ')}`, 2, 'give one of these ids');
    out.push(hit.profile);
  }
  return out;
}

/** The parts of a plan.json checkHotplug reads, checked before use. */
function readFrozenPlan(text: string, file: string): Plan {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${file} is not JSON: ${(e as Error).message}`, 1, 'write it with: ioasid plan <profile> --json > plan.json');
  }
  const p = v as Partial<Plan> | null;
  const frozen = p?.frozen as Partial<Plan['frozen']> | undefined;
  if (!p || typeof p !== 'object' || !Array.isArray(p.hosts) || !frozen || typeof frozen.model !== 'string' || typeof frozen.properties !== 'object' || !Array.isArray(frozen.instances)) {
    throw new CliError(`${file} is not a plan: it needs hosts and frozen { model, properties, instances } as ioasid plan --json writes them`, 1);
  }
  return p as Plan;
}

async function runHotplug(ctx: CommandContext, args: string[], opts: PlanOpts): Promise<void> {
  if (!opts.against) throw new CliError('--hotplug needs --against <plan.json>, the plan the VM was started with', 2);
  if (args.length !== 1) throw new CliError(`--hotplug checks a device of one host: give its profile (${args.length} given)`, 2);
  const [profile] = await resolveProfiles(ctx, args);
  const frozen = readFrozenPlan(await readInput(ctx.io, opts.against), opts.against);
  let r: ReturnType<typeof checkHotplug>;
  try {
    r = checkHotplug(frozen, opts.hotplug!, profile, await ctx.vendors());
  } catch (e) {
    if (e instanceof PlanError) throw new CliError(e.message, 2, usageHint(e.message));
    throw e;
  }
  if (opts.json) ctx.io.stdout.write(toJson(r));
  else {
    const { c } = ctx;
    const d = r.device;
    ctx.out(`${c.bold('hot plug')} ${d.bdf} (${d.unit}) into the running ${frozen.viommu?.model ?? frozen.frozen.model}: ${r.ok ? c.green(d.mode) : c.red('refused')}`);
    for (const why of d.reasons) ctx.out(`  ${why}`);
    if (r.ok) {
      ctx.out();
      ctx.out(`QEMU monitor: device_add vfio-pci,host=${d.bdf},iommufd=iommufd0,bus=<a free hot-plug pcie-root-port${d.instance ? ` below ${d.instance}'s root` : ''}>`);
    }
  }
  if (!r.ok) ctx.exitCode = 1;
}

export async function runPlan(ctx: CommandContext, args: string[], opts: PlanOpts): Promise<void> {
  if (opts.hotplug !== undefined) return runHotplug(ctx, args, opts);
  if (opts.against) throw new CliError('--against goes with --hotplug <bdf>', 2);
  const profiles = await resolveProfiles(ctx, args);
  const policy: Policy = opts.policy ?? (opts.viommu ? 'strict' : profiles.length > 1 ? 'baseline' : 'host');
  const devices = opts.devices
    ?.split(',')
    .map((d) => d.trim())
    .filter(Boolean);
  let result: Plan;
  try {
    result = plan({ profiles, policy, viommu: opts.viommu, devices, vendors: await ctx.vendors() });
  } catch (e) {
    if (e instanceof PlanError) throw new CliError(e.message, 2, usageHint(e.message));
    if (e instanceof ProfileError) throw new CliError(`a built-in profile is not valid:\n${e.message}`, 1);
    throw e;
  }
  if (opts.json) ctx.io.stdout.write(toJson(result));
  else printPlan(ctx, result);
  if (!result.ok) ctx.exitCode = 1;
}

function usageHint(message: string): string | undefined {
  if (message.startsWith('no device named')) return 'give devices as segment:bus:device.function, comma-separated, or leave --devices out';
  if (message.includes('not in')) return 'give devices as segment:bus:device.function, comma-separated, from the profile';
  if (message.startsWith("Property '") || message.startsWith("Parameter '") || message.includes('vIOMMU model')) return 'see ioasid plan --help for examples of --viommu';
  return undefined;
}

function printPlan(ctx: CommandContext, p: Plan): void {
  const { c } = ctx;
  const modeColour = { nested: c.green, emulated: c.yellow, virtio: c.cyan, refused: c.red } as const;
  const hosts = p.hosts.length === 1 ? `"${p.hosts[0]}"` : `${p.hosts.length} hosts (${p.hosts.join(', ')})`;
  ctx.out(`${c.bold('vIOMMU')} for ${hosts}, ${p.policy} policy: ${c.bold(p.viommu.model)}`);
  const props = Object.entries(p.viommu.properties).map(([k, v]) => `${k}=${v === true ? 'on' : v === false ? 'off' : String(v)}`);
  if (props.length) ctx.out(`  ${props.join(' ')}`);
  for (const inst of p.viommu.instances ?? []) {
    const own = Object.entries(inst.properties).map(([k, v]) => `${k}=${v === true ? 'on' : v === false ? 'off' : String(v)}`);
    ctx.out(`  ${inst.id} on ${inst.bus} for ${inst.hostUnit}: ${own.join(' ')}`);
  }
  if (p.devices.length) {
    ctx.out();
    const multi = p.hosts.length > 1;
    const head = multi ? ['HOST', 'DEVICE', 'UNIT', 'MODE'] : ['DEVICE', 'UNIT', 'MODE'];
    const rows: string[][] = [head.map((h) => c.bold(h))];
    for (const d of p.devices) rows.push([...(multi ? [d.host] : []), d.bdf, d.unit, modeColour[d.mode](d.mode)]);
    const lines = table(rows);
    ctx.out(`  ${lines[0]}`);
    p.devices.forEach((d, i) => {
      ctx.out(`  ${lines[i + 1]}`);
      for (const r of d.reasons) ctx.out(`      ${d.mode === 'refused' && !r.startsWith('also:') && r === d.reasons[0] ? c.red(r) : c.dim(r)}`);
    });
  }
  ctx.out();
  const q = p.qemuVersion;
  ctx.out(`${c.bold('QEMU:')} ${c.dim(`QEMU ${q.minimum} or newer${q.approximate ? ' (release not confirmed)' : ''}: ${q.requirements.filter((r) => r.version === q.minimum).map((r) => r.why).join('; ')}`)}`);
  const args: string[] = [];
  for (let i = 0; i < p.qemuArgs.length; i += 2) args.push(`${p.qemuArgs[i]} ${p.qemuArgs[i + 1] ?? ''}`.trim());
  args.forEach((a, i) => ctx.out(`  ${a}${i < args.length - 1 ? ' \\' : ''}`));
  ctx.out();
  ctx.out(c.bold('libvirt:'));
  for (const l of p.libvirt.split('\n')) ctx.out(`  ${l}`);
  if (p.warnings.length) {
    ctx.out();
    for (const w of p.warnings) ctx.out(`${c.yellow('note:')} ${w}`);
  }
  if (p.errors.length) {
    ctx.out();
    for (const e of p.errors) ctx.out(`${c.red('error:')} ${e}`);
  }
  ctx.out();
  const refused = p.devices.filter((d) => d.mode === 'refused').length;
  if (p.ok) ctx.out(c.green(`ok: ${p.devices.length} device(s) backed`));
  else if (p.errors.length) ctx.out(c.red('QEMU would refuse this vIOMMU configuration: the VM does not start'));
  else ctx.out(c.red(`${refused} of ${p.devices.length} device(s) refused`) + (p.policy === 'strict' ? '; try --policy host to let the planner choose' : ''));
}
