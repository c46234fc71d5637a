import { defineConfig } from 'vite';

/**
 * A static, offline build: relative asset URLs (the page works from file:// and any sub-path), one
 * bundle, workspace packages resolved to their TypeScript sources.
 */
export default defineConfig({
  base: './',
  resolve: {
    conditions: ['@ioasid/source', 'browser', 'import', 'module', 'default'],
    // tsyringe's package.json points bundlers at its ES5 build; its ES2015 build is the same code, smaller.
    alias: [{ find: /^tsyringe$/, replacement: 'tsyringe/dist/esm2015/index.js' }],
  },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // terser with two compress passes: some 5% under esbuild's minifier, which keeps the page in its budget.
    minify: 'terser',
    terserOptions: { ecma: 2020, module: true, toplevel: true, compress: { passes: 3 }, format: { comments: false } },
    reportCompressedSize: true,
    // The page is one bundle on purpose (it works from file://); its budget is checked by the e2e test.
    chunkSizeWarningLimit: 810,
    modulePreload: { polyfill: false },
  },
  esbuild: { target: 'es2022' },
});
