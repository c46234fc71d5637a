/** The ranges a generated plugin states: the ioasid release line it was generated for and its tools. */
export const VERSIONS = {
  core: '^0.1.0',
  tsyringe: '^4.10.0',
  reflectMetadata: '^0.2.2',
  typescript: '~5.9.3',
  vitest: '~4.1.12',
  typesNode: '^20.19.0',
} as const;
