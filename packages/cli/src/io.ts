/**
 * What the commands write to and read from, so that tests run them through main(argv) and capture
 * everything; plus errors with an exit code and a hint, tables and colour (TTY only, never with NO_COLOR).
 */
import { open, writeFile } from 'node:fs/promises';
import pc from 'picocolors';
import type { IommuPlugin } from '@ioasid/core/driver';

/** Where the CLI writes text: process.stdout / stderr, or a test's collector. */
export interface Stream {
  /** Writes `text` as is (the caller adds newlines). */
  write(text: string): unknown;
  /** A terminal: colour is used only then (and never with NO_COLOR). */
  isTTY?: boolean;
}

/** The CLI's connection to the outside world; main(argv, io) takes one so that tests capture everything. */
export interface CliIo {
  /** Normal output. */
  readonly stdout: Stream;
  /** Errors, hints and warnings. */
  readonly stderr: Stream;
  /** The whole of standard input (probe -, plan -). */
  readonly stdin: () => Promise<string>;
  /** Environment variables (NO_COLOR and the like). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where relative paths (files, --plugin modules) are resolved; the process's working directory by default. */
  readonly cwd?: string;
  /** The vendor plugins to load; the CLI's own set by default. */
  readonly plugins?: () => IommuPlugin[] | Promise<IommuPlugin[]>;
}

/** Input files and standard input larger than this are refused: every input the CLI reads is text. */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

/**
 * Text from `bytes`, or a one-line CliError for input that is not text (a NUL byte, or bytes that are
 * not UTF-8): its contents are never echoed back to the terminal.
 */
export function textOf(what: string, bytes: Uint8Array): string {
  if (bytes.includes(0)) throw new CliError(`${what} is a binary file (it contains NUL bytes); expected text`, 1);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CliError(`${what} is not UTF-8 text`, 1);
  }
}

function tooLarge(what: string): CliError {
  return new CliError(`${what} is larger than the ${MAX_INPUT_BYTES / 2 ** 20} MiB input limit`, 1);
}

async function readAll(stream: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    n += b.length;
    // Stop reading at the cap rather than holding an unbounded stream in memory.
    if (n > MAX_INPUT_BYTES) throw tooLarge('standard input');
    chunks.push(b);
  }
  return textOf('standard input', Buffer.concat(chunks));
}

/** The real process's streams, standard input and environment. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: () => readAll(process.stdin), env: process.env };
}

/** A failure the user can act on: exit code 1 (failed) or 2 (bad usage), and what to do about it. */
export class CliError extends Error {
  /** Always 'CliError'. */
  override readonly name = 'CliError';
  constructor(
    message: string,
    /** The process exit code: 1 when the command failed, 2 for bad usage. */
    readonly exitCode: 1 | 2 = 1,
    /** What to try instead, printed after the message. */
    readonly hint?: string,
  ) {

    super(message);
  }
}

/** The colour functions of one run (picocolors' `createColors`), identity functions when colour is off. */
export type Colours = ReturnType<typeof pc.createColors>;

export function colours(io: CliIo): Colours {
  return pc.createColors(io.stdout.isTTY === true && !io.env.NO_COLOR);
}

// SGR colour sequences start with ESC; built from the char code so the pattern holds no control character.
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.replace(ANSI, '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i] - c.replace(ANSI, '').length))).join('  ').trimEnd());
}

/** JSON with bigints as hex strings. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2)}\n`;
}

/** A file's text, or stdin for "-". */
export async function readInput(io: CliIo, path: string): Promise<string> {
  if (path === '-') return io.stdin();
  let bytes: Buffer;
  try {
    const f = await open(path, 'r');
    try {
      // The size is checked before anything is read: a 100 MB file is refused, not loaded.
      if ((await f.stat()).size > MAX_INPUT_BYTES) throw tooLarge(path);
      bytes = await f.readFile();
    } finally {
      await f.close();
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`cannot read ${path}: no such file`, 1, 'check the path, or use - to read standard input');
    if (code === 'EISDIR') throw new CliError(`cannot read ${path}: it is a directory`, 1);
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`, 1);
  }
  if (bytes.length > MAX_INPUT_BYTES) throw tooLarge(path);
  return textOf(path, bytes);
}

export async function writeBytes(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFile(path, bytes);
  } catch (e) {
    throw new CliError(`cannot write ${path}: ${(e as Error).message}`, 1, 'check that the directory exists and is writable');
  }
}

export async function writeOutput(path: string, text: string): Promise<void> {
  try {
    await writeFile(path, text, 'utf8');
  } catch (e) {
    throw new CliError(`cannot write ${path}: ${(e as Error).message}`, 1, 'check that the directory exists and is writable');
  }
}
