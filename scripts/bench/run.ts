/**
 * `npm run bench`: builds the app, serves it on 127.0.0.1, drives headless Chromium and, in
 * the engine worker, times sampling (KV cache vs full recompute, batch 1 and 16, 64 new
 * tokens), one training step (B16 × T64, fwd + bwd + Adam), one reward-model step and one PPO
 * iteration, a GRPO and an RLOO iteration beside it with the memory each trainer holds (no value
 * model), per backend; records the longest main-thread task during PPO and TF.js memory.
 * Prints a table, the ratio to a PyTorch CPU step when `/usr/bin/python3` has torch
 * (scripts/bench/torch_step.py), and writes bench/results.json.
 *
 *   npm run bench [-- --backends wasm,webgpu --repeats 5 --quick --out bench/results.json]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { closeShared, ensureBuilt, getShared, openApp } from '../../tests/e2e/harness';
import type { BenchRequest, BenchResult } from '../../src/lib/engine/types';

export interface BenchOptions {
  backends: string[];
  repeats: number;
  quick: boolean;
  out: string;
  torch: boolean;
}

interface BackendReport extends BenchResult {
  requested: string;
  adapter: string;
  longestTaskMs: number | null;
}

function request(o: BenchOptions): BenchRequest {
  return o.quick
    ? {
        what: ['sample', 'train', 'reward', 'ppo', 'group'],
        warmup: 0,
        repeats: 1,
        newTokens: 8,
        batches: [1],
        trainBatch: 2,
        ppoIterations: 1,
        ppoConfig: { batchSize: 2, maxNewTokens: 8, miniBatches: 1, ppoEpochs: 1 },
        groupIterations: 1,
        grpoConfig: { batchSize: 4, numGenerations: 2, maxCompletionLength: 8 },
        rlooConfig: { batchSize: 4, numGenerations: 2, maxCompletionLength: 8 },
      }
    : {
        what: ['sample', 'train', 'reward', 'ppo', 'group'],
        warmup: 1,
        repeats: o.repeats,
        newTokens: 64,
        batches: [1, 16],
        ppoIterations: o.repeats,
      };
}

async function benchBackend(backend: string, o: BenchOptions): Promise<BackendReport | null> {
  const app = await openApp(`/?backend=${backend}#/model`);
  try {
    const active = (await app.page.textContent('[data-testid="backend-name"]'))!.trim();
    if (active !== backend) {
      console.log(`${backend}: did not initialise here (got ${active}); skipped`);
      return null;
    }
    await app.page.waitForSelector('[data-testid="model-card"]', { timeout: 120_000 });
    const adapter = ((await app.page.textContent('[data-testid="backend-adapter"]')) ?? '').trim();
    const result = await app.page.evaluate(async (req) => {
      const w = globalThis as unknown as {
        rlhf: { engine: { engine: { bench(id: string, r: unknown): Promise<unknown> } } };
      };
      let longest = 0;
      const obs = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) longest = Math.max(longest, e.duration);
      });
      let observing = true;
      try {
        obs.observe({ type: 'longtask', buffered: false });
      } catch {
        observing = false;
      }
      const r = await w.rlhf.engine.engine.bench('bench', req);
      obs.disconnect();
      return { r, longest: observing ? longest : null };
    }, request(o));
    return { ...(result.r as BenchResult), requested: backend, adapter, longestTaskMs: result.longest };
  } finally {
    await app.close();
  }
}

function torchPeer(): { threads: number; ms: number }[] | null {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return null;
  try {
    const out = execFileSync(py, ['scripts/bench/torch_step.py', '--json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 300_000,
    });
    return JSON.parse(out) as { threads: number; ms: number }[];
  } catch {
    return null;
  }
}

export async function runBenchmarks(
  o: BenchOptions,
): Promise<{ reports: BackendReport[]; torch: { threads: number; ms: number }[] | null }> {
  ensureBuilt();
  await getShared();
  const reports: BackendReport[] = [];
  for (const b of o.backends) {
    const r = await benchBackend(b, o);
    if (r) reports.push(r);
  }
  const torch = o.torch ? torchPeer() : null;
  const browser = (await getShared()).browser.version();
  const results = {
    date: new Date().toISOString(),
    machine: { platform: process.platform, arch: process.arch, node: process.version },
    browser,
    tfjs: '4.22.0',
    options: o,
    reports,
    torch,
  };
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, JSON.stringify(results, null, 2) + '\n');
  return { reports, torch };
}

function printTable(reports: BackendReport[], torch: { threads: number; ms: number }[] | null): void {
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`\n${pad('backend', 8)} ${pad('benchmark', 40)} ${pad('median ms', 10)} ${pad('min–max ms', 18)} value`);
  for (const r of reports) {
    for (const row of r.rows) {
      console.log(
        `${pad(r.backend, 8)} ${pad(row.name, 40)} ${pad(row.medianMs.toFixed(1), 10)} ${pad(`${row.minMs.toFixed(1)}–${row.maxMs.toFixed(1)}`, 18)} ${
          row.value !== undefined ? `${row.value.toFixed(row.value < 100 ? 1 : 0)} ${row.unit}` : ''
        }${row.tensorsGrowth !== undefined ? ` (tensor growth ${row.tensorsGrowth})` : ''}`,
      );
    }
    console.log(
      `${pad(r.backend, 8)} memory: ${r.memory.tensorsBefore} → ${r.memory.tensorsAfter} tensors, ${(r.memory.bytesBefore / 1e6).toFixed(1)} → ${(r.memory.bytesAfter / 1e6).toFixed(1)} MB; longest main-thread task ${r.longestTaskMs === null ? 'n/a' : `${r.longestTaskMs.toFixed(0)} ms`} (${r.adapter})`,
    );
    const train = r.rows.find((x) => x.name.startsWith('train step'));
    const cached = r.rows.find((x) => x.name === 'sample b16 cache');
    const uncached = r.rows.find((x) => x.name === 'sample b16 no cache');
    if (cached?.value && uncached?.value)
      console.log(`${pad(r.backend, 8)} KV cache speed-up at batch 16: ${(cached.value / uncached.value).toFixed(1)}×`);
    if (train && torch?.length) {
      for (const t of torch)
        console.log(
          `${pad(r.backend, 8)} train step / PyTorch (${t.threads} thread${t.threads > 1 ? 's' : ''}, ${t.ms.toFixed(1)} ms): ${(train.medianMs / t.ms).toFixed(2)}×`,
        );
    }
  }
  if (!torch)
    console.log('\nPyTorch peer not available (apt-get install python3-torch libopenblas0-pthread for the ratio).');
}

const isMain = process.argv[1]?.endsWith('run.ts') && process.argv[1].includes('bench');
if (isMain) {
  const { values } = parseArgs({
    options: {
      backends: { type: 'string', default: 'wasm,webgl,webgpu,cpu' },
      repeats: { type: 'string', default: '3' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench/results.json' },
      'no-torch': { type: 'boolean', default: false },
    },
  });
  const o: BenchOptions = {
    backends: values
      .backends!.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    repeats: Number(values.repeats),
    quick: values.quick!,
    out: values.out!,
    torch: !values['no-torch'],
  };
  try {
    const { reports, torch } = await runBenchmarks(o);
    printTable(reports, torch);
    console.log(`\nwrote ${o.out}`);
  } finally {
    await closeShared();
  }
}
