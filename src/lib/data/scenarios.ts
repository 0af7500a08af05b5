/**
 * Scenarios: one-click RLHF runs (label → reward model → PPO), loaded from
 * `static/scenarios/*.json` and listed in `static/scenarios/index.json`.
 *
 * A scenario is plain JSON; `validateScenario` checks every field and throws a
 * `ScenarioError` that names the field (and the file, when given).
 *
 * GRPO scenarios (`static/scenarios/grpo/*.json`, listed in their own `index.json`) have a
 * `kind`: `verifiable` — a JavaScript reward function states a rule, GRPO trains on the prompt
 * set's training prompts, and the held-out pass rate (src/lib/rlhf/pass-rate.ts) is measured
 * before and after; `length-lab` — the same run once per loss type, to overlay completion length
 * against iteration (Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical
 * Perspective", the length bias of GRPO's per-sequence normalisation). `validateGroupScenario`
 * checks them the same way.
 */
import { validateLabellerConfig, type LabellerConfig } from '../rlhf/labellers';
import { validatePpoConfig, type PpoConfig } from '../rlhf/ppo-config';
import { REWARD_SETTINGS, type RewardConfig } from '../rlhf/reward-config';
import { GRPO_SETTINGS, type GrpoConfig, type GrpoLossType } from '../rlhf/grpo-config';
import { checkSpecs, type RewardFunctionSpec } from '../rlhf/reward-functions';

export const SCENARIO_PROMPT_SETS = ['reviews', 'stories', 'requests'] as const;
export type ScenarioPromptSet = (typeof SCENARIO_PROMPT_SETS)[number];

/**
 * The reward-model settings a scenario overrides (the rest keep the table's defaults, or the
 * URL's values): any field of the reward-model table (src/lib/rlhf/reward-config.ts) but the
 * seed, which is the scenario's; mode, epochs and learning rate must be stated.
 */
export type ScenarioRewardModel = Partial<Omit<RewardConfig, 'seed'>> &
  Pick<RewardConfig, 'mode' | 'epochs' | 'learningRate'>;

export interface Scenario {
  id: string;
  title: string;
  summary: string;
  /** What the audience will see happen. */
  explain: string;
  /** Prompt-set id (static/prompts/<id>.json). */
  prompts: ScenarioPromptSet;
  /** Scripted labeller; for `human: true` scenarios it is only the gold reference. */
  labeller: LabellerConfig;
  /** Pairs to label (by the labeller, or by the user when `human`). */
  labels: number;
  human: boolean;
  rewardModel: ScenarioRewardModel;
  /** Partial PPO settings over the defaults (validated by `validatePpoConfig`). */
  ppo: Partial<PpoConfig>;
  iterations: number;
  seed: number;
  /** Gold labeller kind shown next to the reward in PPO (the labeller's kind when left out). */
  gold?: LabellerConfig['kind'] | 'none';
  /** Show β (klCoef) as a slider on the scenario card. */
  betaSlider?: boolean;
  /** Evaluate the policy every N PPO iterations (default 1). */
  evalEvery?: number;
  /** Samples per evaluation prompt (default 1); more make gold, proxy and KL steadier. */
  evalSamples?: number;
}

export class ScenarioError extends Error {
  override name = 'ScenarioError';
  /** The bad field (dotted path), when one is to blame. */
  readonly field: string | null;
  constructor(message: string, field: string | null = null) {
    super(message);
    this.field = field;
  }
}

type Obj = Record<string, unknown>;

