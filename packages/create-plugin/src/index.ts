/**
 * @ioasid/create-plugin: generates an ioasid vendor plugin package wired to core's conformance kit.
 * The `create-ioasid-plugin` command (`npm create @ioasid/plugin`) and the same as an API.
 */
export { generatePlugin, findRepoRoot, type GenerateOptions, type GenerateResult } from './generate.js';
export { main, parseCommandLine, USAGE } from './cli.js';
export { validateId, validateName, validatePackageName, RESERVED_IDS } from './validate.js';
export { pluginVersions, loadPluginVersions, versionsFromRepository, type PluginVersions, type VersionSources, type PackageManifest } from './versions.js';
export type { Result } from './result.js';
