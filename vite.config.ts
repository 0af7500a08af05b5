/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { join, relative, resolve, sep } from 'node:path';

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

/** Every file under `dir`, as paths relative to it with `/` separators. */
function listFiles(dir: string, root = dir): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? listFiles(p, root) : [relative(root, p).split(sep).join('/')];
  });
}

/**
 * Offline after the first load: write the list of the built files (the app shell, the TF.js
 * `.wasm` binaries, the bundled model) and a version hashed from their contents into
 * `sw.js` (copied from public/sw.js), which precaches them. Source maps are left out.
 */
function precacheServiceWorker(): Plugin {
  let outDir = 'dist';
  return {
    name: 'precache-sw',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    closeBundle() {
      const swPath = join(outDir, 'sw.js');
      if (!existsSync(swPath)) return;
      const files = listFiles(outDir)
        .filter((f) => f !== 'sw.js' && !f.endsWith('.map'))
        .sort();
      const hash = createHash('sha256');
      for (const f of files)
        hash
          .update(f)
          .update('\0')
          .update(readFileSync(join(outDir, f)));
      const precache = JSON.stringify({ version: hash.digest('hex').slice(0, 16), files });
      const src = readFileSync(swPath, 'utf8');
      const out = src.replace(/\/\* precache: \*\/[\s\S]*?\/\* :precache \*\//, precache);
      if (out === src) throw new Error('public/sw.js lost its /* precache: */ … /* :precache */ marker');
      writeFileSync(swPath, out);
    },
  };
}

const headers = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export default defineConfig({
  base: './',
  plugins: [svelte({ compilerOptions: { runes: true } }), tfjsWasm(), cspMeta(), precacheServiceWorker()],
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
