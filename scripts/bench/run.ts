/**
 * `npm run bench`: builds the app, serves it on 127.0.0.1, drives headless Chromium and, in
 * the engine worker, times sampling (KV cache vs full recompute, batch 1 and 16, 64 new
 * tokens), one training step (B16 × T64, fwd + bwd + Adam), one reward-model step and one PPO
 * iteration, a GRPO and an RLOO iteration beside it with the memory each trainer holds (no value
 * model), per backend; wasm once per thread count (1 and all cores: an A/B in one run).
 * Records the longest main-thread task during PPO and TF.js memory. Only the backends that are
 * real here run by default: a software GPU adapter and the cpu backend are skipped with a note
 * (scripts/bench/options.ts). Prints progress as it goes, a table, the ratio to PyTorch's best
 * CPU step (1 and 2 threads, measured in the same run when `/usr/bin/python3` has torch,
 * scripts/bench/torch_step.py), and writes bench/results.json.
 *
 *   npm run bench [-- --backends wasm,webgpu --all --threads 1,0 --repeats 3 --what sample,ppo --quick
 *                     --out bench/results.json]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { closeShared, ensureBuilt, getShared, openApp } from '../../tests/e2e/harness';
import type { BenchRequest, BenchResult, BenchRow } from '../../src/lib/engine/types';
import {
  USAGE,
  bestTorch,
  describeAdapter,
  parseBenchArgs,
  planRuns,
  type AdapterProbes,
  type BenchOptions,
  type BenchRun,
} from './options';

export type { BenchOptions } from './options';

interface BackendReport extends BenchResult {
  requested: string;
  /** The run's label: the backend, and for wasm its threads (`wasm ×2`). */
  label: string;
  adapter: string;
  threads: number | null;
  longestTaskMs: number | null;
}

const t0 = Date.now();
/** A progress line with the time since the bench started. */
function progress(msg: string): void {
  const s = Math.round((Date.now() - t0) / 1000);
  console.log(`[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${msg}`);
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

/** What the browser offers for the GPU backends, asked on a page of the app's origin (a secure context). */
async function probeAdapters(): Promise<AdapterProbes> {
  const { browser, origin } = await getShared();
  const context = await browser.newContext({ serviceWorkers: 'block' });
  try {
    const page = await context.newPage();
    await page.goto(`${origin}/sw.js`);
    return await page.evaluate(async () => {
      const out: Record<string, unknown> = {};
      try {
        const gpu = (navigator as unknown as { gpu?: { requestAdapter(o: unknown): Promise<any> } }).gpu;
        const a = gpu ? await gpu.requestAdapter({ powerPreference: 'high-performance' }) : null;
        const i = a?.info ?? {};
        out.webgpu = a
          ? {
              vendor: i.vendor,
              architecture: i.architecture,
              device: i.device,
              description: i.description,
              isFallbackAdapter: !!(i.isFallbackAdapter ?? a.isFallbackAdapter),
            }
          : null;
      } catch {
        out.webgpu = null;
      }
      try {
        const gl = document.createElement('canvas').getContext('webgl2') as WebGL2RenderingContext | null;
        const ext = gl?.getExtension('WEBGL_debug_renderer_info');
        out.webgl = gl
          ? {
              vendor: ext ? gl.getParameter(ext.UNMASKED_VENDOR_WEBGL) : '',
              description: ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER),
            }
          : null;
      } catch {
        out.webgl = null;
      }
      return out as AdapterProbes;
    });
  } finally {
    await context.close();
  }
}

type EngineWindow = {
  rlhf: { engine: { info: { threads?: number } | null; engine: { bench(id: string, r: unknown): Promise<unknown> } } };
};

async function benchRun(run: BenchRun, o: BenchOptions): Promise<BackendReport | null> {
  const { backend } = run;
  const threadsParam = backend === 'wasm' && run.threads ? `&threads=${run.threads}` : '';
  const app = await openApp(`/?backend=${backend}${threadsParam}#/model`);
  try {
    const active = (await app.page.textContent('[data-testid="backend-name"]'))!.trim();
    if (active !== backend) {
      progress(`${backend}: did not initialise here (got ${active}); skipped`);
      return null;
    }
    await app.page.waitForSelector('[data-testid="model-card"]', { timeout: 120_000 });
    const adapter = ((await app.page.textContent('[data-testid="backend-adapter"]')) ?? '').trim();
    const threads =
      backend === 'wasm'
        ? ((await app.page.evaluate(() => (globalThis as unknown as EngineWindow).rlhf.engine.info?.threads)) ?? 1)
        : null;
    const label = threads === null ? backend : `${backend} ×${threads}`;
    progress(`${label}: ${adapter}`);
    const full = request(o);
    const rows: BenchRow[] = [];
    let memory = null as BenchResult['memory'] | null;
    let longestTaskMs: number | null = null;
    // One benchmark at a time, so the progress shows where it is.
    for (const what of full.what.filter((w) => !o.what || o.what.includes(w))) {
      const started = Date.now();
      const result = await app.page.evaluate(
        async (req) => {
          const w = globalThis as unknown as EngineWindow;
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
        },
        { ...full, what: [what] },
      );
      const r = result.r as BenchResult;
      rows.push(...r.rows);
      memory = memory ? { ...memory, tensorsAfter: r.memory.tensorsAfter, bytesAfter: r.memory.bytesAfter } : r.memory;
      if (what === 'ppo') longestTaskMs = result.longest;
      progress(
        `${label}: ${what} done in ${((Date.now() - started) / 1000).toFixed(0)} s (${r.rows.map((x) => `${x.name} ${x.medianMs.toFixed(0)} ms`).join('; ')})`,
      );
    }
    return { backend, rows, memory: memory!, requested: backend, label, adapter, threads, longestTaskMs };
  } finally {
    await app.close();
  }
}

