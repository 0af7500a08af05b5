/**
 * The engine in-thread, in Node: backend choice, the probe, jobs with progress and cancel,
 * and the named errors the UI relies on.
 */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../../src/lib/engine/engine';
import {
  EngineError,
  InvalidInputError,
  JobCancelledError,
  ModelLoadError,
  reviveError,
} from '../../src/lib/engine/errors';
import { parseUrlParams } from '../../src/state/url-params';

const wasmPath = fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));

describe('engine (in-thread)', () => {
  it('auto picks wasm where there is no GPU, and every backend gives the same probe numbers', async () => {
    const engine = createEngine();
    const info = await engine.init({ backend: 'auto', wasmPath });
    expect(info.name).toBe('wasm');
    expect(info.adapter).toMatch(/WebAssembly/);
    const wasm = await engine.probe();
    const cpuInfo = await engine.setBackend('cpu');
    expect(cpuInfo.name).toBe('cpu');
    const cpu = await engine.probe();
    expect(cpu.values).toHaveLength(16);
    cpu.values.forEach((v, i) => expect(wasm.values[i]).toBeCloseTo(v, 5));
    // softmax rows sum to one: a check against a wrong kernel, not just agreement
    expect(cpu.values[6] + cpu.values[7]).toBeCloseTo(1, 6);
  });

  it('forcing a backend that cannot start falls through to the next, with a note', async () => {
    const engine = createEngine();
    const info = await engine.init({ backend: 'webgpu', wasmPath });
    expect(info.name).toBe('wasm');
    expect(info.requested).toBe('webgpu');
    expect(info.notes[0]).toMatch(/webgpu could not start; using wasm/);
  });

  it('rejects an unknown backend with a named error', async () => {
    const engine = createEngine();
    await engine.init({ backend: 'cpu', wasmPath });
    await expect(engine.setBackend('tpu' as never)).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('a job reports progress and can be cancelled', async () => {
    const engine = createEngine();
    await engine.init({ backend: 'cpu', wasmPath });
    const steps: number[] = [];
    const run = engine.busyJob('j', 10_000, (p) => {
      steps.push(p.step);
      if (p.step === 3) void engine.cancel('j');
    });
    await expect(run).rejects.toBeInstanceOf(JobCancelledError);
    expect(steps.slice(0, 3)).toEqual([1, 2, 3]);
    expect(steps.length).toBeLessThan(10);
    // a finished job returns its result, and leaves no tensors behind
    const before = (await engine.memory()).numTensors;
    expect(await engine.busyJob('k', 3)).toBe(64 * 3);
    expect((await engine.memory()).numTensors).toBe(before);
    expect(await engine.cancel('k')).toBe(false);
  });
});

describe('errors across the worker boundary', () => {
  it('revives a plain Error carrying a known name into its class, keeping the message', () => {
    const plain = Object.assign(new Error('weights do not match'), { name: 'ModelLoadError' });
    const e = reviveError(plain);
    expect(e).toBeInstanceOf(ModelLoadError);
    expect(e.message).toBe('weights do not match');
    const cancelled = reviveError(Object.assign(new Error('stopped'), { name: 'JobCancelledError' }));
    expect(cancelled).toBeInstanceOf(JobCancelledError);
    expect(cancelled).toBeInstanceOf(EngineError);
    const other = new TypeError('x');
    expect(reviveError(other)).toBe(other);
  });
});

describe('URL parameters', () => {
  it('accepts a known backend and rejects anything else with a notice', () => {
    expect(parseUrlParams('?backend=WebGPU').settings.backend).toBe('webgpu');
    const bad = parseUrlParams('?backend=<script>alert(1)</script>&engine=gpu');
    expect(bad.settings.backend).toBeUndefined();
    expect(bad.settings.inThread).toBe(false);
    expect(bad.problems).toHaveLength(2);
    expect(bad.problems[0]).toContain('Unknown backend');
    expect(parseUrlParams('?engine=main').settings.inThread).toBe(true);
  });
});
