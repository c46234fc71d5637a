/**
 * A printf for tests: the kernel's format strings applied to values, independently of any plugin's renderer, so
 * that a vendor's rendered log line can be compared with what `pr_err(fmt, ...)` / `dev_err(dev, fmt, ...)` print.
 * It follows lib/vsprintf.c for the conversions IOMMU drivers use: `%s %c %d %i %u %x %X %%`, the flags `-`, `0`
 * and `#`, a field width, and the length modifiers `hh h l ll z` (which decide the width an unsigned value wraps
 * at). As in the kernel (and unlike C libraries), `%#x` of 0 prints `0x0`, and the `0x` counts toward the width.
 */

/** One value for `kernelPrintf`: a string for `%s`, a number or bigint for the integer conversions. */
export type PrintkArg = string | number | bigint;

const SPEC = /%([-0#]*)(\d*)(hh|h|ll|l|z)?([sciduxX%])/g;

function bitsOf(length: string | undefined): number {
  if (length === 'hh') return 8;
  if (length === 'h') return 16;
  if (length === 'l' || length === 'll' || length === 'z') return 64;
  return 32;
}

/**
 * `format` with each conversion replaced by the next of `args`. Throws when the arguments do not match the
 * conversions (too few, too many, a string for a number), as a test of a format string should fail loudly.
 */
export function kernelPrintf(format: string, ...args: readonly PrintkArg[]): string {
  let next = 0;
  const take = (): PrintkArg => {
    if (next >= args.length) throw new Error(`kernelPrintf: "${format}" needs more than ${args.length} argument(s)`);
    return args[next++];
  };
  const out = format.replace(SPEC, (_m, flags: string, widthText: string, length: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    const width = widthText === '' ? 0 : Number(widthText);
    const left = flags.includes('-');
    let body: string;
    let prefix = '';
    if (conv === 's') {
      const v = take();
      if (typeof v !== 'string') throw new Error(`kernelPrintf: %s given ${typeof v}`);
      body = v;
    } else if (conv === 'c') {
      const v = take();
      body = typeof v === 'string' ? v.slice(0, 1) : String.fromCharCode(Number(v) & 0xff);
    } else {
      const v = take();
      if (typeof v === 'string') throw new Error(`kernelPrintf: %${conv} given a string`);
      const bits = bitsOf(length);
      const n = BigInt(v);
      if (conv === 'd' || conv === 'i') {
        const s = BigInt.asIntN(bits, n);
        body = (s < 0n ? -s : s).toString();
        if (s < 0n) prefix = '-';
      } else {
        const u = BigInt.asUintN(bits, n);
        body = conv === 'u' ? u.toString() : conv === 'x' ? u.toString(16) : u.toString(16).toUpperCase();
        if (flags.includes('#') && conv !== 'u') prefix = conv === 'X' ? '0X' : '0x';
      }
    }
    const pad = Math.max(0, width - prefix.length - body.length);
    if (left) return prefix + body + ' '.repeat(pad);
    if (flags.includes('0') && conv !== 's' && conv !== 'c') return prefix + '0'.repeat(pad) + body;
    return ' '.repeat(pad) + prefix + body;
  });
  if (next !== args.length) throw new Error(`kernelPrintf: "${format}" takes ${next} argument(s), got ${args.length}`);
  return out;
}
