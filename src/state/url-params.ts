/**
 * Every setting a URL can carry, in one table: the scenario, the PPO hyper-parameters (seed
 * included), the Train page's setup, the reward-model training settings, the presenter's
 * `hide=` flags and `presenter=1`, and the engine's backend. The whole setup round-trips:
 * `serialiseSettings(current)` → query string → `parseUrlParams` → the same setup.
 *
 * The idea is tensorflow/playground's `src/state.ts` (one serialisable table of properties with
 * their types, `*_hide` flags for a teacher); the code is ours. Ranges are not repeated here:
 * the PPO fields are checked by `validatePpoConfig` (src/lib/rlhf/ppo-config.ts), the enums come
 * from the state modules that own them.
 *
 * A bad value gives a notice (`problems`) and its default, never a broken page. Values are
 * quoted in notices cut to 40 characters; they are shown as text, never as HTML.
 */
import { isBackendChoice, type BackendChoice } from '../lib/engine/types';
import { DEFAULT_PPO_CONFIG, PPO_CONFIG_HELP, validatePpoConfig, type PpoConfig } from '../lib/rlhf/ppo-config';
import type { LabellerKind } from '../lib/rlhf/labellers';
import { DEFAULT_REWARD_SETTINGS, type RewardSettings } from './reward.svelte';
import { STAGES } from './router.svelte';
import { GOLD_LABELLERS, PROMPT_SETS, REWARD_LABELLERS, TrainState, type PromptSetId } from './train.svelte';

/** Scenario ids: lower-case letters, digits and dashes. */
export const SCENARIO_ID = /^[a-z0-9-]{1,40}$/;

/** Parts of the page a `hide=` flag can hide (`data-panel` in the markup). */
export const PANELS: readonly { id: string; label: string }[] = [
  { id: 'stages', label: 'the stage links in the header' },
  { id: 'backend', label: 'the backend picker in the header' },
  { id: 'ppo-advanced', label: 'the advanced PPO hyper-parameters' },
  { id: 'ppo-config', label: 'the whole PPO hyper-parameter table' },
  ...STAGES.filter((s) => s.id !== 'model').map((s) => ({ id: s.id, label: `the ${s.label} stage` })),
];
export const PANEL_IDS: readonly string[] = PANELS.map((p) => p.id);

/** The Train page's setup fields a URL can set. */
export interface TrainSetupSettings {
  promptSet: PromptSetId;
  labeller: LabellerKind;
  gold: LabellerKind | 'none';
  evalEvery: number;
  checkpointEvery: number;
}

/** The reward-model training settings a URL can set. */
export type RewardUrlSettings = Pick<RewardSettings, 'mode' | 'epochs' | 'learningRate' | 'batchSize' | 'seed'>;

/** Everything a shared link describes. */
export interface ShareableState {
  scenario: string | null;
  ppo: PpoConfig;
  train: TrainSetupSettings;
  reward: RewardUrlSettings;
  hide: string[];
  presenter: boolean;
  backend: BackendChoice;
  inThread: boolean;
}

export interface UrlSettings {
  backend?: BackendChoice;
  /** Run the engine on the main thread (debugging, and the fallback test). */
  inThread: boolean;
  scenario?: string;
  ppo: Partial<PpoConfig>;
  train: Partial<TrainSetupSettings>;
  reward: Partial<RewardUrlSettings>;
  hide: string[];
  presenter: boolean;
}

export interface ParsedUrl {
  settings: UrlSettings;
  problems: string[];
}

type Group = 'ppo' | 'train' | 'reward';
type Parsed = { ok: true; value: unknown } | { ok: false; reason: string };

/** One URL-settable property of a group (the table's row). */
export interface UrlParam {
  /** The name in the URL. */
  name: string;
  group: Group;
  /** The field in the group's settings object. */
  key: string;
  help: string;
  parse(raw: string): Parsed;
  format(value: unknown): string;
}

// ------------------------------------------------------------------ value parsers

const ok = (value: unknown): Parsed => ({ ok: true, value });
const bad = (reason: string): Parsed => ({ ok: false, reason });

