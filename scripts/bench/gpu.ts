/**
 * `npm run bench:gpu`: the GPU path, measured in one command on a machine with a GPU. Node with
 * Dawn (the `webgpu` npm package, the WebGPU implementation Chromium uses) gives TF.js's WebGPU
 * backend a real adapter without a browser; the bundled model is loaded as the Node experiments
 * load it (scripts/experiments/pipeline-common.ts) and `runBench` (src/lib/engine/bench.ts, the
 * code the app's worker runs for `npm run bench`) times the
 * training step B16 × T64, KV-cached sampling at batch 1 and 16, a reward-model step and PPO
 * iterations at the default settings. Shaders are warmed up first (two untimed runs of each) and
 * every timed run ends with a read-back, so the GPU's work is measured, not just queued.
 *
 * Without an adapter (no Vulkan, Metal or D3D driver) it says so and exits 0. A software adapter
 * (lavapipe/llvmpipe, SwiftShader) runs but is labelled software: its numbers are CPU numbers.
 * Sized to give numbers in well under 3 minutes on a GPU; `--quick` is one short pass.
 *
 *   npm run bench:gpu [-- --quick --repeats 3 --out bench/gpu-results.json --dawn backend=vulkan]
 *
 * `--dawn` passes Dawn options (comma-separated, e.g. `backend=vulkan`, `adapter=NVIDIA`; see the
 * webgpu package's README) to pick an adapter where there are several.
 */
import * as tf from '@tensorflow/tfjs-core';
// Registers every gradient (tfjs-core alone has none); tsx cannot resolve the deep import.
import '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { describeAdapter, isSoftwareAdapter, type AdapterInfoLike } from './options';
import { loadModel } from '../experiments/pipeline-common';
import { runBench } from '../../src/lib/engine/bench';
import type { BenchRequest } from '../../src/lib/engine/types';

const MODEL = 'public/models/tiny-gpt';

/** The bench request: the browser bench's full sizes, fewer sampling variants (the cache is the path users run). */
export function gpuRequest(quick: boolean, repeats: number): BenchRequest {
  return quick
    ? {
        what: ['train', 'sample', 'ppo'],
        warmup: 1,
        repeats: 1,
        newTokens: 8,
        batches: [1],
        trainBatch: 2,
        ppoIterations: 1,
        ppoConfig: { batchSize: 2, maxNewTokens: 8, miniBatches: 1, ppoEpochs: 1 },
      }
    : {
        what: ['train', 'sample', 'reward', 'ppo'],
        warmup: 2,
        repeats,
        newTokens: 64,
        batches: [1, 16],
        ppoIterations: repeats,
      };
}

/** Dawn for Node, or why not: the native module can be missing on an unusual platform. */
async function dawn(options: string[]): Promise<{ gpu: GPU; adapter: GPUAdapter | null } | { error: string }> {
  try {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create(options) as unknown as GPU;
    // TF.js's WebGPU backend and our backend choice look for `navigator.gpu` (Node 21+ has a navigator).
    const nav = (globalThis as { navigator?: object }).navigator ?? {};
    Object.defineProperty(globalThis, 'navigator', { value: Object.assign(nav, { gpu }), configurable: true });
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    return { gpu, adapter };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      repeats: { type: 'string', default: '3' },
      out: { type: 'string', default: 'bench/gpu-results.json' },
      dawn: { type: 'string', default: '' },
    },
  });
  const repeats = Number(values.repeats);
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 100) {
    console.error(`--repeats takes a whole number from 1 to 100, got "${values.repeats}".`);
    return 2;
  }
  const t0 = Date.now();
  const found = await dawn(values.dawn!.split(',').filter(Boolean));
  if ('error' in found) {
    console.log(`GPU bench skipped: Dawn (the webgpu package) could not start here (${found.error}).`);
    return 0;
  }
  if (!found.adapter) {
    console.log(
      'GPU bench skipped: Dawn found no WebGPU adapter on this machine (no Vulkan, Metal or D3D12 driver for a GPU). ' +
        'On Linux a GPU needs its Vulkan driver (NVIDIA: the driver’s Vulkan ICD; AMD/Intel: mesa-vulkan-drivers).',
    );
    return 0;
  }
  const info = ((found.adapter as unknown as { info?: AdapterInfoLike }).info ?? {}) as AdapterInfoLike;
  const software = isSoftwareAdapter(info);
  const adapter = describeAdapter(info);
  console.log(`adapter: ${adapter}${software ? ' — a CPU implementation of WebGPU: these are not GPU numbers' : ''}`);

  await import('@tensorflow/tfjs-backend-webgpu');
  try {
    if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend returned false');
    await tf.ready();
    // A tiny product that must give 8: catches a backend that starts but cannot compute (Dawn's null backend).
    const t = tf.tidy(() => tf.sum(tf.matMul(tf.ones([2, 2]), tf.ones([2, 2]))));
    const v = (await t.data())[0];
    t.dispose();
    if (v !== 8) throw new Error(`a 2×2 product gave ${v}, expected 8`);
  } catch (e) {
    console.log(`GPU bench skipped: TF.js's WebGPU backend did not start on this adapter (${(e as Error).message}).`);
    return 0;
  }
  const { model, tok } = loadModel(MODEL);
  const req = gpuRequest(values.quick!, repeats);
  const rows = [];
  for (const what of req.what) {
    const started = Date.now();
    const r = await runBench(model, tok, { ...req, what: [what] }, () => new Promise((r) => setTimeout(r, 0)));
    rows.push(...r.rows);
    console.log(
      `[${Math.round((Date.now() - t0) / 1000)} s] ${what}: ${r.rows.map((x) => `${x.name} ${x.medianMs.toFixed(1)} ms`).join('; ')} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`\n${pad('benchmark', 40)} ${pad('median ms', 10)} ${pad('min–max ms', 18)} value`);
  for (const row of rows)
    console.log(
      `${pad(row.name, 40)} ${pad(row.medianMs.toFixed(1), 10)} ${pad(`${row.minMs.toFixed(1)}–${row.maxMs.toFixed(1)}`, 18)} ${
        row.value !== undefined ? `${row.value.toFixed(0)} ${row.unit}` : ''
      }`,
    );
  mkdirSync(dirname(values.out!), { recursive: true });
  writeFileSync(
    values.out!,
    JSON.stringify(
      { date: new Date().toISOString(), adapter: info, software, node: process.version, request: req, rows },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nwrote ${values.out} (${Math.round((Date.now() - t0) / 1000)} s in all; adapter ${adapter})`);
  return 0;
}

const isMain = process.argv[1]?.endsWith('gpu.ts') && process.argv[1].includes('bench');
if (isMain) process.exit(await main());
