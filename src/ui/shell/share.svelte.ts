/**
 * The app's state ⇄ the URL table of src/state/url-params.ts: apply the parsed settings at
 * startup, and build the link "Copy link" shares (query string + the current stage's hash).
 */
import { rewardDefaults } from '../../lib/rlhf/reward-config';
import { rewardState } from '../../state/reward.svelte';
import { tuneState } from '../../state/tune.svelte';
import { pretrainState } from '../../state/pretrain.svelte';
import { groupState } from '../../state/group.svelte';
import { engineState } from '../../state/engine.svelte';
import { notices } from '../../state/notices.svelte';
import { scenarioState } from '../../state/scenario.svelte';
import { groupScenarioState } from '../../state/group-scenario.svelte';
import { trainState } from '../../state/train.svelte';
import { rewardFnState } from '../../state/reward-fn.svelte';
import { uiPrefs } from '../../state/ui-prefs.svelte';
import { serialiseSettings, type ShareableState, type UrlSettings } from '../../state/url-params';
import type { PpoConfig } from '../../lib/rlhf/ppo-config';

/** Put what the URL asked for into the app's state (before the engine starts). */
export function applyUrlSettings(s: UrlSettings): void {
  uiPrefs.setPresenter(s.presenter);
  uiPrefs.setHidden(s.hide);
  if (s.scenario) {
    // A GRPO scenario's id (static/scenarios/grpo/) opens its card; any other is an RLHF scenario's.
    if (groupScenarioState.select(s.scenario)) groupScenarioState.fromLink = true;
    else if (!scenarioState.select(s.scenario))
      notices.add('warning', `Unknown scenario "${s.scenario}" in the URL; starting without one.`);
  }
  // Explicit values win over the scenario's, also when the scenario runner sets up PPO and the
  // reward model (values the scenario does not state are the URL's too).
  scenarioState.urlOverrides = { ppo: structuredClone(s.ppo), reward: structuredClone(s.reward) };
  if (s.run.quick !== undefined) scenarioState.quick = s.run.quick;
  const t = trainState;
  t.config = { ...t.config, ...structuredClone(s.ppo) };
  Object.assign(t, s.train);
  if (Object.keys(s.reward).length) {
    const mode = s.reward.mode ?? rewardState.settings.mode;
    const base = s.reward.mode ? rewardDefaults(mode) : rewardState.settings;
    rewardState.settings = { ...base, ...s.reward, mode };
  }
  tuneState.sft = { ...tuneState.sft, ...s.sft };
  tuneState.dpo = { ...tuneState.dpo, ...s.dpo };
  pretrainState.config = { ...pretrainState.config, ...s.pretrain };
  groupState.grpo = { ...groupState.grpo, ...s.grpo };
  groupState.rloo = { ...groupState.rloo, ...s.rloo };
  groupState.odpo = { ...groupState.odpo, ...s.odpo };
  if (s.rewardFn !== undefined) {
    t.rewardKind = 'function';
    rewardFnState.offerLink(s.rewardFn);
  }
}

/** The current setup, as the URL table sees it. */
export function currentShareable(): ShareableState {
  const t = trainState;
  return {
    // A picked GRPO scenario, else the RLHF scenario (one of them is picked at a time).
    scenario: groupScenarioState.current?.id ?? scenarioState.current?.id ?? null,
    ppo: $state.snapshot(t.config) as PpoConfig,
    train: {
      promptSet: t.promptSet,
      labeller: t.labeller,
      gold: t.gold,
      evalEvery: t.evalEvery,
      checkpointEvery: t.checkpointEvery,
    },
    reward: $state.snapshot(rewardState.settings),
    sft: $state.snapshot(tuneState.sft),
    dpo: $state.snapshot(tuneState.dpo),
    run: { quick: scenarioState.quick },
    pretrain: $state.snapshot(pretrainState.config),
    grpo: $state.snapshot(groupState.grpo),
    rloo: $state.snapshot(groupState.rloo),
    odpo: $state.snapshot(groupState.odpo),
    hide: [...uiPrefs.hiddenIds],
    presenter: uiPrefs.presenter,
    backend: engineState.requested,
    inThread: new URLSearchParams(location.search).get('engine') === 'main',
  };
}

/** The link that reopens this setup on this stage. */
export function shareUrl(): string {
  let q = serialiseSettings(currentShareable());
  if (trainState.rewardKind === 'function') {
    const code = rewardFnState.linkValue(); // null (and a notice) when too long for a link
    if (code) q += `${q ? '&' : ''}rewardfn=${code}`;
  }
  return `${location.origin}${location.pathname}${q ? `?${q}` : ''}${location.hash}`;
}
