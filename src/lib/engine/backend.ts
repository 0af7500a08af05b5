/**
 * TF.js backend choice. Order for `auto`: WebGPU only on a real (non-fallback)
 * adapter, then wasm (SIMD), then WebGL, then cpu. Each init has a timeout; a
 * hang or failure falls through to the next with a note the UI shows.
 *
 * Workarounds, each seen on Chromium here:
 * - Importing the webgpu backend registers it with the highest priority even
 *   when no adapter exists, so we always call `tf.setBackend` explicitly and
 *   decide with `navigator.gpu.requestAdapter()` first.
 * - A software adapter (SwiftShader, `info.isFallbackAdapter`) is ~25× slower
 *   than wasm, so `auto` skips it.
 * - Threaded wasm hung `setBackend` in the built app: TF.js starts its pthread
 *   workers from `blob:` scripts, which our CSP refuses and which minification
 *   breaks. vite.config.ts (`tfjsWasmThreads`) makes them load real files of our
 *   origin instead (https://github.com/tensorflow/tfjs/issues/7634 and friends).
 *   Threads need `crossOriginIsolated` (COOP + COEP headers, vite.config.ts and
 *   public/sw.js); without it wasm runs on one thread and says why.
 * - The `.wasm` files must be served by the app and `setWasmPaths` called in
 *   every worker.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { attentionKernelReady, prepareAttentionKernel } from '../model/kernels/attention-kernel';
import { gemmBuild, gemmPolicy, prepareGemmKernel } from '../model/kernels/gemm-kernel';
import { BackendInitError } from './errors';
import { WASM_HEAP_MAX_BYTES, type BackendLimits } from '../model/plan';
import type { BackendChoice, BackendInfo, BackendName } from './types';

export const DEFAULT_BACKEND_TIMEOUT_MS = 15_000;
const AUTO_ORDER: BackendName[] = ['webgpu', 'wasm', 'webgl', 'cpu'];

/**
 * The GPU backends are loaded only when they are tried: they are most of the worker's code,
 * and on a machine without a GPU adapter `auto` never needs them (faster first screen).
 */
const LOADERS: Partial<Record<BackendName, () => Promise<unknown>>> = {
  webgpu: () => import('@tensorflow/tfjs-backend-webgpu'),
  webgl: () => import('@tensorflow/tfjs-backend-webgl'),
};

async function ensureRegistered(name: BackendName): Promise<boolean> {
  if (!tf.findBackendFactory(name)) await LOADERS[name]?.();
  return !!tf.findBackendFactory(name);
}

let wasmPathSet: string | null = null;

/**
 * Emscripten starts the pthread workers of TF.js's threaded build before `setBackend` returns: a
 * pool of 8 (`PTHREAD_POOL_SIZE` in tfjs-backend-wasm-threaded-simd.js). More threads than that
 * would wait for workers created while the engine worker is blocked, so we stay inside the pool.
 */
export const WASM_MAX_THREADS = 8;

/** How the wasm backend will run: threads, and why it is one when it is. */
export interface WasmThreadPlan {
  threads: number;
  /** Why threads are off, for the header; null when they are on. */
  reason: string | null;
}

/**
 * Threads for the wasm backend: `requested` (the `?threads=` URL parameter) or the machine's
 * logical cores, capped at `WASM_MAX_THREADS`; one when the context is not cross-origin isolated
 * (no `SharedArrayBuffer`) or has a single core. Pure, so it is unit-tested.
 */
export function planWasmThreads(env: {
  isolated: boolean;
  cores: number | undefined;
  requested?: number;
}): WasmThreadPlan {
  if (!env.isolated) return { threads: 1, reason: 'not cross-origin isolated' };
  const want = env.requested ?? env.cores ?? 1;
  const threads = Math.max(1, Math.min(WASM_MAX_THREADS, Math.floor(want)));
  if (threads > 1) return { threads, reason: null };
  return { threads: 1, reason: env.requested === 1 ? 'one thread asked for' : 'one core' };
}

let wasmPlan: WasmThreadPlan = { threads: 1, reason: 'not configured' };

