/**
 * The bench's command line and its choice of backends (scripts/bench/options.ts), and the wasm
 * thread plan (src/lib/engine/backend.ts `planWasmThreads`): pure logic, so `npm run bench` with
 * no arguments provably skips a software adapter and compares 1 thread with all cores.
 */
import { describe, expect, it } from 'vitest';
import {
  bestTorch,
  describeAdapter,
  isSoftwareAdapter,
  parseBenchArgs,
  planRuns,
  type AdapterProbes,
} from '../../scripts/bench/options';
import { planWasmThreads, WASM_MAX_THREADS } from '../../src/lib/engine/backend';

const SWIFTSHADER = { vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true };
const LAVAPIPE = { vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)', adapterType: 'cpu' };
const NVIDIA = { vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200', adapterType: 'discrete GPU' };
const WEBGL_SWIFTSHADER = {
  vendor: 'Google Inc. (Google)',
  description: 'ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)), SwiftShader driver)',
};

describe('parseBenchArgs', () => {
  it('defaults: every backend listed but none named, wasm on 1 thread and on all cores, 3 repeats, torch on', () => {
    const o = parseBenchArgs([]);
    expect(o.backends).toEqual(['wasm', 'webgpu', 'webgl', 'cpu']);
    expect(o.explicit).toEqual([]);
    expect(o.all).toBe(false);
    expect(o.threads).toEqual([1, 0]);
    expect(o.repeats).toBe(3);
    expect(o.torch).toBe(true);
    expect(o.quick).toBe(false);
    expect(o.what).toEqual(['sample', 'train', 'reward', 'ppo', 'group']);
  });

  it('reads --what: only the benchmarks named, in any case', () => {
    expect(parseBenchArgs(['--what', 'PPO, sample']).what).toEqual(['ppo', 'sample']);
  });

  it('reads --backends (named ones are explicit), --all, --threads, --repeats, --no-torch, --quick, --out', () => {
    const o = parseBenchArgs([
      '--backends',
      'WebGPU, wasm',
      '--all',
      '--threads',
      '2,1,2',
      '--repeats',
      '5',
      '--no-torch',
      '--quick',
      '--out',
      'x.json',
    ]);
    expect(o.backends).toEqual(['webgpu', 'wasm']);
    expect(o.explicit).toEqual(['webgpu', 'wasm']);
    expect(o.all).toBe(true);
    expect(o.threads).toEqual([2, 1]);
    expect(o.repeats).toBe(5);
    expect(o.torch).toBe(false);
    expect(o.quick).toBe(true);
    expect(o.out).toBe('x.json');
  });

  it('refuses bad input with a message that says what is allowed', () => {
    expect(() => parseBenchArgs(['--backends', 'webgl2'])).toThrow(/Unknown backend "webgl2"; choose from wasm/);
    expect(() => parseBenchArgs(['--backends', ','])).toThrow(/at least one backend/);
    expect(() => parseBenchArgs(['--threads', 'two'])).toThrow(/--threads takes whole numbers/);
    expect(() => parseBenchArgs(['--threads', '-1'])).toThrow(/--threads/);
    expect(() => parseBenchArgs(['--repeats', '0'])).toThrow(/--repeats takes a whole number from 1 to 100/);
    expect(() => parseBenchArgs(['--bogus'])).toThrow(/bogus/);
    expect(() => parseBenchArgs(['--what', 'sampling'])).toThrow(/Unknown benchmark "sampling"; choose from sample/);
    expect(() => parseBenchArgs(['--what', ','])).toThrow(/at least one benchmark/);
  });
});

describe('isSoftwareAdapter', () => {
  it('knows SwiftShader, lavapipe/llvmpipe and the fallback flag; a real GPU is not software', () => {
    expect(isSoftwareAdapter(SWIFTSHADER)).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'google', architecture: 'swiftshader' })).toBe(true);
    expect(isSoftwareAdapter(LAVAPIPE)).toBe(true);
    expect(isSoftwareAdapter({ description: 'llvmpipe' })).toBe(true);
    expect(isSoftwareAdapter({ adapterType: 'CPU' })).toBe(true);
    expect(isSoftwareAdapter(WEBGL_SWIFTSHADER)).toBe(true);
    expect(isSoftwareAdapter(NVIDIA)).toBe(false);
    expect(isSoftwareAdapter({ vendor: 'apple', architecture: 'metal-3' })).toBe(false);
    expect(isSoftwareAdapter(null)).toBe(false);
  });

  it('labels software adapters in their description', () => {
    expect(describeAdapter(LAVAPIPE)).toBe('mesa · llvmpipe (LLVM 15.0.6, 256 bits) (software)');
    expect(describeAdapter(NVIDIA)).toBe('nvidia · hopper · NVIDIA H200');
    expect(describeAdapter(null)).toBe('no adapter');
  });
});

