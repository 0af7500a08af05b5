/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
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
const WASM_OUT = fileURLToPath(new URL('./node_modules/@tensorflow/tfjs-backend-wasm/wasm-out/', import.meta.url));
/** Public path the TF.js wasm binaries are served from (see src/lib/engine/backend.ts). */
const WASM_PUBLIC = 'tfjs-wasm/';
/** The threaded build's emscripten script, which each pthread worker loads with `importScripts`. */
const THREADED_MAIN = 'tfjs-backend-wasm-threaded-simd.js';
/** The pthread worker's own script. */
const THREADED_WORKER = 'tfjs-backend-wasm-threaded-simd.worker.js';

/**
 * The files the TF.js wasm backend loads at run time: the three `.wasm` binaries and, for the
 * threaded build, the pthread worker and the emscripten script it imports, as real files of our
 * origin (see `tfjsWasmThreads`). TF.js ships the worker as a string in a CommonJS module; it
 * escapes its `\n`s before use, and so do we.
 */
function wasmRuntimeFiles(): Map<string, () => Buffer | string> {
  const files = new Map<string, () => Buffer | string>();
  for (const f of readdirSync(WASM_DIR).filter((f) => f.endsWith('.wasm')))
    files.set(f, () => readFileSync(join(WASM_DIR, f)));
  files.set(THREADED_MAIN, () => readFileSync(join(WASM_OUT, THREADED_MAIN)));
  files.set(THREADED_WORKER, () => {
    const mod = createRequire(import.meta.url)(join(WASM_OUT, THREADED_WORKER)) as { wasmWorkerContents: string };
    return mod.wasmWorkerContents.replace(/\n/g, '\\n');
  });
  return files;
}

/** Serve the TF.js wasm runtime files from our own origin, in dev and in the build. */
function tfjsWasm(): Plugin {
  const files = wasmRuntimeFiles();
  return {
    name: 'tfjs-wasm-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const url = (req.url ?? '').split('?')[0];
        const name = url.startsWith('/' + WASM_PUBLIC) ? url.slice(WASM_PUBLIC.length + 1) : '';
        const file = files.get(name);
        if (!file) return next();
        // The dev server's `headers` do not reach a middleware's own answer; a pthread worker's
        // script without COEP would be refused in an isolated page.
        for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
        res.setHeader('Content-Type', name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        res.end(file());
      });
    },
    generateBundle() {
      for (const [f, read] of files) this.emitFile({ type: 'asset', fileName: WASM_PUBLIC + f, source: read() });
    },
  };
}

/**
 * TF.js wasm with threads, minified, under our CSP. TF.js 4.22 starts its pthread workers from
 * `blob:` URLs: the worker's script is a string made into a Blob, and the emscripten factory is
 * sent to each worker as a Blob of `wasmFactoryThreadedSimd.toString()`. Two things break that in
 * the built app, and either leaves `setBackend('wasm')` waiting forever for workers that never
 * report "loaded" (emscripten has no timeout). Both were seen here in Chromium (issue 18):
 * - our CSP (`worker-src 'self'`, `script-src 'self'`, which the engine worker's `blob:` children
 *   inherit) refuses `new Worker(blob:…)`: no pthread worker ever starts;
 * - with the CSP lifted, the 8 workers start and each throws "ReferenceError: e is not defined":
 *   after minification `toString()` of the bundled factory is no longer the standalone emscripten
 *   script but refers to names the minifier gave variables outside it.
 * So this rewrites `backend_wasm.js` to start the workers from the untouched emscripten files,
 * served by `tfjsWasm` next to the `.wasm` binaries (same origin: allowed by the CSP, nothing to
 * minify), and passes our thread count down (`patchTfjsWasmCores`). It fails the build if TF.js
 * changes those lines. The same transform runs in the worker bundle and in the dev server's
 * dependency pre-bundling. See https://github.com/tensorflow/tfjs/issues/7634 (threads with
 * bundlers) and emscripten's `mainScriptUrlOrBlob` (src/library_pthread.js).
 */
