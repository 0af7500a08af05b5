/**
 * Test helper: run TF.js in Node on the `cpu` or the `wasm` (SIMD, single thread) backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { fileURLToPath } from 'node:url';

const WASM_DIR = fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));
let wasmPathsSet = false;

export type TestBackend = 'cpu' | 'wasm';

export async function useBackend(name: TestBackend): Promise<typeof tf> {
  if (name === 'wasm' && !wasmPathsSet) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setWasmPaths(WASM_DIR);
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`TF.js backend ${name} did not initialise`);
  await tf.ready();
  return tf;
}

export { tf };