describe('planRuns', () => {
  const here: AdapterProbes = { webgpu: SWIFTSHADER, webgl: WEBGL_SWIFTSHADER };

  it('with no arguments on a machine without a GPU: wasm ×1 and ×cores only; the rest skipped with the flag that runs them', () => {
    const plan = planRuns(parseBenchArgs([]), here);
    expect(plan.runs).toEqual([
      { backend: 'wasm', threads: 1 },
      { backend: 'wasm', threads: 0 },
    ]);
    expect(plan.skipped.map((s) => s.backend)).toEqual(['webgpu', 'webgl', 'cpu']);
    expect(plan.skipped[0].reason).toMatch(
      /software adapter \(google · swiftshader \(software\)\).*--backends webgpu or --all/,
    );
    expect(plan.skipped[2].reason).toMatch(/--backends cpu/);
  });

  it('runs a software adapter when it is named or with --all', () => {
    expect(planRuns(parseBenchArgs(['--backends', 'webgpu']), here).runs).toEqual([{ backend: 'webgpu' }]);
    const all = planRuns(parseBenchArgs(['--all', '--threads', '0']), here);
    expect(all.runs.map((r) => r.backend)).toEqual(['wasm', 'webgpu', 'webgl', 'cpu']);
    expect(all.skipped).toEqual([]);
  });

  it('runs a hardware adapter by default and skips a backend the browser lacks', () => {
    const plan = planRuns(parseBenchArgs(['--threads', '0']), { webgpu: NVIDIA, webgl: null });
    expect(plan.runs).toEqual([{ backend: 'wasm', threads: 0 }, { backend: 'webgpu' }]);
    expect(plan.skipped.find((s) => s.backend === 'webgl')?.reason).toMatch(/no WebGL/);
  });

  it('an options object without threads (the bench smoke test) runs wasm once at the default', () => {
    const plan = planRuns({ backends: ['wasm'], repeats: 1, quick: true, out: 'x', torch: false }, {});
    expect(plan.runs).toEqual([{ backend: 'wasm', threads: 0 }]);
  });
});

describe('bestTorch', () => {
  it('compares with the fastest PyTorch thread count', () => {
    expect(
      bestTorch([
        { threads: 1, ms: 95 },
        { threads: 2, ms: 61 },
      ]),
    ).toEqual({ threads: 2, ms: 61 });
    expect(bestTorch([{ threads: 1, ms: 95 }])).toEqual({ threads: 1, ms: 95 });
    expect(bestTorch(null)).toBeNull();
    expect(bestTorch([])).toBeNull();
  });
});

describe('planWasmThreads', () => {
  it('isolated: the cores, capped at the emscripten pool', () => {
    expect(planWasmThreads({ isolated: true, cores: 2 })).toEqual({ threads: 2, reason: null });
    expect(planWasmThreads({ isolated: true, cores: 64 })).toEqual({ threads: WASM_MAX_THREADS, reason: null });
  });

  it('one thread, with the reason the header shows', () => {
    expect(planWasmThreads({ isolated: false, cores: 8 })).toEqual({ threads: 1, reason: 'not cross-origin isolated' });
    expect(planWasmThreads({ isolated: true, cores: 1 })).toEqual({ threads: 1, reason: 'one core' });
    expect(planWasmThreads({ isolated: true, cores: undefined })).toEqual({ threads: 1, reason: 'one core' });
    expect(planWasmThreads({ isolated: true, cores: 8, requested: 1 })).toEqual({
      threads: 1,
      reason: 'one thread asked for',
    });
  });

  it('a requested count wins over the cores, within the pool; isolation still rules', () => {
    expect(planWasmThreads({ isolated: true, cores: 2, requested: 4 })).toEqual({ threads: 4, reason: null });
    expect(planWasmThreads({ isolated: true, cores: 2, requested: 40 }).threads).toBe(WASM_MAX_THREADS);
    expect(planWasmThreads({ isolated: false, cores: 2, requested: 4 }).threads).toBe(1);
  });
});
