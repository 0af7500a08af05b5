/**
 * The pieces of scripts/experiments/pipeline.ts that do not run a model: its command line
 * (`parsePipelineArgs`), the table of RL algorithms it can run (`PIPELINE_ALGOS`: one entry per
 * trainer, each the app's own trainer class from src/lib/rlhf, never a copy), and JavaScript
 * reward-function files (`--reward-fn FILE.js`, TRL's `(prompts, completions) => number[]`, as the
 * app's reward functions: src/lib/rlhf/reward-functions.ts) checked before any training starts.
 *
 * Adding an algorithm is one entry in `PIPELINE_ALGOS`: how to read its `--config`
 * JSON (its settings table), how to build its trainer, and a one-line log of an iteration.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import type { GPT } from '../../src/lib/model/gpt';
import { GrpoTrainer, RlooTrainer } from '../../src/lib/rlhf/grpo';
import { validateGrpoConfig } from '../../src/lib/rlhf/grpo-config';
import { OnlineDpoTrainer } from '../../src/lib/rlhf/online-dpo';
import { validateOnlineDpoConfig } from '../../src/lib/rlhf/online-dpo-config';
import { PpoTrainer, type PpoTokenizer, type RewardSource } from '../../src/lib/rlhf/ppo';
import { validatePpoConfig } from '../../src/lib/rlhf/ppo-config';
import {
  checkSpecs,
  compileRewardFunction,
  definitionLine,
  MAX_REWARD_CODE_CHARS,
  runCompiled,
  type RewardFunctionSpec,
} from '../../src/lib/rlhf/reward-functions';
import { validateRlooConfig } from '../../src/lib/rlhf/rloo-config';

/** What the pipeline needs of a trainer (PpoTrainer, GrpoTrainer, RlooTrainer and OnlineDpoTrainer all fit). */
export interface PipelineTrainer {
  readonly policy: GPT;
  readonly config: object;
  readonly history: readonly object[];
  queryFor(promptIds: number[]): number[];
  encodePrompt(text: string): number[];
  iteration(): Promise<{ metrics: object }>;
  dispose(): void;
}

export interface PipelineTrainerOptions {
  model: GPT;
  reference: GPT;
  reward: RewardSource;
  tokenizer: PpoTokenizer;
  prompts: string[];
  config: object;
}

export interface PipelineAlgo {
  /** As logs and summaries name it. */
  label: string;
  /** `--config` JSON (with `seed` set) through the algorithm's settings table; throws its error. */
  validate(partial: Record<string, unknown>): object;
  /** Completion length and sampling temperature of a validated config (labels and evaluation use them). */
  sampling(config: object): { maxNewTokens: number; temperature: number };
  create(o: PipelineTrainerOptions): PipelineTrainer;
  /** One console line of an iteration's metrics (TRL's names). */
  line(m: Record<string, number | null>): string;
  /** The metric that should stay near 1 (PPO's val/ratio), checked by the bar; null if none. */
  ratioMetric: string | null;
}

const f = (x: number | null | undefined, d = 2, w = 6) => (x == null ? '–' : x.toFixed(d)).padStart(w);

function groupLine(m: Record<string, number | null>): string {
  return `reward ${f(m.reward)} ± ${f(m.reward_std, 2, 4)} kl ${f(m.kl, 3)} clip ${f(m['clip_ratio/region_mean'], 3)} ent ${f(m.entropy)} len ${f(m['completions/mean_length'], 1, 4)} zero-std ${f(m.frac_reward_zero_std)}`;
}

