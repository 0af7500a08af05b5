/**
 * The app's state ⇄ the URL table of src/state/url-params.ts: apply the parsed settings at
 * startup, and build the link "Copy link" shares (query string + the current stage's hash).
 */
import { DEFAULT_REWARD_SETTINGS, rewardState } from '../../state/reward.svelte';
import { engineState } from '../../state/engine.svelte';
import { notices } from '../../state/notices.svelte';
import { scenarioState } from '../../state/scenario.svelte';
import { trainState } from '../../state/train.svelte';
import { uiPrefs } from '../../state/ui-prefs.svelte';
import { serialiseSettings, type ShareableState, type UrlSettings } from '../../state/url-params';
import type { PpoConfig } from '../../lib/rlhf/ppo-config';

/** Put what the URL asked for into the app's state (before the engine starts). */
export function applyUrlSettings(s: UrlSettings): void {
  uiPrefs.setPresenter(s.presenter);
  uiPrefs.setHidden(s.hide);
  if (s.scenario) {
    if (!scenarioState.select(s.scenario))
      notices.add('warning', `Unknown scenario "${s.scenario}" in the URL; starting without one.`);
  }
  // Explicit values win over the scenario's, also when the scenario runner sets up PPO.
  scenarioState.ppoOverrides = structuredClone(s.ppo) as Partial<PpoConfig>;
  const t = trainState;
  for (const [k, v] of Object.entries(s.ppo)) (t.config as unknown as Record<string, unknown>)[k] = structuredClone(v);
  if (s.train.promptSet) t.promptSet = s.train.promptSet;
  if (s.train.labeller) t.labeller = s.train.labeller;
  if (s.train.gold) t.gold = s.train.gold;
  if (s.train.evalEvery) t.evalEvery = s.train.evalEvery;
  if (s.train.checkpointEvery) t.checkpointEvery = s.train.checkpointEvery;
  if (Object.keys(s.reward).length) {
    const mode = s.reward.mode ?? rewardState.settings.mode;
    const base = s.reward.mode ? DEFAULT_REWARD_SETTINGS[mode] : rewardState.settings;
    rewardState.settings = { ...base, ...s.reward, mode };
  }
}

/** The current setup, as the URL table sees it. */
export function currentShareable(): ShareableState {
  const t = trainState;
  const r = rewardState.settings;
  return {
    scenario: scenarioState.current?.id ?? null,
    ppo: $state.snapshot(t.config) as PpoConfig,
    train: {
      promptSet: t.promptSet,
      labeller: t.labeller,
      gold: t.gold,
      evalEvery: t.evalEvery,
      checkpointEvery: t.checkpointEvery,
    },
    reward: { mode: r.mode, epochs: r.epochs, learningRate: r.learningRate, batchSize: r.batchSize, seed: r.seed },
    hide: [...uiPrefs.hiddenIds],
    presenter: uiPrefs.presenter,
    backend: engineState.requested,
    inThread: new URLSearchParams(location.search).get('engine') === 'main',
  };
}

/** The link that reopens this setup on this stage. */
export function shareUrl(): string {
  const q = serialiseSettings(currentShareable());
  return `${location.origin}${location.pathname}${q ? `?${q}` : ''}${location.hash}`;
}
