import { mergeConfig } from 'vitest/config';
import { packageTestConfig } from '../../vitest.shared.ts';

// The browser tests build the page first: give their setup room on a busy 2-core machine.
export default mergeConfig(packageTestConfig(import.meta.dirname), { test: { hookTimeout: 240_000 } });
