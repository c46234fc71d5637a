/** Human output with colour only on a TTY and without NO_COLOR. */
import pc from 'picocolors';

export interface Output {
  heading(text: string): void;
  line(text: string): void;
}

export function consoleOutput(stream: { write(s: string): unknown; isTTY?: boolean } = process.stdout): Output {
  const colour = stream.isTTY === true && !process.env.NO_COLOR;
  const bold = (s: string) => (colour ? pc.bold(pc.cyan(s)) : s);
  return {
    heading: (text) => stream.write(`\n${bold(text)}\n`),
    line: (text) => stream.write(`  ${text}\n`),
  };
}

/** Collects output in memory (tests, --json wrappers). */
export function memoryOutput(): Output & { text(): string } {
  const lines: string[] = [];
  return {
    heading: (t) => lines.push(`# ${t}`),
    line: (t) => lines.push(t),
    text: () => lines.join('\n'),
  };
}
