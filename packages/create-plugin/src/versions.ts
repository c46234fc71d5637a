/** The ranges a generated plugin states: the ioasid release line it was generated for and its tools. */
export const VERSIONS = {
  /** The `@ioasid/core` peer range: the release line of the core this generator ships with. */
  core: '^0.1.0',
  /** The tsyringe peer range (the container a plugin registers into). */
  tsyringe: '^4.10.0',
  /** The reflect-metadata peer range tsyringe's decorators need. */
  reflectMetadata: '^0.2.2',
  /** The TypeScript dev dependency the generated tsconfig is written for. */
  typescript: '~5.9.3',
  /** The vitest dev dependency the generated conformance test runs on. */
  vitest: '~4.1.12',
  /** The `@types/node` dev dependency (the engines floor, Node 20.19). */
  typesNode: '^20.19.0',
} as const;
