import { defineConfig } from 'vitest/config';

// The bundle is committed and embedded in the relay binary, so the build
// must give the same bytes on every machine: no inlined data: URLs (the CSP
// allows none), no source maps, no module-preload polyfill (an inline
// script would break the CSP), and asset names from content hashes only.
export default defineConfig({
  base: '/ui/',
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    rolldownOptions: {
      output: {
        entryFileNames: 'assets/[name]-[hash].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  test: {
    environment: 'happy-dom',
    include: ['test/**/*.test.{ts,tsx}'],
  },
});
