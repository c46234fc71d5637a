/** Checks of what the user passes to the generator: every refusal says what was expected. */
import type { Result } from './result.js';

/** Vendor ids of the plugins in this repository, and the mock: a third party must not reuse them. */
export const RESERVED_IDS: readonly string[] = ['vtd', 'smmuv3', 'amd-vi', 'virtio-iommu', 'riscv-iommu', 'mock', 'core', 'cli', 'planner', 'web'];

const ID_RE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 .,()+&-]*$/;
const PACKAGE_RE = /^(?:@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;

/** A vendor id: lowercase letters, digits and single hyphens, starting with a letter, at most 40 characters. */
export function validateId(id: string): Result<string> {
  if (id.length === 0 || id.length > 40) return { ok: false, error: `--id: expected 1 to 40 characters, got ${id.length}` };
  if (!ID_RE.test(id)) return { ok: false, error: `--id '${id}': expected lowercase letters, digits and single hyphens, starting with a letter (e.g. 'acme-iommu')` };
  if (RESERVED_IDS.includes(id)) return { ok: false, error: `--id '${id}' is taken by a plugin of ioasid itself` };
  return { ok: true, value: id };
}

/** A human vendor name: printable, no quotes or backslashes (it goes into source strings and Markdown), at most 64 characters. */
export function validateName(name: string): Result<string> {
  if (name.length === 0 || name.length > 64) return { ok: false, error: `--name: expected 1 to 64 characters, got ${name.length}` };
  if (!NAME_RE.test(name)) return { ok: false, error: `--name '${name}': expected letters, digits, spaces and . , ( ) + & -` };
  return { ok: true, value: name };
}

/** An npm package name, scoped or not, at most 214 characters. */
export function validatePackageName(name: string): Result<string> {
  if (name.length > 214 || !PACKAGE_RE.test(name)) return { ok: false, error: `--package '${name}': not a valid npm package name` };
  return { ok: true, value: name };
}
