export { buildProgram, main } from './program.js';
export { runDemo } from './commands/demo.js';
export { consoleOutput, memoryOutput, type Output } from './output.js';