function torchPeer(quick: boolean): { threads: number; ms: number }[] | null {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return null;
  try {
    const out = execFileSync(py, ['scripts/bench/torch_step.py', '--json', '--steps', quick ? '3' : '20'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 300_000,
    });
    return JSON.parse(out) as { threads: number; ms: number }[];
  } catch {
    return null;
  }
}

export async function runBenchmarks(o: BenchOptions): Promise<{
  reports: BackendReport[];
  torch: { threads: number; ms: number }[] | null;
  skipped: { backend: string; reason: string }[];
}> {
  progress('building the app if it changed…');
  ensureBuilt();
  await getShared();
  const probes = await probeAdapters();
  const plan = planRuns(o, probes);
  for (const s of plan.skipped) progress(`${s.backend}: skipped, ${s.reason}`);
  progress(
    `measuring ${plan.runs.map((r) => (r.threads !== undefined ? `wasm ×${r.threads || 'cores'}` : r.backend)).join(', ')}${o.torch ? ' and PyTorch' : ''}`,
  );
  const reports: BackendReport[] = [];
  for (const run of plan.runs) {
    const r = await benchRun(run, o);
    if (r) reports.push(r);
  }
  let torch: { threads: number; ms: number }[] | null = null;
  if (o.torch) {
    progress('PyTorch peer: 1 and 2 threads…');
    torch = torchPeer(o.quick);
    progress(
      torch
        ? `PyTorch: ${torch.map((t) => `${t.threads} thread(s) ${t.ms.toFixed(1)} ms`).join(', ')}`
        : 'PyTorch: not available',
    );
  }
  const browser = (await getShared()).browser.version();
  const results = {
    date: new Date().toISOString(),
    machine: { platform: process.platform, arch: process.arch, node: process.version },
    browser,
    tfjs: '4.22.0',
    options: o,
    adapters: probes,
    skipped: plan.skipped,
    reports,
    torch,
  };
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, JSON.stringify(results, null, 2) + '\n');
  return { reports, torch, skipped: plan.skipped };
}

function printTable(reports: BackendReport[], torch: { threads: number; ms: number }[] | null): void {
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`\n${pad('backend', 9)} ${pad('benchmark', 40)} ${pad('median ms', 10)} ${pad('min–max ms', 18)} value`);
  const best = bestTorch(torch);
  for (const r of reports) {
    for (const row of r.rows) {
      console.log(
        `${pad(r.label, 9)} ${pad(row.name, 40)} ${pad(row.medianMs.toFixed(1), 10)} ${pad(`${row.minMs.toFixed(1)}–${row.maxMs.toFixed(1)}`, 18)} ${
          row.value !== undefined ? `${row.value.toFixed(row.value < 100 ? 1 : 0)} ${row.unit}` : ''
        }${row.tensorsGrowth !== undefined ? ` (tensor growth ${row.tensorsGrowth})` : ''}`,
      );
    }
    console.log(
      `${pad(r.label, 9)} memory: ${r.memory.tensorsBefore} → ${r.memory.tensorsAfter} tensors, ${(r.memory.bytesBefore / 1e6).toFixed(1)} → ${(r.memory.bytesAfter / 1e6).toFixed(1)} MB; longest main-thread task ${r.longestTaskMs === null ? 'n/a' : `${r.longestTaskMs.toFixed(0)} ms`} (${r.adapter})`,
    );
    const train = r.rows.find((x) => x.name.startsWith('train step'));
    const cached = r.rows.find((x) => x.name === 'sample b16 cache');
    const uncached = r.rows.find((x) => x.name === 'sample b16 no cache');
    if (cached?.value && uncached?.value)
      console.log(`${pad(r.label, 9)} KV cache speed-up at batch 16: ${(cached.value / uncached.value).toFixed(1)}×`);
    if (train && best)
      console.log(
        `${pad(r.label, 9)} train step / PyTorch at its best (${best.threads} thread${best.threads > 1 ? 's' : ''}, ${best.ms.toFixed(1)} ms): ${(train.medianMs / best.ms).toFixed(2)}×`,
      );
  }
  // The thread A/B: the same benchmark on wasm ×1 and wasm ×N, side by side.
  const one = reports.find((r) => r.backend === 'wasm' && r.threads === 1);
  for (const many of reports.filter((r) => r.backend === 'wasm' && (r.threads ?? 1) > 1)) {
    if (!one) break;
    console.log(`\nwasm threads A/B (${one.label} → ${many.label}), median ms:`);
    for (const row of many.rows) {
      const base = one.rows.find((x) => x.name === row.name);
      if (base)
        console.log(
          `  ${pad(row.name, 40)} ${pad(base.medianMs.toFixed(1), 9)} → ${pad(row.medianMs.toFixed(1), 9)} speed-up ${(base.medianMs / row.medianMs).toFixed(2)}×`,
        );
    }
  }
  if (!torch)
    console.log('\nPyTorch peer not available (apt-get install python3-torch libopenblas0-pthread for the ratio).');
}

const isMain = process.argv[1]?.endsWith('run.ts') && process.argv[1].includes('bench');
if (isMain) {
  let o: BenchOptions;
  try {
    o = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  try {
    const { reports, torch } = await runBenchmarks(o);
    printTable(reports, torch);
    console.log(`\nwrote ${o.out} (${Math.round((Date.now() - t0) / 1000)} s in all)`);
  } finally {
    await closeShared();
  }
}
