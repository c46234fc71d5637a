/**
 * The ranges a generated plugin states. None is written here by hand: they come from the real versions,
 * so that a core release cannot leave the generator behind.
 *
 * - Inside the repository (tests, `--in-repo`, a local build) they are read from the repository itself:
 *   `@ioasid/core`'s package.json version and the root package.json's devDependencies.
 * - A packed or published generator has no repository around it: `npm pack` (and so `npm publish` and
 *   `changeset publish`, after `changeset version` set the new versions) runs the package's `prepack`
 *   script, which writes the same values, read from the repository at that moment, into `versions.json`
 *   beside `dist/`; `postpack` removes it from the working tree again.
 */
import { existsSync, readFileSync } from 'node:fs';

/** The version ranges a generated package.json states. */
export interface PluginVersions {
  /** The `@ioasid/core` peer range: `^` the version of the core released with this generator. */
  readonly core: string;
  /** The tsyringe peer range (the container a plugin registers into), as the repository uses it. */
  readonly tsyringe: string;
  /** The reflect-metadata peer range tsyringe's decorators need, as the repository uses it. */
  readonly reflectMetadata: string;
  /** The TypeScript dev dependency the generated tsconfig is written for. */
  readonly typescript: string;
  /** The vitest dev dependency the generated conformance test runs on. */
  readonly vitest: string;
  /** The `@types/node` dev dependency (the engines floor is Node 20.19). */
  readonly typesNode: string;
}

/** The repository's root package.json name (its workspaces hold `@ioasid/core`). */
const REPO_NAME = 'ioasid-workspace';

/** The fields of a package.json the versions are read from. */
export interface PackageManifest {
  /** The package name (`@ioasid/core`, or the workspace root's `ioasid-workspace`). */
  name?: string;
  /** The package version (core's is the one a generated plugin's peer range starts at). */
  version?: string;
  /** The root's devDependencies: the tool ranges a generated package uses. */
  devDependencies?: Record<string, string>;
}

/**
 * The ranges for a generator released with the core whose package.json is `core`, in the repository whose
 * root package.json is `root`. Throws when a version it needs is missing (a renamed tool, a moved file):
 * generating a package with a guessed range would hide that.
 */
export function versionsFromRepository(core: PackageManifest, root: PackageManifest): PluginVersions {
  if (core.name !== '@ioasid/core' || typeof core.version !== 'string') throw new Error('versions: not the package.json of @ioasid/core');
  const dev = root.devDependencies ?? {};
  const need = (name: string): string => {
    const range = dev[name];
    if (typeof range !== 'string') throw new Error(`versions: the repository's root package.json has no devDependency ${name}`);
    return range;
  };
  return {
    core: `^${core.version}`,
    tsyringe: need('tsyringe'),
    reflectMetadata: need('reflect-metadata'),
    typescript: need('typescript'),
    vitest: need('vitest'),
    typesNode: need('@types/node'),
  };
}

/** Where the versions are read from; the defaults are this package's own layout (`src/` or `dist/`). */
export interface VersionSources {
  /** The file `prepack` writes into a packed generator. */
  readonly pinned: URL;
  /** `@ioasid/core`'s package.json in the repository. */
  readonly core: URL;
  /** The repository's root package.json. */
  readonly root: URL;
}

const OWN_SOURCES: VersionSources = {
  pinned: new URL('../versions.json', import.meta.url),
  core: new URL('../../core/package.json', import.meta.url),
  root: new URL('../../../package.json', import.meta.url),
};

function readJson(url: URL): unknown {
  return JSON.parse(readFileSync(url, 'utf8'));
}

/**
 * Reads the versions: the repository's files when this generator runs inside the ioasid repository (its
 * root package.json is the workspace's: a core package.json found elsewhere, such as in a consumer's
 * node_modules, is not trusted), else the pinned file of a packed generator.
 */
export function loadPluginVersions(sources: VersionSources = OWN_SOURCES): PluginVersions {
  const root = existsSync(sources.root) ? (readJson(sources.root) as PackageManifest) : null;
  if (root?.name === REPO_NAME && existsSync(sources.core)) return versionsFromRepository(readJson(sources.core) as PackageManifest, root);
  if (!existsSync(sources.pinned)) {
    throw new Error('versions: neither the ioasid repository nor a packed versions.json around this generator (pack it with `npm pack`, which runs its prepack script)');
  }
  const pinned = readJson(sources.pinned) as Partial<Record<keyof PluginVersions, unknown>>;
  const keys: (keyof PluginVersions)[] = ['core', 'tsyringe', 'reflectMetadata', 'typescript', 'vitest', 'typesNode'];
  for (const k of keys) if (typeof pinned[k] !== 'string') throw new Error(`versions: ${sources.pinned.pathname} has no ${k}`);
  return pinned as unknown as PluginVersions;
}

let loaded: PluginVersions | undefined;

/** The ranges a generated plugin states, read once on first use (no file is read at import). */
export function pluginVersions(): PluginVersions {
  loaded ??= loadPluginVersions();
  return loaded;
}
