/**
 * `npm run bench [-- --json] [--quick] [--only walk,map_4k] [--runs N]`: the repository entry point of
 * `ioasid bench`, running from source. The workloads live in packages/cli/src/bench/.
 */
import { main } from '../../packages/cli/src/program.js';

process.exitCode = await main(['bench', ...process.argv.slice(2)]);
