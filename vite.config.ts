/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { join, relative, resolve, sep } from 'node:path';
import type { ServerResponse } from 'node:http';

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

/**
 * The reward-function worker's own policy (src/workers/reward-fn.worker.ts): a dedicated worker
 * takes its CSP from its script's response, so only this worker may compile code
 * (`'unsafe-eval'`: the user's reward functions), and it may reach nothing: no fetch or sockets
 * (`connect-src 'none'`), no nested workers, no images or fonts. The document keeps `CSP`.
 */
export const REWARD_WORKER_CSP = [
  "default-src 'none'",
  "script-src 'self' 'unsafe-eval'",
  "connect-src 'none'",
  "worker-src 'none'",
].join('; ');
/** The reward worker's script: `/src/workers/reward-fn.worker.ts?worker_file…` in dev, `assets/reward-fn.worker-<hash>.js` built. */
const REWARD_WORKER_PATH = /\/reward-fn\.worker(?:\.ts|-[\w-]+\.js)(?:[?#]|$)/;

/** Serve the reward worker's script with `REWARD_WORKER_CSP` (dev and preview servers). */
function rewardWorkerCsp(): Plugin {
  const use = (req: { url?: string }, res: ServerResponse, next: () => void) => {
    if (REWARD_WORKER_PATH.test(req.url ?? '')) {
      // The `headers` option sets the document's policy after this runs: keep ours.
      const set = res.setHeader.bind(res);
      res.setHeader = (name, value) =>
        set(name, name.toLowerCase() === 'content-security-policy' ? REWARD_WORKER_CSP : value);
      set('Content-Security-Policy', REWARD_WORKER_CSP);
    }
    next();
  };
  return {
    name: 'reward-worker-csp',
    configureServer: (server) => void server.middlewares.use(use),
    configurePreviewServer: (server) => void server.middlewares.use(use),
  };
}

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
  plugins: [
    svelte({ compilerOptions: { runes: true } }),
    tfjsWasm(),
    cspMeta(),
    rewardWorkerCsp(),
    precacheServiceWorker(),
  ],
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
