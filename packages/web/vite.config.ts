import { defineConfig } from 'vite';

/**
 * A static, offline build: relative asset URLs (the page works from file:// and any sub-path), one
 * bundle, workspace packages resolved to their TypeScript sources.
 */
export default defineConfig({
  base: './',
  resolve: { conditions: ['@ioasid/source', 'browser', 'import', 'module', 'default'] },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: true,
    // The page is one bundle on purpose (it works from file://); its budget is checked by the e2e test.
    chunkSizeWarningLimit: 800,
    modulePreload: { polyfill: false },
  },
  esbuild: { target: 'es2022' },
});
