/** `ioasid decode <vendor> <value|record|line...>`: explain a register value, a fault record or a log line. */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { CliError, table, toJson } from '../io.js';

interface DecodeOpts {
  kind?: string;
  json?: boolean;
}

export function registerDecode(program: Command, ctx: () => CommandContext): void {
  program
    .command('decode')
    .description('explain a capability register, a fault record or a kernel log line, by the specification\'s field names')
    .argument('<vendor>', 'the vendor plugin id: vtd, smmuv3, ...')
    .argument('<what...>', 'a register value, record words, or a whole log line (quoted or not)')
    .option('-k, --kind <kind>', 'what the value is (e.g. cap, ecap, idr0, event, frcd); guessed when left out')
    .option('--json', 'print { "vendor", "kind", "fields", "summary", "linux", "advice"? }')
    .addHelpText(
      'after',
      `
Examples:
  $ ioasid decode vtd 0xd2008c40660462 --kind cap
  $ ioasid decode vtd "DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x7ff000 [fault reason 0x06] PTE Read access is not set"
  $ ioasid decode smmuv3 0x080d76bb --kind idr0 --json

Exit status: 0 decoded, 1 the vendor could not decode it, 2 on bad usage (unknown vendor).`,
    )
    .action(async (vendorId: string, what: string[], opts: DecodeOpts) => runDecode(ctx(), vendorId, what, opts));
}

export async function runDecode(ctx: CommandContext, vendorId: string, what: string[], opts: DecodeOpts): Promise<void> {
  const host = await ctx.pluginHost();
  const vendors = host.vendors();
  const vendor = vendors.find((v) => v.id === vendorId.toLowerCase());
  if (!vendor) throw new CliError(`unknown vendor "${vendorId}"`, 2, `registered vendors: ${vendors.map((v) => v.id).join(', ') || '(none)'}`);
  // Decoding is the plugin's optional presentation part, not a vendor op.
  const decoder = host.decoder(vendor.id);
  if (!decoder) throw new CliError(`the ${vendor.id} plugin has no decoder`, 1);
  const input = what.join(' ').trim();
  const r = decoder.decode(input, opts.kind);
  if (!r.ok) throw new CliError(`${vendor.id} could not decode "${input}": ${r.error}`, 1, opts.kind ? undefined : 'name what it is with --kind');
  const d = r.value;
  if (opts.json) {
    ctx.io.stdout.write(toJson({ vendor: d.vendor, kind: d.kind, fields: d.fields, summary: d.summary, linux: d.linux, ...(d.advice ? { advice: d.advice } : {}) }));
    return;
  }
  const { c } = ctx;
  ctx.out(`${c.bold(`${d.vendor} ${d.kind}`)}: ${d.summary}`);
  const rows = Object.entries(d.fields).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v)]);
  if (rows.length) {
    ctx.out();
    table([[c.bold('FIELD'), c.bold('VALUE')], ...rows]).forEach((l) => ctx.out(`  ${l}`));
  }
  if (d.linux) {
    ctx.out();
    ctx.out(`${c.bold('linux:')} ${d.linux}`);
  }
  if (d.advice) {
    for (const [title, items] of [['usual causes:', d.advice.causes], ['check next:', d.advice.checks]] as const) {
      if (!items.length) continue;
      ctx.out();
      ctx.out(c.bold(title));
      for (const item of items) ctx.out(`  - ${item}`);
    }
  }
}