/** Where the `.wasm` files are, and how many threads wasm may use (`threads`: the URL's override). */
export function configureWasm(path: string, threads?: number): void {
  if (wasmPathSet === path) return;
  const g = globalThis as { crossOriginIsolated?: boolean; navigator?: { hardwareConcurrency?: number } };
  // In Node (tests, scripts) TF.js has no threads: keep the flag's own answer there (false).
  const isolated = !!g.crossOriginIsolated && typeof SharedArrayBuffer === 'function';
  wasmPlan = planWasmThreads({ isolated, cores: g.navigator?.hardwareConcurrency, requested: threads });
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', wasmPlan.threads > 1);
  if (wasmPlan.threads > 1) setThreadsCount(wasmPlan.threads);
  setWasmPaths(path);
  wasmPathSet = path;
}

/** Threads the active wasm backend runs on (XNNPACK's pool), 1 before it starts. */
export function wasmThreads(): number {
  try {
    return getThreadsCount();
  } catch {
    return 1;
  }
}

interface AdapterProbe {
  available: boolean;
  isFallback: boolean;
  description: string;
}

type GPUAdapterInfoLike = {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
};

function describeAdapterInfo(info: GPUAdapterInfoLike | undefined): string {
  if (!info) return 'WebGPU adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s): s is string => !!s);
  return parts.length ? parts.join(' · ') : 'WebGPU adapter';
}

