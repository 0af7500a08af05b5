/**
 * Every setting a URL can carry, in one table built from the settings tables: the PPO
 * hyper-parameters (seed included; src/lib/rlhf/ppo-config.ts), the reward model's (`rm…`,
 * reward-config.ts), SFT's (`sft…`), DPO's (`dpo…`), GRPO's (`grpo…`), RLOO's (`rloo…`) and pretraining's (`pt…`, src/lib/pretrain/config.ts), the Train page's setup and the scenario
 * runner's `quick` (their tables live in train.svelte.ts and scenario.svelte.ts), plus the shell's
 * scenario, presenter's `hide=` flags, `presenter=1` and the engine's backend. The whole setup
 * round-trips: `serialiseSettings(current)` → query string → `parseUrlParams` → the same setup.
 *
 * The idea is tensorflow/playground's `src/state.ts` (one serialisable table of properties with
 * their types, `*_hide` flags for a teacher); the code is ours. Types, ranges, defaults and help
 * are not repeated here: each row reads its settings table. Numbers are plain decimal notation
 * (`0x10`, `0b11`, `Infinity` give a notice).
 *
 * A bad value gives a notice (`problems`) and its default, never a broken page. Values are
 * quoted in notices cut to 40 characters; they are shown as text, never as HTML.
 */
import { isBackendChoice, type BackendChoice } from '../lib/engine/types';
import { DPO_SETTINGS, type DpoConfig } from '../lib/rlhf/dpo-config';
import { PPO_SETTINGS, type PpoConfig } from '../lib/rlhf/ppo-config';
import { REWARD_SETTINGS, rewardDefaults, type RewardConfig } from '../lib/rlhf/reward-config';
import { SFT_SETTINGS, type SftConfig } from '../lib/rlhf/sft-config';
import { PRETRAIN_SETTINGS, type PretrainConfig } from '../lib/pretrain/config';
import { GRPO_SETTINGS, type GrpoConfig } from '../lib/rlhf/grpo-config';
import { RLOO_SETTINGS, type RlooConfig } from '../lib/rlhf/rloo-config';
import { booleanText, type SettingsTable } from '../lib/settings/table';
import { STAGES } from './router.svelte';
import { SCENARIO_RUN_SETTINGS, type ScenarioRunSettings } from './scenario.svelte';
import { TRAIN_SETUP_SETTINGS, type TrainSetupSettings } from './train.svelte';

export type { TrainSetupSettings };

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

/** The settings groups a URL can set, each one settings table. */
export interface GroupSettings {
  ppo: PpoConfig;
  train: TrainSetupSettings;
  reward: RewardConfig;
  sft: SftConfig;
  dpo: DpoConfig;
  run: ScenarioRunSettings;
  pretrain: PretrainConfig;
  grpo: GrpoConfig;
  rloo: RlooConfig;
}
export type Group = keyof GroupSettings;

export const GROUP_TABLES: { readonly [G in Group]: SettingsTable<GroupSettings[G]> } = {
  ppo: PPO_SETTINGS,
  train: TRAIN_SETUP_SETTINGS,
  reward: REWARD_SETTINGS,
  sft: SFT_SETTINGS,
  dpo: DPO_SETTINGS,
  run: SCENARIO_RUN_SETTINGS,
  pretrain: PRETRAIN_SETTINGS,
  grpo: GRPO_SETTINGS,
  rloo: RLOO_SETTINGS,
};
const GROUPS = Object.keys(GROUP_TABLES) as Group[];
/** The groups a scenario sets up: a link with a scenario writes all their values. */
const SCENARIO_GROUPS: readonly Group[] = ['ppo', 'train', 'reward'];

/** The reward-model settings a URL can set (the table's, less `url: false` rows). */
export type RewardUrlSettings = RewardConfig;

/** Everything a shared link describes. */
export type ShareableState = GroupSettings & {
  scenario: string | null;
  hide: string[];
  presenter: boolean;
  backend: BackendChoice;
  inThread: boolean;
};

export type UrlSettings = { [G in Group]: Partial<GroupSettings[G]> } & {
  backend?: BackendChoice;
  /** Run the engine on the main thread (debugging, and the fallback test). */
  inThread: boolean;
  scenario?: string;
  hide: string[];
  presenter: boolean;
  /** JavaScript reward functions (base64url of their JSON, src/lib/rlhf/reward-functions.ts `specsToLink`):
   *  foreign code, shown to the user and run only when they accept it. */
  rewardFn?: string;
};

export interface ParsedUrl {
  settings: UrlSettings;
  problems: string[];
}

/** One URL-settable property of a group (the table's row). */
export interface UrlParam {
  /** The name in the URL. */
  name: string;
  group: Group;
  /** The field in the group's settings object. */
  key: string;
  help: string;
}

