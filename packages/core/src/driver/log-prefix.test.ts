import { describe, expect, it } from 'vitest';
import { stripKernelLogPrefix } from './log-prefix.js';

// The same kernel line as each tool prints it.
const TEXT = 'DMAR: dmar0: reg_base_addr fed90000 ver 4:0 cap d2008c40660462 ecap f050da';
const CAPTURES = [
  `[    0.014567] ${TEXT}`,
  `[    0.014567][    T1] ${TEXT}`,
  `[Tue Nov 25 12:00:00 2026] ${TEXT}`,
  `<6>[    0.014567] ${TEXT}`,
  `<6>${TEXT}`,
  `<6>[    1.0][    T1] ${TEXT}`,
  `kern  :info  : [    1.0] ${TEXT}`,
  `2026-11-25T12:00:02.1+01:00 h kernel: ${TEXT}\r`,
  `kern  :info  : [    0.014567] ${TEXT}`,
  `Nov 25 12:00:00 host kernel: ${TEXT}`,
  `Nov  5 12:00:00 host kernel: [    0.014567] ${TEXT}`,
  `2026-01-02T03:04:05.123456+00:00 host kernel: ${TEXT}`,
  `${TEXT}\r`,
  `Nov 25 12:00:00.123456 host kernel: ${TEXT}`,
  `2026-11-25T12:00:00+0100 host kernel: ${TEXT}`,
  `1732536000.123456 host kernel: ${TEXT}`,
  `[    2.534421] host kernel: ${TEXT}`,
  `kernel: ${TEXT}`,
  `6,339,2534421,-;${TEXT}`,
  `<30>${TEXT}`,
  `000: ${TEXT}`,
];

describe('stripKernelLogPrefix', () => {
  it.each(CAPTURES)('reads the kernel text of %j', (line) => {
    expect(stripKernelLogPrefix(line)).toBe(TEXT);
  });

  it('leaves a line without a prefix, and the leading tab of a continuation line, alone', () => {
    expect(stripKernelLogPrefix(TEXT)).toBe(TEXT);
    expect(stripKernelLogPrefix('[    1.000000] \t0x0000000000000010')).toBe('\t0x0000000000000010');
  });
});