async function probeWebGPU(): Promise<AdapterProbe> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return { available: false, isFallback: false, description: 'no navigator.gpu' };
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { available: false, isFallback: false, description: 'no WebGPU adapter' };
  const info = (adapter as unknown as { info?: GPUAdapterInfoLike }).info;
  const isFallback = !!(
    info?.isFallbackAdapter ?? (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter
  );
  return { available: true, isFallback, description: describeAdapterInfo(info) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not answer within ${Math.round(ms / 1000)} s`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Describe the device behind the active backend. */
export function describeActive(name: BackendName, webgpuDescription?: string): string {
  switch (name) {
    case 'webgpu': {
      const b = tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string } };
      return webgpuDescription ?? describeAdapterInfo(b.adapterInfo);
    }
    case 'wasm': {
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      const n = wasmThreads();
      const why = n === 1 && wasmPlan.reason ? ` (${wasmPlan.reason})` : '';
      const gemm = gemmPolicy() === 'never' ? null : gemmBuild();
      const mm = gemm ? `, own matmul kernel${gemm === 'relaxed' ? ' (FMA)' : ''}` : '';
      return `WebAssembly${simd ? ' SIMD' : ''}, ${n} thread${n === 1 ? '' : 's'}${why}${attentionKernelReady() ? ', own attention kernel' : ''}${mm}`;
    }
    case 'webgl': {
      try {
        const gl = (tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext } }).gpgpu?.gl;
        const ext = gl?.getExtension('WEBGL_debug_renderer_info');
        const r = ext && gl ? (gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) as string) : gl?.getParameter(gl.RENDERER);
        return `WebGL ${tf.env().getNumber('WEBGL_VERSION')}${r ? ' · ' + r : ''}`;
      } catch {
        return 'WebGL';
      }
    }
    case 'cpu':
      return `JavaScript (TF.js cpu backend)${attentionKernelReady() ? ', own attention kernel' : ''}`;
  }
}

/**
 * A tiny op that must give the right number; catches backends that initialise but cannot compute.
 * Read back with `data()`: WebGPU's `dataSync()` silently returns zeros in a worker.
 */
export async function smokeTest(): Promise<void> {
  const t = tf.tidy(() => tf.sum(tf.matMul(tf.ones([2, 2]), tf.ones([2, 2]))));
  const v = (await t.data())[0];
  t.dispose();
  if (v !== 8) throw new Error(`smoke test gave ${v}, expected 8`);
}

/**
 * Initialise one backend, or throw. Re-registers a backend that was removed after a failure or a
 * lost device, so a retry starts from a fresh device.
 */
async function tryBackend(name: BackendName, timeoutMs: number): Promise<void> {
  const ok = await withTimeout(tf.setBackend(name), timeoutMs, `The ${name} backend`);
  if (!ok) throw new Error(`tf.setBackend('${name}') returned false`);
  await tf.ready();
  await smokeTest();
  if (name === 'wasm' || name === 'cpu') await prepareAttentionKernel();
  if (name === 'wasm') await prepareGemmKernel();
}

export interface ChooseOptions {
  requested: BackendChoice;
  timeoutMs?: number;
  /** Backends to leave out (e.g. one whose device was just lost). */
  exclude?: BackendName[];
}

/** Choose and initialise a backend; returns what is active and the notes gathered on the way. */
export async function chooseBackend(opts: ChooseOptions): Promise<BackendInfo> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_BACKEND_TIMEOUT_MS;
  const notes: string[] = [];
  const exclude = new Set(opts.exclude ?? []);
  const order: BackendName[] =
    opts.requested === 'auto' ? AUTO_ORDER : [opts.requested, ...AUTO_ORDER.filter((b) => b !== opts.requested)];
  let webgpuDescription: string | undefined;
  let webgpuFallback = false;

  for (const name of order) {
    if (exclude.has(name)) continue;
    if (name === 'webgpu') {
      let probe: AdapterProbe;
      try {
        probe = await withTimeout(probeWebGPU(), timeoutMs, 'navigator.gpu.requestAdapter()');
      } catch (e) {
        notes.push(`webgpu: ${(e as Error).message}`);
        continue;
      }
      if (!probe.available) {
        if (opts.requested === 'webgpu') notes.push(`webgpu: ${probe.description}`);
        continue;
      }
      webgpuDescription = probe.description;
      webgpuFallback = probe.isFallback;
      if (probe.isFallback && opts.requested === 'auto') {
        notes.push(`webgpu: skipped the software adapter (${probe.description}); wasm is faster here`);
        continue;
      }
    }
    let available = false;
    try {
      available = await ensureRegistered(name);
    } catch (e) {
      notes.push(`${name}: could not be loaded (${(e as Error).message})`);
      continue;
    }
    if (!available) {
      notes.push(`${name}: not available in this browser`);
      continue;
    }
    try {
      await tryBackend(name, timeoutMs);
    } catch (e) {
      notes.push(`${name}: failed to start (${(e as Error).message})`);
      continue;
    }
    if (opts.requested !== 'auto' && name !== opts.requested) {
      notes.unshift(`${opts.requested} could not start; using ${name} instead`);
    }
    return {
      name,
      requested: opts.requested,
      adapter: describeActive(name, name === 'webgpu' ? webgpuDescription : undefined),
      isFallbackAdapter: name === 'webgpu' && webgpuFallback,
      notes,
      ...(name === 'wasm' ? { threads: wasmThreads() } : {}),
    };
  }
  throw new BackendInitError(
    `No TF.js backend could start (${notes.join('; ')}). Try a current Chrome, Edge or Firefox, or reload the page.`,
  );
}

/** The WebGPU device of the active backend, if it is WebGPU. */
export function activeWebGPUDevice(): GPUDevice | null {
  if (tf.getBackend() !== 'webgpu') return null;
  return (tf.backend() as unknown as { device?: GPUDevice }).device ?? null;
}

/**
 * Forget a backend whose device was lost, so that a later `setBackend` builds a
 * fresh one from the registered factory.
 */
export function resetBackend(name: BackendName): void {
  const factory = tf.findBackendFactory(name);
  if (!factory) return;
  try {
    tf.removeBackend(name);
  } catch {
    /* the backend may be half-initialised; removal is best effort */
  }
  tf.registerBackend(name, factory, name === 'webgpu' ? 3 : name === 'webgl' ? 2 : 1);
}

/**
 * All tensors of a backend that does not report its memory: 4 GiB, what a browser tab can
 * usually hold (and the wasm32 address space, so a model planned here also runs on wasm).
 */
const DEFAULT_MAX_TOTAL_BYTES = 4 * 1024 ** 3;

/** What the active backend can hold, for the model plan (../model/plan.ts); `inUseBytes` from `tf.memory()`. */
export function backendLimits(name: BackendName): BackendLimits {
  const inUseBytes = tf.memory().numBytes;
  if (name === 'wasm') return { backend: name, maxTotalBytes: WASM_HEAP_MAX_BYTES, maxBufferBytes: null, inUseBytes };
  let maxBufferBytes: number | null = null;
  const limits = activeWebGPUDevice()?.limits;
  if (limits) maxBufferBytes = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  return { backend: name, maxTotalBytes: DEFAULT_MAX_TOTAL_BYTES, maxBufferBytes, inUseBytes };
}
