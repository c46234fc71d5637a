/** Human output with colour only on a TTY and without NO_COLOR. */
import pc from 'picocolors';

/** Human-readable output of a command: section headings and indented lines. */
export interface Output {
  /** Starts a section: a blank line, then `text` (bold cyan on a colour terminal). */
  heading(text: string): void;
  /** One line of the current section. */
  line(text: string): void;
}

/** Output to a stream (stdout by default), coloured only on a TTY without NO_COLOR. */
export function consoleOutput(stream: { write(s: string): unknown; isTTY?: boolean } = process.stdout): Output {
  const colour = stream.isTTY === true && !process.env.NO_COLOR;
  const bold = (s: string) => (colour ? pc.bold(pc.cyan(s)) : s);
  return {
    heading: (text) => stream.write(`\n${bold(text)}\n`),
    line: (text) => stream.write(`  ${text}\n`),
  };
}

/** Collects output in memory (tests, --json wrappers). */
export function memoryOutput(): Output & {
  /** Everything written so far, one line per entry, headings as `# heading`. */
  text(): string;
} {

  const lines: string[] = [];
  return {
    heading: (t) => lines.push(`# ${t}`),
    line: (t) => lines.push(t),
    text: () => lines.join('\n'),
  };
}
