/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/**
 * Content-Security-Policy: only the app's own origin. `wasm-unsafe-eval` is what
 * WebAssembly compilation needs (TF.js wasm backend); inline styles are allowed
 * because Svelte's `style:` directives write style attributes.
 */
export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');

const WASM_DIR = fileURLToPath(new URL('./node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));
/** Public path the TF.js wasm binaries are served from (see src/lib/engine/backend.ts). */
const WASM_PUBLIC = 'tfjs-wasm/';

/** Serve the TF.js `.wasm` files from our own origin, in dev and in the build. */
function tfjsWasm(): Plugin {
  const files = readdirSync(WASM_DIR).filter((f) => f.endsWith('.wasm'));
  return {
    name: 'tfjs-wasm-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const url = (req.url ?? '').split('?')[0];
        const name = url.startsWith('/' + WASM_PUBLIC) ? url.slice(WASM_PUBLIC.length + 1) : '';
        if (!files.includes(name)) return next();
        res.setHeader('Content-Type', 'application/wasm');
        res.end(readFileSync(join(WASM_DIR, name)));
      });
    },
    generateBundle() {
      for (const f of files) {
        this.emitFile({ type: 'asset', fileName: WASM_PUBLIC + f, source: readFileSync(join(WASM_DIR, f)) });
      }
    },
  };
}

/** The same policy as a `<meta>` tag, so a static deployment without our headers is locked down too. */
function cspMeta(): Plugin {
  return {
    name: 'csp-meta',
    transformIndexHtml: () => [
      { tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CSP }, injectTo: 'head-prepend' },
    ],
  };
}

const headers = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export default defineConfig({
  base: './',
  plugins: [svelte({ compilerOptions: { runes: true } }), tfjsWasm(), cspMeta()],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true, chunkSizeWarningLimit: 4096 },
  server: { headers, port: 5173, strictPort: false },
  preview: { headers, port: 4173 },
  test: {
    include: ['tests/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
