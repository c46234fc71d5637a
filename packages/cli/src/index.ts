export { buildProgram, main } from './program.js';
export { runDemo, type DemoResult } from './commands/demo.js';
export { CommandContext } from './context.js';
export { consoleOutput, memoryOutput, type Output } from './output.js';
export { allPlugins, createPluginHost } from './plugins.js';
export { builtinProfiles, shippedPresets, findBuiltin, type BuiltinProfile, type VendorPresets } from './profiles.js';
export { CliError, processIo, type CliIo, type Stream, type Colours } from './io.js';