/** Validate a scenario (parsed JSON). `source` (a file name) goes into error messages. */
export function validateScenario(x: unknown, source = 'scenario'): Scenario {
  const fail = (field: string | null, msg: string): never => {
    throw new ScenarioError(`${source}: ${field ? `"${field}" ` : ''}${msg}`, field);
  };
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(null, 'must be a JSON object');
  const o = x as Obj;
  const text = (k: string, max = 2000): string => {
    const v = o[k];
    if (typeof v !== 'string' || v.trim() === '') fail(k, 'must be non-empty text');
    if ((v as string).length > max) fail(k, `is longer than ${max} characters`);
    return (v as string).trim();
  };
  const int = (obj: Obj, k: string, path: string, min: number, max: number): number => {
    const v = obj[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      fail(path, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const id = text('id', 64);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(id)) fail('id', 'must be lower-case letters, digits and dashes');
  const title = text('title', 80);
  const summary = text('summary', 300);
  const explain = text('explain');
  if (!(SCENARIO_PROMPT_SETS as readonly unknown[]).includes(o.prompts))
    fail('prompts', `must be one of ${SCENARIO_PROMPT_SETS.join(', ')}, got ${JSON.stringify(o.prompts)}`);
  const prompts = o.prompts as ScenarioPromptSet;
  let labeller: LabellerConfig;
  try {
    labeller = validateLabellerConfig(o.labeller);
  } catch (e) {
    return fail('labeller', (e as Error).message.replace(/^Labeller config: /, ''));
  }
  if (typeof o.human !== 'boolean') fail('human', 'must be true or false');
  const human = o.human as boolean;
  const labels = int(o, 'labels', 'labels', 2, 5000);

  if (typeof o.rewardModel !== 'object' || o.rewardModel === null || Array.isArray(o.rewardModel))
    fail('rewardModel', 'must be an object');
  const rm = o.rewardModel as Obj;
  const extra = Object.keys(rm).filter((k) => !(REWARD_SETTINGS.keys as readonly string[]).includes(k));
  if (extra.length) fail(`rewardModel.${extra[0]}`, 'is not a reward-model setting');
  if ('seed' in rm) fail('rewardModel.seed', 'set the scenario\'s "seed" instead');
  for (const k of ['mode', 'epochs', 'learningRate'])
    if (rm[k] === undefined) fail(`rewardModel.${k}`, 'must be given');
  const rmProblems = REWARD_SETTINGS.problems(rm);
  const firstRm = Object.keys(rmProblems)[0] as keyof typeof rmProblems | undefined;
  if (firstRm) fail(`rewardModel.${firstRm}`, rmProblems[firstRm]!);
  const rewardModel = structuredClone(rm) as ScenarioRewardModel;

  const ppoIn = o.ppo ?? {};
  if (typeof ppoIn !== 'object' || ppoIn === null || Array.isArray(ppoIn)) fail('ppo', 'must be an object');
  try {
    validatePpoConfig(ppoIn);
  } catch (e) {
    const fields = (e as { fields?: Record<string, string> }).fields ?? {};
    const first = Object.keys(fields)[0];
    fail(first && first !== '_' ? `ppo.${first}` : 'ppo', first ? fields[first] : (e as Error).message);
  }
  if ('seed' in (ppoIn as Obj)) fail('ppo.seed', 'set the scenario\'s "seed" instead');
  const iterations = int(o, 'iterations', 'iterations', 1, 1000);
  const seed = int(o, 'seed', 'seed', 0, 2 ** 31 - 1);

  let gold: Scenario['gold'];
  if (o.gold !== undefined) {
    if (o.gold !== 'none' && !['sentiment', 'length', 'keyword', 'constitution'].includes(o.gold as string))
      fail('gold', "must be a labeller kind or 'none'");
    gold = o.gold as Scenario['gold'];
  }
  let betaSlider: boolean | undefined;
  if (o.betaSlider !== undefined) {
    if (typeof o.betaSlider !== 'boolean') fail('betaSlider', 'must be true or false');
    betaSlider = o.betaSlider as boolean;
  }
  const evalEvery = o.evalEvery === undefined ? undefined : int(o, 'evalEvery', 'evalEvery', 1, 1000);
  const evalSamples = o.evalSamples === undefined ? undefined : int(o, 'evalSamples', 'evalSamples', 1, 32);
  const known = [
    'id',
    'title',
    'summary',
    'explain',
    'prompts',
    'labeller',
    'labels',
    'human',
    'rewardModel',
    'ppo',
    'iterations',
    'seed',
    'gold',
    'betaSlider',
    'evalEvery',
    'evalSamples',
  ];
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length) fail(unknown[0], 'is not a scenario field');

  return {
    id,
    title,
    summary,
    explain,
    prompts,
    labeller,
    labels,
    human,
    rewardModel,
    ppo: { ...(ppoIn as Partial<PpoConfig>) },
    iterations,
    seed,
    ...(gold !== undefined ? { gold } : {}),
    ...(betaSlider !== undefined ? { betaSlider } : {}),
    ...(evalEvery !== undefined ? { evalEvery } : {}),
    ...(evalSamples !== undefined ? { evalSamples } : {}),
  };
}

/** Validate `static/scenarios/index.json`: `{ "scenarios": ["file-id", …] }`. */
export function validateScenarioIndex(x: unknown): string[] {
  if (typeof x !== 'object' || x === null || !Array.isArray((x as Obj).scenarios))
    throw new ScenarioError('index.json: "scenarios" must be a list of file names', 'scenarios');
  const list = (x as Obj).scenarios as unknown[];
  list.forEach((v, i) => {
    if (typeof v !== 'string' || !/^[a-z0-9][a-z0-9-]*$/.test(v))
      throw new ScenarioError(`index.json: "scenarios[${i}]" must be a file id (a-z, 0-9, -)`, `scenarios[${i}]`);
  });
  return list as string[];
}

/** Precomputed samples for the instant first screen (`static/scenarios/first-screen.json`). */
export interface FirstScreen {
  scenario: string;
  model: string;
  iterations: number;
  labels: number;
  rewardModelAccuracy: number;
  scoreName: string;
  baseMean: number;
  policyMean: number;
  samples: { prompt: string; base: string; policy: string; baseScore: number; policyScore: number }[];
  generatedBy: string;
}

/** Check the first-screen file; throws `ScenarioError` naming the bad field. */
export function validateFirstScreen(x: unknown): FirstScreen {
  const fail = (field: string, msg: string): never => {
    throw new ScenarioError(`first-screen.json: "${field}" ${msg}`, field);
  };
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail('', 'must be a JSON object');
  const o = x as Obj;
  for (const k of ['scenario', 'model', 'scoreName', 'generatedBy'])
    if (typeof o[k] !== 'string' || (o[k] as string) === '') fail(k, 'must be non-empty text');
  for (const k of ['iterations', 'labels', 'rewardModelAccuracy', 'baseMean', 'policyMean'])
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) fail(k, 'must be a number');
  if (!Array.isArray(o.samples) || o.samples.length === 0) fail('samples', 'must be a non-empty list');
  (o.samples as unknown[]).forEach((s, i) => {
    const r = s as Obj;
    if (typeof s !== 'object' || s === null) fail(`samples[${i}]`, 'must be an object');
    for (const k of ['prompt', 'base', 'policy'])
      if (typeof r[k] !== 'string') fail(`samples[${i}].${k}`, 'must be text');
    for (const k of ['baseScore', 'policyScore'])
      if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) fail(`samples[${i}].${k}`, 'must be a number');
  });
  return o as unknown as FirstScreen;
}