function toNumber(raw: string): number {
  return raw.trim() === '' ? NaN : Number(raw);
}

const TRUE = new Set(['1', 'true', 'on', 'yes']);
const FALSE = new Set(['0', 'false', 'off', 'no']);
const OFF = new Set(['off', 'null', 'none']);

function boolOf(raw: string): boolean | null {
  const v = raw.trim().toLowerCase();
  return TRUE.has(v) ? true : FALSE.has(v) ? false : null;
}

function intIn(min: number, max: number) {
  return (raw: string): Parsed => {
    const n = toNumber(raw);
    return Number.isInteger(n) && n >= min && n <= max ? ok(n) : bad(`must be a whole number from ${min} to ${max}`);
  };
}

function oneOf(choices: readonly string[]) {
  return (raw: string): Parsed => {
    const v = raw.trim().toLowerCase();
    return choices.includes(v) ? ok(v) : bad(`must be one of ${choices.join(', ')}`);
  };
}

/** The string a PPO field's value takes in the URL. */
function formatPpo(v: unknown): string {
  if (v === null) return 'off';
  if (typeof v === 'object') {
    const { target, horizon } = v as { target: number; horizon: number };
    return `${target},${horizon}`;
  }
  return String(v);
}

/** URL text → the PPO field's JSON type; `validatePpoConfig` checks the range. */
function ppoCandidate(key: keyof PpoConfig, raw: string): unknown {
  const v = raw.trim();
  if (key === 'klEstimator') return v.toLowerCase();
  if (key === 'whitenRewards') return boolOf(v) ?? v;
  if (key === 'adaptiveKl') {
    if (OFF.has(v.toLowerCase())) return null;
    const parts = v.split(/[,:]/);
    return parts.length === 2 ? { target: toNumber(parts[0]), horizon: toNumber(parts[1]) } : v;
  }
  if ((key === 'missingEosPenalty' || key === 'targetKlEarlyStop') && OFF.has(v.toLowerCase())) return null;
  return toNumber(v);
}

/** `validatePpoConfig`'s message for one field, without its "got …" tail (the notice quotes the raw text). */
function ppoProblem(key: keyof PpoConfig, partial: Partial<PpoConfig>): string | null {
  try {
    validatePpoConfig(partial);
    return null;
  } catch (e) {
    const fields = (e as { fields?: Partial<Record<string, string>> }).fields ?? {};
    const msg = fields[key];
    return msg ? msg.replace(/,? got .*$/s, '') : null;
  }
}

function ppoParam(key: keyof PpoConfig): UrlParam {
  return {
    name: key,
    group: 'ppo',
    key,
    help: PPO_CONFIG_HELP[key],
    parse(raw) {
      const value = ppoCandidate(key, raw);
      // Checked alone; `miniBatches` against itself as batch size (the pair is checked after).
      const partial = (
        key === 'miniBatches' ? { miniBatches: value, batchSize: value } : { [key]: value }
      ) as Partial<PpoConfig>;
      const problem = ppoProblem(key, partial);
      return problem ? bad(problem) : ok(value);
    },
    format: formatPpo,
  };
}

const plain = (v: unknown) => String(v);

// ------------------------------------------------------------------ the table

