/**
 * Test helper: an in-thread engine (no worker) with the shipped model, `public/models/tiny-gpt`,
 * loaded the way the app loads it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../../src/lib/engine/engine';

export const BUNDLED_MODEL = 'public/models/tiny-gpt';
const wasmPath = fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));

export async function engineWithBundledModel(backend: 'cpu' | 'wasm' = 'cpu') {
  const engine = createEngine();
  await engine.init({ backend, wasmPath });
  const weights = readFileSync(`${BUNDLED_MODEL}/model.safetensors`);
  await engine.loadModel({
    name: 'tiny-gpt',
    source: 'bundled',
    config: readFileSync(`${BUNDLED_MODEL}/config.json`, 'utf8'),
    tokenizer: readFileSync(`${BUNDLED_MODEL}/tokenizer.json`, 'utf8'),
    weights: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
  });
  return engine;
}