/** The algorithms `--algo` accepts, by name. */
export const PIPELINE_ALGOS = {
  ppo: {
    label: 'PPO',
    validate: (p) => validatePpoConfig(p),
    sampling: (c) => ({
      maxNewTokens: (c as { maxNewTokens: number }).maxNewTokens,
      temperature: (c as { temperature: number }).temperature,
    }),
    create: (o) => new PpoTrainer({ ...o, config: o.config as ReturnType<typeof validatePpoConfig> }),
    line: (m) =>
      `score ${f(m['objective/scores'])} kl ${f(m['objective/kl'], 3)} ratio ${f(m['val/ratio'], 3, 5)} clip ${f(m['policy/clipfrac_avg'], 3, 5)} ent ${f(m['policy/entropy_avg'])} β ${f(m.beta, 3, 5)}`,
    ratioMetric: 'val/ratio',
  },
  grpo: {
    label: 'GRPO',
    validate: (p) => validateGrpoConfig(p),
    sampling: (c) => groupSampling(c),
    create: (o) => new GrpoTrainer({ ...o, config: o.config as ReturnType<typeof validateGrpoConfig> }),
    line: groupLine,
    ratioMetric: null,
  },
  rloo: {
    label: 'RLOO',
    validate: (p) => validateRlooConfig(p),
    sampling: (c) => groupSampling(c),
    create: (o) => new RlooTrainer({ ...o, config: o.config as ReturnType<typeof validateRlooConfig> }),
    line: groupLine,
    ratioMetric: null,
  },
  // Online DPO (TRL OnlineDPOTrainer): two samples per prompt, judged by the same reward, one DPO
  // step on the pairs. scripts/experiments/online-dpo.ts (`onlineDpoStage`) runs the same trainer.
  'online-dpo': {
    label: 'online DPO',
    validate: (p) => validateOnlineDpoConfig(p),
    sampling: (c) => ({
      maxNewTokens: (c as { maxNewTokens: number }).maxNewTokens,
      temperature: (c as { temperature: number }).temperature,
    }),
    create: (o) => new OnlineDpoTrainer({ ...o, config: o.config as ReturnType<typeof validateOnlineDpoConfig> }),
    line: (m) =>
      `score ${f(m['objective/scores'])} margin ${f(m['objective/scores_margin'])} kl ${f(m['objective/kl'], 3)} acc ${f(m['rewards/accuracies'])} loss ${f(m.loss, 3)} eos ${f(m['val/contain_eos_token'])} len ${f(m['completions/mean_length'], 1, 4)}`,
    ratioMetric: null,
  },
} satisfies Record<string, PipelineAlgo>;

export type PipelineAlgoName = keyof typeof PIPELINE_ALGOS;
export const PIPELINE_ALGO_NAMES = Object.keys(PIPELINE_ALGOS) as PipelineAlgoName[];

function groupSampling(c: object): { maxNewTokens: number; temperature: number } {
  const g = c as { maxCompletionLength: number; temperature: number };
  return { maxNewTokens: g.maxCompletionLength, temperature: g.temperature };
}

// ------------------------------------------------------------------ reward-function files

/** A bad `--reward-fn` file: the message names the file and says what is wrong. */
export class RewardFnFileError extends Error {
  override name = 'RewardFnFileError';
}

/** Two made-up completions a reward function is tried on before the run starts. */
const TRIAL = {
  prompts: ['The film was', 'The film was'],
  completions: [' wonderful, a joy from start to end.', ' dull'],
  completionIds: [
    [1, 2, 3],
    [4, 5],
  ],
  finished: [true, false],
};

/**
 * `FILE.js` or `FILE.js=WEIGHT` → a reward-function spec (name from the file name), its code
 * compiled and tried on two completions: a file that cannot be read, does not compile, defines
 * no `reward`, throws, or returns anything but one finite number per completion is refused with
 * a `RewardFnFileError` naming the file (and the line, when known). `read` is for tests.
 */