// ------------------------------------------------------------------ GRPO scenarios

/** Fields every GRPO scenario has. */
interface GroupScenarioBase {
  id: string;
  title: string;
  summary: string;
  explain: string;
  prompts: ScenarioPromptSet;
  /** The reward (TRL's shape; summed with weights): a verifiable rule. */
  rewardFunctions: RewardFunctionSpec[];
  /** A completion passes when its reward is ≥ this. */
  passThreshold: number;
  /** Partial GRPO settings over the table's defaults (not the seed: the scenario's). */
  grpo: Partial<GrpoConfig>;
  iterations: number;
  /** Seed of the held-out split, prompt order and sampling. */
  seed: number;
  /** Samples per held-out prompt for the pass rate. */
  evalSamples: number;
}

export interface VerifiableScenario extends GroupScenarioBase {
  kind: 'verifiable';
}

export interface LengthLabScenario extends GroupScenarioBase {
  kind: 'length-lab';
  /** The loss types run one after another on the same seed (each from the bundled model). */
  lossTypes: GrpoLossType[];
}

export type GroupScenario = VerifiableScenario | LengthLabScenario;

/** Any scenario the Start page lists. */
export type AnyScenario = Scenario | GroupScenario;

export function isGroupScenario(s: AnyScenario): s is GroupScenario {
  return 'kind' in s && (s.kind === 'verifiable' || s.kind === 'length-lab');
}

const GROUP_KNOWN = [
  'kind',
  'id',
  'title',
  'summary',
  'explain',
  'prompts',
  'rewardFunctions',
  'passThreshold',
  'grpo',
  'iterations',
  'seed',
  'evalSamples',
  'lossTypes',
];

