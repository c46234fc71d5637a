/**
 * What dmesg, `dmesg -T`, `dmesg -r` / `-x`, journalctl and syslog put in front of the kernel's own text.
 * Every vendor parser and the planner's probe strip it the same way, so a line pasted from any of these
 * tools is read alike.
 */
const KERNEL_LOG_PREFIXES: readonly RegExp[] = [
  // journalctl / syslog: "Nov 25 12:00:00[.123456] host kernel: " (-o short[-precise]), RFC 3339
  // "2026-01-02T03:04:05.123+00:00 host kernel: " (-o short-iso[-precise]), "1732536000.123456 host kernel: "
  // (-o short-unix) and "[    1.234567] host kernel: " (-o short-monotonic)
  /^(?:[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}(?:[.,]\d+)?|\d{4}-\d{2}-\d{2}[T ][\d:.,]+(?:Z|[+-]\d{2}:?\d{2})?|\d{9,}\.\d+|\[\s*\d+\.\d+\]) \S+ kernel: /,
  // a syslog relay that drops the host: "kernel: "
  /^kernel: /,
  // /dev/kmsg records: "6,339,5140900,-;" (level, sequence, microseconds, flags)
  /^\d+,\d+,\d+,[^;]*;/,
  // printk level "<6>" (dmesg -r; syslog's "<30>" facility and level)
  /^<\d{1,3}>/,
  // a serial or BMC console's line counter: "000: "
  /^\d{1,6}: (?=\S)/,
  // dmesg -x facility and level: "kern  :info  : "
  /^[a-z]+\s*:[a-z]+\s*: /,
  // dmesg -T: "[Tue Nov 25 12:00:00 2026] "
  /^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}\] ?/,
  // dmesg: "[    1.234567] "
  /^\[\s*\d+\.\d+\] ?/,
  // printk caller id (CONFIG_PRINTK_CALLER): "[    T1] " / "[  C0] "
  /^\[\s*[TC]\d+\] ?/,
];

/** The kernel's own text of one log line: every known prefix removed, in any order, and a trailing CR. */
export function stripKernelLogPrefix(line: string): string {
  let s = line.replace(/\r?\n$/, '').replace(/\r$/, '');
  for (let again = true; again; ) {
    again = false;
    for (const re of KERNEL_LOG_PREFIXES) {
      const m = re.exec(s);
      if (m && m[0].length > 0) {
        s = s.slice(m[0].length);
        again = true;
      }
    }
  }
  return s;
}