const PTHREAD_WORKER_BLOB =
  /const response = wasmWorkerContents\.replace\([^;]*;\s*const blob = new Blob\(\[response\][^;]*;\s*return URL\.createObjectURL\(blob\);/;
const MAIN_SCRIPT_BLOB =
  /factoryConfig\.mainScriptUrlOrBlob = new Blob\(\[[\s\S]*?\], \{ type: 'text\/javascript' \}\);/;
const FACTORY_CONFIG = /const factoryConfig = \{\};/;
const wasmFileUrl = (name: string) => `new URL((wasmPathPrefix ?? '') + '${name}', self.location.href).href`;

export function patchTfjsWasmThreads(code: string): string {
  if (!PTHREAD_WORKER_BLOB.test(code) || !MAIN_SCRIPT_BLOB.test(code) || !FACTORY_CONFIG.test(code))
    throw new Error(
      '@tensorflow/tfjs-backend-wasm changed how it starts pthread workers; update patchTfjsWasmThreads in vite.config.ts',
    );
  return code
    .replace(PTHREAD_WORKER_BLOB, `return ${wasmFileUrl(THREADED_WORKER)};`)
    .replace(MAIN_SCRIPT_BLOB, `factoryConfig.mainScriptUrlOrBlob = ${wasmFileUrl(THREADED_MAIN)};`)
    .replace(FACTORY_CONFIG, 'const factoryConfig = { tfjsThreads: threadsCount };');
}

/**
 * TF.js's C++ side caps the pool at `emscripten_num_logical_cores() / 2` ("many x86-64 processors
 * have 2 threads per core", tfjs-backend-wasm/src/cc/backend.cc), whatever `setThreadsCount`
 * asked: on a 2-core machine that is 1 thread. The emscripten script answers the logical cores
 * from `navigator.hardwareConcurrency`; this makes it answer twice the count we asked for
 * (`factoryConfig.tfjsThreads`, set above) so our choice (src/lib/engine/backend.ts) holds.
 */
const LOGICAL_CORES = /return navigator\["hardwareConcurrency"\]\}/;

export function patchTfjsWasmCores(code: string): string {
  if (!LOGICAL_CORES.test(code))
    throw new Error(
      '@tensorflow/tfjs-backend-wasm changed _emscripten_num_logical_cores; update patchTfjsWasmCores in vite.config.ts',
    );
  return code.replace(
    LOGICAL_CORES,
    'return Module["tfjsThreads"] > 0 ? 2 * Module["tfjsThreads"] : navigator["hardwareConcurrency"]}',
  );
}

const BACKEND_WASM_JS = /[\\/]@tensorflow[\\/]tfjs-backend-wasm[\\/]dist[\\/]backend_wasm\.js$/;
const THREADED_JS = /[\\/]@tensorflow[\\/]tfjs-backend-wasm[\\/]wasm-out[\\/]tfjs-backend-wasm-threaded-simd\.js$/;

function tfjsWasmThreads(): Plugin {
  return {
    name: 'tfjs-wasm-threads',
    enforce: 'pre',
    transform(code, id) {
      const file = id.split('?')[0];
      if (BACKEND_WASM_JS.test(file)) return { code: patchTfjsWasmThreads(code) };
      if (THREADED_JS.test(file)) return { code: patchTfjsWasmCores(code) };
      return null;
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

/**
 * Cross-origin isolation (`crossOriginIsolated`): what `SharedArrayBuffer`, and so TF.js wasm's
 * threads, need. The app loads nothing from other origins, so `require-corp` costs nothing.
 * public/sw.js adds the same two headers to what it serves, for static hosts that cannot set them.
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

const headers = {
  ...ISOLATION_HEADERS,
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export default defineConfig({
  base: './',
  plugins: [
    svelte({ compilerOptions: { runes: true } }),
    tfjsWasm(),
    tfjsWasmThreads(),
    cspMeta(),
    rewardWorkerCsp(),
    precacheServiceWorker(),
  ],
  // `plugins` above do not reach the worker bundles in a build: the engine worker needs the patch.
  worker: { format: 'es', plugins: () => [tfjsWasmThreads()] },
  // The dev server pre-bundles TF.js without the app's plugins: patch the threaded start there too.
  optimizeDeps: { rolldownOptions: { plugins: [tfjsWasmThreads()] } },
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
