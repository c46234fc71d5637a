#!/usr/bin/env node
import { main } from './program.js';

// A closed pipe (`ioasid demo | head`) is a normal way for a reader to stop.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2));
