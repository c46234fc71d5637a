/** @ioasid/fuzz: reliability tooling (private): vendor hosts, state snapshots, fail-nth, fuzz, storms. */
export * from './hosts.js';
export * from './snapshot.js';
export * from './scenario.js';
export * from './fail-nth.js';
export * from './fuzz.js';
export * from './campaign.js';
export * from './storm.js';
