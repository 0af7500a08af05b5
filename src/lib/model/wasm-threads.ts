/**
 * Run a block of TF.js ops on one thread while the wasm backend's pool has several.
 *
 * Why: KV-cached decoding does tiny products ([B, C] × [C, N] at C = 128) where waking the
 * pthread pool costs more than it saves (bench, batch 16: 394 ms on one thread, 506 ms on two),
 * while the training phases gain from both cores. TF.js sets the pool's size once, at backend
 * start (`setThreadsCount`), and has no call to change it.
 *
 * How (TF.js 4.22.0, `tfjs-backend-wasm-threaded-simd.wasm`): the C++ backend keeps its XNNPACK
 * pool in one global, `tfjs::backend::threadpool` (`backend.cc`), read by every kernel each time
 * it runs (`xnn_setup_*`/`xnn_run_operator(op, threadpool)`); `init_with_threads_count(n)`
 * stores a new `pthreadpool_create(n)` there, and a pool of one starts no threads (pthreadpool
 * runs a one-thread pool's work on the caller). So we make a one-thread pool once and swap the
 * global between it and the original pool around a block. The global's address comes from the
 * disassembly of that build (`get_threads_count` loads it: `i32.load (i32.const 23564)`, then
 * the pool's thread count at offset 132); before writing anything we check that the address
 * holds a pool whose count is the backend's own, and after the swap that the backend reports
 * one thread, so a different build turns this off instead of corrupting memory.
 *
 * Only between kernels, never during one: TF.js wasm kernels run synchronously on the calling
 * thread, so a swap around synchronous code cannot race a running operator.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Address of `tfjs::backend::threadpool` in TF.js 4.22.0's threaded-SIMD build. */
const POOL_GLOBAL = 23564;
/** Offset of `threads_count` in pthreadpool's struct (`pthreadpool_get_threads_count`). */
const POOL_THREADS_OFFSET = 132;

interface WasmModule {
  wasmMemory?: WebAssembly.Memory;
  tfjs?: { initWithThreadsCount(n: number): void; getThreadsCount(): number };
}

interface PoolSwitch {
  module: WasmModule;
  many: number;
  one: number;
  threads: number;
}

let cached: { backend: unknown; sw: PoolSwitch | null } | null = null;
let disabled = false;

function heap(m: WasmModule): Int32Array {
  return new Int32Array(m.wasmMemory!.buffer); // a fresh view: memory may have grown
}

/** Find the pool global and make the one-thread pool, or null where that is not safely possible. */
function makeSwitch(backend: unknown): PoolSwitch | null {
  const m = (backend as { wasm?: WasmModule }).wasm;
  if (!m?.tfjs || !m.wasmMemory || typeof SharedArrayBuffer !== 'function') return null;
  if (!(m.wasmMemory.buffer instanceof SharedArrayBuffer)) return null; // not the threaded build
  const threads = m.tfjs.getThreadsCount();
  if (!(threads > 1)) return null;
  const many = heap(m)[POOL_GLOBAL >> 2];
  if (many <= 0 || many % 4 !== 0 || heap(m)[(many + POOL_THREADS_OFFSET) >> 2] !== threads) return null;
  m.tfjs.initWithThreadsCount(1); // stores a new one-thread pool in the global
  const one = heap(m)[POOL_GLOBAL >> 2];
  const ok = one !== many && m.tfjs.getThreadsCount() === 1;
  heap(m)[POOL_GLOBAL >> 2] = many;
  if (!ok || m.tfjs.getThreadsCount() !== threads) {
    heap(m)[POOL_GLOBAL >> 2] = many;
    return null;
  }
  return { module: m, many, one, threads };
}

function poolSwitch(): PoolSwitch | null {
  if (disabled || tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend();
  if (cached?.backend !== backend) cached = { backend, sw: makeSwitch(backend) };
  return cached.sw;
}

/** Whether {@link onOneThread} really narrows the pool here (wasm with threads, this TF.js build). */
export function canNarrowThreads(): boolean {
  return poolSwitch() !== null;
}

/**
 * Run `fn` (synchronous TF.js ops) with the wasm backend's XNNPACK pool at one thread, then
 * restore the full pool. Anywhere else (other backends, one thread already, an unknown build)
 * it just runs `fn`.
 */
export function onOneThread<T>(fn: () => T): T {
  const sw = poolSwitch();
  if (!sw) return fn();
  const h = heap(sw.module);
  h[POOL_GLOBAL >> 2] = sw.one;
  try {
    return fn();
  } finally {
    heap(sw.module)[POOL_GLOBAL >> 2] = sw.many;
  }
}

/** For benchmarks (an A/B in one process): false makes {@link onOneThread} run on the full pool. */
export function allowNarrowThreads(on: boolean): void {
  disabled = !on;
}