export async function loadRewardFnFile(
  arg: string,
  index = 0,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): Promise<RewardFunctionSpec> {
  const m = /^(.*?)(?:=([^=/\\]+))?$/.exec(arg)!;
  const path = m[1];
  const weight = m[2] === undefined ? 1 : Number(m[2]);
  const bad = (why: string) => new RewardFnFileError(`--reward-fn ${path}: ${why}`);
  if (!path) throw bad('give a JavaScript file, e.g. --reward-fn my-reward.js');
  if (!Number.isFinite(weight)) throw bad(`the weight after "=" must be a number, got "${m[2]}"`);
  let code: string;
  try {
    code = read(path);
  } catch (e) {
    throw bad(`cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (code.length > MAX_REWARD_CODE_CHARS)
    throw bad(`${code.length} characters; a reward function has at most ${MAX_REWARD_CODE_CHARS}`);
  const name =
    basename(path)
      .replace(/\.[cm]?js$/i, '')
      .replace(/[^A-Za-z0-9_-]+/g, '_')
      .slice(0, 40) || `fn${index}`;
  const spec: RewardFunctionSpec = { name, code, weight };
  const why = checkSpecs([spec]);
  if (why) throw bad(why);
  try {
    const fn = compileRewardFunction(spec, index);
    // As the app's reward worker runs it: errors name the function and the line.
    await runCompiled([{ name, fn, index, line: definitionLine(code) }], TRIAL.prompts, TRIAL.completions, {
      completionIds: TRIAL.completionIds,
      finished: TRIAL.finished,
    });
  } catch (e) {
    throw bad((e as Error).message);
  }
  return spec;
}

// ------------------------------------------------------------------ command line

export interface PipelineArgs {
  algos: PipelineAlgoName[];
  pairs: number;
  noise: number;
  labeller: string;
  labellerConfig: Record<string, unknown>;
  /** Iterations of each algorithm named (`--iterations 100`, or per algorithm `ppo=100,grpo=150`). */
  iterations: Record<string, number>;
  /** Wall-clock limit of each run's training in seconds, 'ppo' (each other algorithm gets the
   *  training time PPO took in this process; PPO must come first), or null for none. */
  seconds: number | 'ppo' | null;
  model: string;
  checkpoint?: string;
  prompts: string;
  seed: number;
  rmMode: string;
  rmPooling: string;
  rmLr?: number;
  rmWeightDecay?: number;
  rmEpochs?: number;
  rmEarlyStopping: boolean;
  /** Weight of the reward model in the reward (0 with --reward-fn: the functions alone, no reward model). */
  rmWeight: number;
  /** `--reward-fn FILE.js[=WEIGHT]`, repeatable (checked later by `loadRewardFnFile`). */
  rewardFns: string[];
  /** `--config` JSON, merged over the algorithm's defaults (one object for every algorithm, or keyed by algorithm). */
  config: Record<string, unknown>;
  evalSamples: number;
  evalSeed: number;
  evalEvery: number;
  out: string;
  backend: string;
}

/** A bad command line; the message says which option and why. */
export class PipelineArgsError extends Error {
  override name = 'PipelineArgsError';
}

const OPTIONS = {
  algo: { type: 'string', default: 'ppo' },
  pairs: { type: 'string', default: '300' },
  noise: { type: 'string', default: '0.1' },
  labeller: { type: 'string', default: 'sentiment' },
  'labeller-config': { type: 'string', default: '{}' },
  iterations: { type: 'string', default: '100' },
  seconds: { type: 'string' },
  model: { type: 'string', default: 'public/models/tiny-gpt' },
  checkpoint: { type: 'string' },
  prompts: { type: 'string', default: 'static/prompts/reviews.json' },
  seed: { type: 'string', default: '0' },
  'rm-mode': { type: 'string', default: 'full' },
  'rm-pooling': { type: 'string', default: 'mean' },
  'rm-lr': { type: 'string' },
  'rm-weight-decay': { type: 'string' },
  'rm-epochs': { type: 'string' },
  'rm-early-stopping': { type: 'boolean', default: false },
  'rm-weight': { type: 'string', default: '1' },
  'reward-fn': { type: 'string', multiple: true },
  config: { type: 'string', default: '{}' },
  'eval-samples': { type: 'string', default: '16' },
  'eval-seed': { type: 'string', default: '7' },
  'eval-every': { type: 'string', default: '0' },
  out: { type: 'string', default: 'runs/pipeline' },
  backend: { type: 'string', default: 'wasm' },
} as const;

/** Parse and check the pipeline's command line (everything but the reward-function files' contents). */
export function parsePipelineArgs(argv: string[]): PipelineArgs {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new PipelineArgsError((e as Error).message);
  }
  const str = (k: string) => values[k] as string | undefined;
  const num = (k: string, check?: (v: number) => string | null): number => {
    const v = Number(str(k));
    if (str(k) === undefined || str(k)!.trim() === '' || !Number.isFinite(v))
      throw new PipelineArgsError(`--${k} must be a number, got "${str(k)}"`);
    const why = check?.(v);
    if (why) throw new PipelineArgsError(`--${k} ${why}, got ${v}`);
    return v;
  };
  const opt = (k: string) => (str(k) === undefined ? undefined : num(k));
  const json = (k: string): Record<string, unknown> => {
    let v: unknown;
    try {
      v = JSON.parse(str(k)!);
    } catch (e) {
      throw new PipelineArgsError(`--${k} must be a JSON object: ${(e as Error).message}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new PipelineArgsError(`--${k} must be a JSON object, e.g. '{"seed":1}'`);
    return v as Record<string, unknown>;
  };
  const positiveInt = (v: number) => (Number.isInteger(v) && v >= 1 ? null : 'must be a whole number ≥ 1');
  const algos = str('algo')!
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (!algos.length) throw new PipelineArgsError(`--algo: name one of ${PIPELINE_ALGO_NAMES.join(', ')}`);
  for (const name of algos)
    if (!(PIPELINE_ALGO_NAMES as string[]).includes(name))
      throw new PipelineArgsError(`--algo: unknown algorithm "${name}"; one of ${PIPELINE_ALGO_NAMES.join(', ')}`);
  if (new Set(algos).size !== algos.length) throw new PipelineArgsError('--algo: an algorithm is named twice');
  let seconds: PipelineArgs['seconds'] = null;
  if (str('seconds') === 'ppo') {
    if (algos[0] !== 'ppo' || algos.length < 2)
      throw new PipelineArgsError('--seconds ppo needs --algo to start with ppo and name another, e.g. ppo,grpo');
    seconds = 'ppo';
  } else if (str('seconds') !== undefined) seconds = num('seconds', (v) => (v > 0 ? null : 'must be above 0'));
  const rewardFns = (values['reward-fn'] as string[] | undefined) ?? [];
  const rmWeight = num('rm-weight');
  if (rmWeight === 0 && !rewardFns.length)
    throw new PipelineArgsError('--rm-weight 0 leaves no reward: add --reward-fn FILE.js');
  return {
    algos: algos as PipelineAlgoName[],
    pairs: num('pairs', positiveInt),
    noise: num('noise', (v) => (v >= 0 && v <= 1 ? null : 'must be in [0, 1]')),
    labeller: str('labeller')!,
    labellerConfig: json('labeller-config'),
    iterations: iterationsOf(str('iterations')!, algos),
    seconds,
    model: str('model')!,
    checkpoint: str('checkpoint'),
    prompts: str('prompts')!,
    seed: num('seed', (v) => (Number.isInteger(v) && v >= 0 ? null : 'must be a whole number ≥ 0')),
    rmMode: str('rm-mode')!,
    rmPooling: str('rm-pooling')!,
    rmLr: opt('rm-lr'),
    rmWeightDecay: opt('rm-weight-decay'),
    rmEpochs: opt('rm-epochs'),
    rmEarlyStopping: values['rm-early-stopping'] === true,
    rmWeight,
    rewardFns,
    config: json('config'),
    evalSamples: num('eval-samples', positiveInt),
    evalSeed: num('eval-seed'),
    evalEvery: num('eval-every', (v) => (Number.isInteger(v) && v >= 0 ? null : 'must be a whole number ≥ 0')),
    out: str('out')!,
    backend: str('backend')!,
  };
}

/** `--iterations N` (every algorithm) or `algo=N,algo=N` (each named algorithm needs one). */
function iterationsOf(text: string, algos: string[]): Record<string, number> {
  const count = (v: string, who: string) => {
    const n = Number(v);
    if (!v.trim() || !Number.isInteger(n) || n < 1)
      throw new PipelineArgsError(`--iterations${who}: must be a whole number ≥ 1, got "${v}"`);
    return n;
  };
  if (!text.includes('=')) return Object.fromEntries(algos.map((n) => [n, count(text, '')]));
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [k, v = ''] = part.split('=').map((x) => x.trim());
    if (!algos.includes(k))
      throw new PipelineArgsError(
        `--iterations: "${k}" is not one of the algorithms named by --algo (${algos.join(', ')})`,
      );
    out[k] = count(v, ` (${k})`);
  }
  for (const n of algos) if (out[n] === undefined) throw new PipelineArgsError(`--iterations: give ${n}=N too`);
  return out;
}

/**
 * The `--config` settings of one algorithm: a flat object applies to every algorithm named,
 * `{"ppo": {...}, "grpo": {...}}` (keys that are algorithm names) to each its own.
 */
export function configFor(config: Record<string, unknown>, algo: PipelineAlgoName): Record<string, unknown> {
  const keyed = Object.keys(config).some((k) => (PIPELINE_ALGO_NAMES as string[]).includes(k));
  if (!keyed) return config;
  const own = config[algo];
  if (own === undefined) return {};
  if (typeof own !== 'object' || own === null || Array.isArray(own))
    throw new PipelineArgsError(`--config: "${algo}" must be an object of ${algo} settings`);
  return own as Record<string, unknown>;
}