type AnyTable = SettingsTable<Record<string, unknown>>;
const tableOf = (g: Group) => GROUP_TABLES[g] as unknown as AnyTable;

// ------------------------------------------------------------------ the table

export const URL_PARAMS: readonly UrlParam[] = GROUPS.flatMap((group) => {
  const t = tableOf(group);
  return t.keys.flatMap((key) => {
    const name = t.urlName(key);
    return name ? [{ name, group, key, help: t.help(key) }] : [];
  });
});

const BY_NAME = new Map(URL_PARAMS.map((p) => [p.name, p]));
/** Parameters outside the groups, handled by name below. */
const SHELL_PARAMS = ['scenario', 'hide', 'presenter', 'backend', 'engine', 'rewardfn'];

const quote = (raw: string) => `"${raw.slice(0, 40)}${raw.length > 40 ? '…' : ''}"`;

// ------------------------------------------------------------------ defaults

/** The setup a fresh Train page starts with. */
export function defaultTrainSetup(): TrainSetupSettings {
  return TRAIN_SETUP_SETTINGS.defaultsFor({});
}

export function defaultRewardSettings(mode: 'head' | 'full' = 'head'): RewardUrlSettings {
  return rewardDefaults(mode);
}

/** The default of `p`, seeing the other values of its group in `state` (the reward model's mode). */
function defaultOf(p: UrlParam, state?: Partial<ShareableState>): unknown {
  const t = tableOf(p.group);
  const given = (state?.[p.group] ?? {}) as Record<string, unknown>;
  return t.defaultsFor(given)[p.key];
}

// ------------------------------------------------------------------ parse

export function parseUrlParams(search: string): ParsedUrl {
  const params = new URLSearchParams(search);
  const problems: string[] = [];
  const settings: UrlSettings = {
    inThread: false,
    ppo: {},
    train: {},
    reward: {},
    sft: {},
    dpo: {},
    run: {},
    pretrain: {},
    grpo: {},
    rloo: {},
    hide: [],
    presenter: false,
  };

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
    const b = booleanText(presenter);
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

  const rewardFn = params.get('rewardfn');
  if (rewardFn !== null) settings.rewardFn = rewardFn;

  const group = (g: Group) => settings[g] as Record<string, unknown>;
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
    const t = tableOf(p.group);
    const r = t.parse(p.key, raw);
    if (r.ok) group(p.group)[p.key] = r.value;
    else
      problems.push(
        `${name}=${quote(raw)} in the URL ${r.reason}; using the default ${t.format(p.key, defaultOf(p))}.`,
      );
  }

  // Values that are fine alone but not together (PPO's miniBatches must divide batchSize): the
  // URL values named in a problem go; when only a default is named, the URL's last value goes.
  for (const g of GROUPS) {
    const t = tableOf(g);
    const mine = group(g);
    for (let tries = 0; tries < t.keys.length; tries++) {
      const bad = t.problems(mine);
      const named = Object.keys(bad).filter((k) => k in mine);
      if (!Object.keys(bad).length) break;
      const drop = named.length ? named : Object.keys(mine).slice(-1);
      if (!drop.length) break;
      for (const k of drop) {
        const name = t.urlName(k)!;
        const why = Object.entries(bad)
          .map(([f, msg]) => `${f} ${msg}`)
          .join('; ');
        problems.push(
          `${name}=${quote(params.get(name) ?? '')} in the URL does not fit the other settings (${why}); using the default ${t.format(k, t.defaultsFor(mine)[k])}.`,
        );
        delete mine[k];
      }
    }
  }
  return { settings, problems };
}

// ------------------------------------------------------------------ serialise

function enc(v: string): string {
  return encodeURIComponent(v).replace(/%2C/gi, ',');
}

/**
 * The query string (without `?`) of `state`: only values that differ from their defaults,
 * except with a scenario, where every value of the groups a scenario sets up is written (the
 * scenario may have changed their defaults).
 */
export function serialiseSettings(state: ShareableState): string {
  const out: string[] = [];
  if (state.scenario) out.push(`scenario=${enc(state.scenario)}`);
  for (const p of URL_PARAMS) {
    const t = tableOf(p.group);
    const text = t.format(p.key, (state[p.group] as unknown as Record<string, unknown>)[p.key]);
    const all = state.scenario && SCENARIO_GROUPS.includes(p.group);
    if (all || text !== t.format(p.key, defaultOf(p, state))) out.push(`${p.name}=${enc(text)}`);
  }
  if (state.hide.length) out.push(`hide=${enc(state.hide.join(','))}`);
  if (state.presenter) out.push('presenter=1');
  if (state.backend !== 'auto') out.push(`backend=${state.backend}`);
  if (state.inThread) out.push('engine=main');
  return out.join('&');
}