/** Validate a GRPO scenario (parsed JSON); throws `ScenarioError` naming the field. */
export function validateGroupScenario(x: unknown, source = 'scenario'): GroupScenario {
  const fail = (field: string | null, msg: string): never => {
    throw new ScenarioError(`${source}: ${field ? `"${field}" ` : ''}${msg}`, field);
  };
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(null, 'must be a JSON object');
  const o = x as Obj;
  if (o.kind !== 'verifiable' && o.kind !== 'length-lab')
    fail('kind', `must be "verifiable" or "length-lab", got ${JSON.stringify(o.kind)}`);
  const kind = o.kind as GroupScenario['kind'];
  const text = (k: string, max = 2000): string => {
    const v = o[k];
    if (typeof v !== 'string' || v.trim() === '') fail(k, 'must be non-empty text');
    if ((v as string).length > max) fail(k, `is longer than ${max} characters`);
    return (v as string).trim();
  };
  const int = (k: string, min: number, max: number): number => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      fail(k, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const id = text('id', 64);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(id)) fail('id', 'must be lower-case letters, digits and dashes');
  const title = text('title', 80);
  const summary = text('summary', 300);
  const explain = text('explain');
  if (!(SCENARIO_PROMPT_SETS as readonly unknown[]).includes(o.prompts))
    fail('prompts', `must be one of ${SCENARIO_PROMPT_SETS.join(', ')}, got ${JSON.stringify(o.prompts)}`);
  if (!Array.isArray(o.rewardFunctions)) fail('rewardFunctions', 'must be a list of { name, code, weight }');
  const rewardFunctions = (o.rewardFunctions as unknown[]).map((f, i) => {
    if (typeof f !== 'object' || f === null || Array.isArray(f))
      return fail(`rewardFunctions[${i}]`, 'must be an object { name, code, weight }');
    const r = f as Obj;
    const extra = Object.keys(r).filter((k) => !['name', 'code', 'weight'].includes(k));
    if (extra.length) fail(`rewardFunctions[${i}].${extra[0]}`, 'is not a reward-function field');
    return { name: r.name, code: r.code, weight: r.weight === undefined ? 1 : r.weight } as RewardFunctionSpec;
  });
  const why = checkSpecs(rewardFunctions);
  if (why) fail('rewardFunctions', why);
  const passThreshold = o.passThreshold;
  if (typeof passThreshold !== 'number' || !Number.isFinite(passThreshold))
    fail('passThreshold', `must be a number, got ${JSON.stringify(passThreshold)}`);
  const grpoIn = o.grpo ?? {};
  if (typeof grpoIn !== 'object' || grpoIn === null || Array.isArray(grpoIn)) fail('grpo', 'must be an object');
  if ('seed' in (grpoIn as Obj)) fail('grpo.seed', 'set the scenario\'s "seed" instead');
  const extraGrpo = Object.keys(grpoIn as Obj).filter((k) => !(GRPO_SETTINGS.keys as readonly string[]).includes(k));
  if (extraGrpo.length) fail(`grpo.${extraGrpo[0]}`, 'is not a GRPO setting');
  try {
    GRPO_SETTINGS.validate(grpoIn);
  } catch (e) {
    const fields = (e as { fields?: Record<string, string> }).fields ?? {};
    const first = Object.keys(fields)[0];
    fail(first && first !== '_' ? `grpo.${first}` : 'grpo', first ? fields[first] : (e as Error).message);
  }
  const iterations = int('iterations', 1, 2000);
  const seed = int('seed', 0, 2 ** 31 - 1);
  const evalSamples = int('evalSamples', 1, 64);
  let lossTypes: GrpoLossType[] = [];
  if (kind === 'length-lab') {
    const choices = (GRPO_SETTINGS.spec('lossType') as { choices: readonly string[] }).choices;
    if (!Array.isArray(o.lossTypes) || o.lossTypes.length < 2)
      fail('lossTypes', `must list at least two of ${choices.join(', ')}`);
    (o.lossTypes as unknown[]).forEach((t, i) => {
      if (!choices.includes(t as string)) fail(`lossTypes[${i}]`, `must be one of ${choices.join(', ')}`);
    });
    lossTypes = o.lossTypes as GrpoLossType[];
    if (new Set(lossTypes).size !== lossTypes.length) fail('lossTypes', 'lists a loss type twice');
    if ('lossType' in (grpoIn as Obj)) fail('grpo.lossType', 'is set per run by "lossTypes"');
  } else if (o.lossTypes !== undefined) fail('lossTypes', 'belongs to length-lab scenarios only');
  const unknown = Object.keys(o).filter((k) => !GROUP_KNOWN.includes(k));
  if (unknown.length) fail(unknown[0], 'is not a scenario field');
  const base: GroupScenarioBase = {
    id,
    title,
    summary,
    explain,
    prompts: o.prompts as ScenarioPromptSet,
    rewardFunctions,
    passThreshold: passThreshold as number,
    grpo: { ...(grpoIn as Partial<GrpoConfig>) },
    iterations,
    seed,
    evalSamples,
  };
  return kind === 'length-lab' ? { ...base, kind, lossTypes: [...lossTypes] } : { ...base, kind };
}
