/** Runs `ioasid` through main(argv) with in-memory streams. */
import { fileURLToPath } from 'node:url';
import type { IommuPlugin } from '@ioasid/core/driver';
import { main } from '../program.js';

export const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(argv: string[], opts: { stdin?: string; tty?: boolean; env?: Record<string, string>; cwd?: string; plugins?: () => IommuPlugin[] } = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: opts.tty ?? false },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: async () => opts.stdin ?? '',
    env: opts.env ?? {},
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.plugins ? { plugins: opts.plugins } : {}),
  });
  return { code, stdout, stderr };
}