export const URL_PARAMS: readonly UrlParam[] = [
  ...(Object.keys(PPO_CONFIG_HELP) as (keyof PpoConfig)[]).map(ppoParam),
  {
    name: 'prompts',
    group: 'train',
    key: 'promptSet',
    help: 'Prompt set of the PPO run.',
    parse: oneOf(PROMPT_SETS.map((s) => s.id)),
    format: plain,
  },
  {
    name: 'labeller',
    group: 'train',
    key: 'labeller',
    help: 'Scripted labeller used as the PPO reward function.',
    parse: oneOf(REWARD_LABELLERS),
    format: plain,
  },
  {
    name: 'gold',
    group: 'train',
    key: 'gold',
    help: 'Noise-free gold labeller of the evaluation samples.',
    parse: oneOf([...GOLD_LABELLERS, 'none']),
    format: plain,
  },
  {
    name: 'evalEvery',
    group: 'train',
    key: 'evalEvery',
    help: 'Sample the evaluation prompts every N iterations.',
    parse: intIn(1, 10_000),
    format: plain,
  },
  {
    name: 'checkpointEvery',
    group: 'train',
    key: 'checkpointEvery',
    help: 'Save a checkpoint every K iterations.',
    parse: intIn(1, 10_000),
    format: plain,
  },
  {
    name: 'rmMode',
    group: 'reward',
    key: 'mode',
    help: "Reward model: 'head' trains a linear head on frozen features, 'full' fine-tunes the trunk too.",
    parse: oneOf(['head', 'full']),
    format: plain,
  },
  {
    name: 'rmEpochs',
    group: 'reward',
    key: 'epochs',
    help: 'Reward-model training epochs.',
    parse: intIn(1, 500),
    format: plain,
  },
  {
    name: 'rmLr',
    group: 'reward',
    key: 'learningRate',
    help: 'Reward-model learning rate.',
    parse: (raw) => {
      const n = toNumber(raw);
      return Number.isFinite(n) && n > 0 && n <= 1 ? ok(n) : bad('must be a number > 0 and ≤ 1');
    },
    format: plain,
  },
  {
    name: 'rmBatch',
    group: 'reward',
    key: 'batchSize',
    help: 'Reward-model batch size (pairs).',
    parse: intIn(1, 256),
    format: plain,
  },
  {
    name: 'rmSeed',
    group: 'reward',
    key: 'seed',
    help: 'Seed of the reward model’s validation split and batch order.',
    parse: intIn(0, 0xffffffff),
    format: plain,
  },
];

const BY_NAME = new Map(URL_PARAMS.map((p) => [p.name, p]));
/** Parameters outside the groups, handled by name below. */
const SHELL_PARAMS = ['scenario', 'hide', 'presenter', 'backend', 'engine'];

const quote = (raw: string) => `"${raw.slice(0, 40)}${raw.length > 40 ? '…' : ''}"`;

// ------------------------------------------------------------------ defaults

let trainDefaults: TrainSetupSettings | null = null;

/** The setup a fresh Train page starts with (read from `TrainState`'s own initial values). */
export function defaultTrainSetup(): TrainSetupSettings {
  if (!trainDefaults) {
    const t = new TrainState();
    trainDefaults = {
      promptSet: t.promptSet,
      labeller: t.labeller,
      gold: t.gold,
      evalEvery: t.evalEvery,
      checkpointEvery: t.checkpointEvery,
    };
  }
  return { ...trainDefaults };
}

export function defaultRewardSettings(mode: 'head' | 'full' = 'head'): RewardUrlSettings {
  const { epochs, learningRate, batchSize, seed } = DEFAULT_REWARD_SETTINGS[mode];
  return { mode, epochs, learningRate, batchSize, seed };
}

function defaultOf(p: UrlParam, state?: ShareableState): unknown {
  if (p.group === 'ppo') return DEFAULT_PPO_CONFIG[p.key as keyof PpoConfig];
  if (p.group === 'train') return defaultTrainSetup()[p.key as keyof TrainSetupSettings];
  // The other reward defaults depend on the mode (head or full).
  const mode = p.key === 'mode' ? 'head' : (state?.reward.mode ?? 'head');
  return defaultRewardSettings(mode)[p.key as keyof RewardUrlSettings];
}

// ------------------------------------------------------------------ parse

