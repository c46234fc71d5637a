import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * Shared vitest settings. Workspace packages resolve to their TypeScript sources through the
 * `@ioasid/source` export condition, so tests never need a prior build.
 */
export function packageTestConfig(_dir: string) {
  const conditions = ['@ioasid/source', ...defaultServerConditions];
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@ioasid/source'] } },
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      environment: 'node',
      pool: 'threads',
      testTimeout: 60_000,
      passWithNoTests: true,
    },
  });
}
