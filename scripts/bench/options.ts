/**
 * The bench's command line and its choice of what to run, kept pure so they are unit-tested
 * (tests/unit/bench-options.test.ts): `npm run bench` with no arguments measures only the backends
 * that are real here, wasm on one thread and on all of them, and PyTorch on 1 and 2 threads.
 * A software adapter (SwiftShader, lavapipe, llvmpipe, WebGPU's `isFallbackAdapter`) is skipped
 * unless `--all` or the backend is named in `--backends`: it is many times slower than wasm
 * and would keep the bench running for a quarter of an hour.
 */
import { parseArgs } from 'node:util';

export const ALL_BACKENDS = ['wasm', 'webgpu', 'webgl', 'cpu'] as const;
/** The benchmarks, in the order they run. */
export const ALL_BENCHMARKS = ['sample', 'train', 'reward', 'ppo', 'group'] as const;
export type BenchBackend = (typeof ALL_BACKENDS)[number];

export interface BenchOptions {
  backends: string[];
  /** Backends named on the command line (run even on a software adapter); default: none. */
  explicit?: string[];
  /** Run every backend, software adapters and the cpu backend included. */
  all?: boolean;
  /** Thread counts for wasm; 0 = the app's own choice (the machine's cores). Default `[0]`. */
  threads?: number[];
  repeats: number;
  /** Benchmarks to run (default: all of {@link ALL_BENCHMARKS}). */
  what?: (typeof ALL_BENCHMARKS)[number][];
  quick: boolean;
  out: string;
  torch: boolean;
}

export const USAGE = `npm run bench [-- options]
  --backends wasm,webgpu,webgl,cpu   backends to measure (named ones run even on a software adapter)
  --all                              every backend, software adapters and the cpu backend included
  --threads 1,0                      wasm thread counts to compare (0 = all cores, the app's default)
  --repeats 3                        timed repeats of each benchmark (after one warm-up)
  --what sample,train,ppo            only these benchmarks (of sample, train, reward, ppo, group)
  --quick                            one short pass of everything (a smoke test)
  --no-torch                         leave out the PyTorch peer
  --out bench/results.json           where the results go`;

/** Parse `npm run bench` arguments; throws an Error with a message for the user on bad input. */
export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      backends: { type: 'string' },
      all: { type: 'boolean', default: false },
      threads: { type: 'string', default: '1,0' },
      repeats: { type: 'string', default: '3' },
      what: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench/results.json' },
      'no-torch': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const list = (s: string) =>
    s
      .split(',')
      .map((x) => x.trim().toLowerCase())
      .filter(Boolean);
  const explicit = values.backends === undefined ? [] : list(values.backends);
  for (const b of explicit)
    if (!(ALL_BACKENDS as readonly string[]).includes(b))
      throw new Error(`Unknown backend "${b}"; choose from ${ALL_BACKENDS.join(', ')}.`);
  if (values.backends !== undefined && explicit.length === 0) throw new Error('--backends needs at least one backend.');
  const threads = list(values.threads!).map(Number);
  if (!threads.length || threads.some((n) => !Number.isInteger(n) || n < 0 || n > 64))
    throw new Error(`--threads takes whole numbers from 0 (all cores) to 64, got "${values.threads}".`);
  const repeats = Number(values.repeats);
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 100)
    throw new Error(`--repeats takes a whole number from 1 to 100, got "${values.repeats}".`);
  const what = values.what === undefined ? [...ALL_BENCHMARKS] : list(values.what);
  for (const w of what)
    if (!(ALL_BENCHMARKS as readonly string[]).includes(w))
      throw new Error(`Unknown benchmark "${w}"; choose from ${ALL_BENCHMARKS.join(', ')}.`);
  if (!what.length) throw new Error('--what needs at least one benchmark.');
  return {
    backends: explicit.length ? explicit : [...ALL_BACKENDS],
    what: what as BenchOptions['what'],
    explicit,
    all: values.all!,
    threads: [...new Set(threads)],
    repeats,
    quick: values.quick!,
    out: values.out!,
    torch: !values['no-torch'],
  };
}

/** What a GPU adapter says about itself (WebGPU `GPUAdapterInfo`, or WebGL's renderer string). */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
  /** Dawn's `adapterType` in Node ("cpu" for a software adapter). */
  adapterType?: string;
}

/** Software rasterisers and CPU Vulkan/WebGPU implementations, by the names they report. */
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software|microsoft basic render/i;

/** True when an adapter runs on the CPU (much slower than wasm): fallback flag, `cpu` type or a known name. */
export function isSoftwareAdapter(info: AdapterInfoLike | null | undefined): boolean {
  if (!info) return false;
  if (info.isFallbackAdapter) return true;
  if (info.adapterType?.toLowerCase() === 'cpu') return true;
  return SOFTWARE.test([info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' '));
}

/** A short name of an adapter for the table: its non-empty fields. */
export function describeAdapter(info: AdapterInfoLike | null | undefined): string {
  if (!info) return 'no adapter';
  const s = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' · ');
  return (s || 'unnamed adapter') + (isSoftwareAdapter(info) ? ' (software)' : '');
}

/** What the probe of the browser found for each GPU backend: null = not available at all. */
export type AdapterProbes = Partial<Record<'webgpu' | 'webgl', AdapterInfoLike | null>>;

export interface BenchRun {
  backend: BenchBackend;
  /** wasm: threads asked for (0 = the app's default); absent for other backends. */
  threads?: number;
}

export interface BenchPlan {
  runs: BenchRun[];
  /** Backends left out, with why and how to include them. */
  skipped: { backend: string; reason: string }[];
}

/**
 * Which backends to measure: each of `o.backends`, where the browser has it. A software adapter,
 * or the plain-JavaScript cpu backend, runs only when named in `--backends` or with `--all`.
 * wasm runs once per thread count.
 */
export function planRuns(o: BenchOptions, probes: AdapterProbes): BenchPlan {
  const runs: BenchRun[] = [];
  const skipped: BenchPlan['skipped'] = [];
  const named = (b: string) => !!o.all || (o.explicit ?? []).includes(b);
  for (const b of o.backends as BenchBackend[]) {
    if (b === 'wasm') {
      for (const t of o.threads ?? [0]) runs.push({ backend: 'wasm', threads: t });
    } else if (b === 'cpu') {
      if (named(b)) runs.push({ backend: b });
      else skipped.push({ backend: b, reason: 'plain JavaScript, the slowest reference (--backends cpu to run it)' });
    } else {
      const info = probes[b];
      if (!info)
        skipped.push({ backend: b, reason: `no ${b === 'webgpu' ? 'WebGPU adapter' : 'WebGL'} in this browser` });
      else if (isSoftwareAdapter(info) && !named(b))
        skipped.push({
          backend: b,
          reason: `software adapter (${describeAdapter(info)}), slower than wasm (--backends ${b} or --all to run it)`,
        });
      else runs.push({ backend: b });
    }
  }
  return { runs, skipped };
}

/** The PyTorch step to compare with: the fastest of the thread counts measured. */
export function bestTorch(torch: { threads: number; ms: number }[] | null): { threads: number; ms: number } | null {
  if (!torch?.length) return null;
  return torch.reduce((a, b) => (b.ms < a.ms ? b : a));
}