export function parseUrlParams(search: string): ParsedUrl {
  const params = new URLSearchParams(search);
  const problems: string[] = [];
  const settings: UrlSettings = { inThread: false, ppo: {}, train: {}, reward: {}, hide: [], presenter: false };

  const backend = params.get('backend');
  if (backend !== null) {
    const b = backend.trim().toLowerCase();
    if (isBackendChoice(b)) settings.backend = b;
    else problems.push(`Unknown backend "${backend.slice(0, 40)}" in the URL; using automatic choice.`);
  }
  const inThread = params.get('engine');
  if (inThread !== null) {
    if (inThread === 'main') settings.inThread = true;
    else if (inThread !== 'worker')
      problems.push(`Unknown engine "${inThread.slice(0, 40)}" in the URL; using the worker.`);
  }
  const scenario = params.get('scenario');
  if (scenario !== null) {
    if (SCENARIO_ID.test(scenario)) settings.scenario = scenario;
    else problems.push(`Scenario ${quote(scenario)} in the URL is not a scenario id (a-z, 0-9 and -); ignored.`);
  }
  const presenter = params.get('presenter');
  if (presenter !== null) {
    const b = boolOf(presenter);
    if (b === null) problems.push(`presenter=${quote(presenter)} in the URL must be 1 or 0; presenter mode is off.`);
    else settings.presenter = b;
  }
  for (const raw of params.getAll('hide')) {
    for (const part of raw.split(',')) {
      const id = part.trim().toLowerCase();
      if (!id) continue;
      if (PANEL_IDS.includes(id)) {
        if (!settings.hide.includes(id)) settings.hide.push(id);
      } else problems.push(`hide=${quote(part)} in the URL is not a panel (${PANEL_IDS.join(', ')}); ignored.`);
    }
  }

  const seen = new Set<string>();
  for (const [name, raw] of params) {
    if (SHELL_PARAMS.includes(name)) continue;
    const p = BY_NAME.get(name);
    if (!p) {
      problems.push(`Unknown URL parameter ${quote(name)}; ignored.`);
      continue;
    }
    if (seen.has(name)) continue; // the first of repeated names wins
    seen.add(name);
    const r = p.parse(raw);
    if (r.ok) (settings[p.group] as Record<string, unknown>)[p.key] = r.value;
    else problems.push(`${name}=${quote(raw)} in the URL ${r.reason}; using the default ${p.format(defaultOf(p))}.`);
  }

  // PPO fields that are fine alone but not together (miniBatches must divide batchSize).
  for (let tries = 0; tries < 3; tries++) {
    let fields: Partial<Record<string, string>>;
    try {
      validatePpoConfig(settings.ppo);
      break;
    } catch (e) {
      fields = (e as { fields?: Partial<Record<string, string>> }).fields ?? {};
    }
    for (const [k, msg] of Object.entries(fields)) {
      // A default that does not fit a URL value (miniBatches 2 with batchSize=7): drop the URL's.
      const key = (k in settings.ppo ? k : k === 'miniBatches' ? 'batchSize' : k) as keyof PpoConfig;
      if (!(key in settings.ppo)) continue;
      const raw = params.get(key) ?? '';
      problems.push(
        `${key}=${quote(raw)} in the URL does not fit the other settings (${k} ${msg}); using the default ${formatPpo(DEFAULT_PPO_CONFIG[key])}.`,
      );
      delete settings.ppo[key];
    }
    if (tries === 2) settings.ppo = {};
  }
  return { settings, problems };
}

// ------------------------------------------------------------------ serialise

function enc(v: string): string {
  return encodeURIComponent(v).replace(/%2C/gi, ',');
}

/**
 * The query string (without `?`) of `state`: only values that differ from their defaults,
 * except with a scenario, where every value is written (the scenario may have changed them).
 */
export function serialiseSettings(state: ShareableState): string {
  const out: string[] = [];
  if (state.scenario) out.push(`scenario=${enc(state.scenario)}`);
  for (const p of URL_PARAMS) {
    const value = (state[p.group] as unknown as Record<string, unknown>)[p.key];
    const text = p.format(value);
    if (state.scenario || text !== p.format(defaultOf(p, state))) out.push(`${p.name}=${enc(text)}`);
  }
  if (state.hide.length) out.push(`hide=${enc(state.hide.join(','))}`);
  if (state.presenter) out.push('presenter=1');
  if (state.backend !== 'auto') out.push(`backend=${state.backend}`);
  if (state.inThread) out.push('engine=main');
  return out.join('&');
}
