/**
 * Reward sources (DESIGN.md): the active reward model, a scripted labeller, or the user's
 * JavaScript functions run in their own worker: one place that builds a `RewardSource` from a
 * run's reward setting, for PPO and for the critic-free trainers (GRPO, RLOO) alike.
 */
import type { BpeTokenizer } from '../model/tokenizer';
import { labellerFromConfig } from '../rlhf/labellers';
import { rewardFromFunction, type RewardSource } from '../rlhf/ppo';
import { checkSpecs } from '../rlhf/reward-functions';
import { rewardSource } from '../rlhf/reward-model';
import { InvalidInputError } from './errors';
import { functionRewardSource, RewardFunctionRunner } from './reward-fn-runner';
import type { RewardHost } from './reward-host';
import type { PpoSetup } from './types';

export type RewardSpec = PpoSetup['reward'];

/** The source, and the worker of the user's functions when it has one (dispose it with the run). */
export function buildRewardSource(
  spec: RewardSpec,
  rewards: RewardHost,
  tok: BpeTokenizer,
): { reward: RewardSource; runner: RewardFunctionRunner | null } {
  if (spec.kind === 'reward-model') return { reward: rewardSource(rewards.requireFor(tok), tok.eotId), runner: null };
  if (spec.kind === 'function') {
    const why = checkSpecs(spec.functions);
    if (why) throw new InvalidInputError(why);
    const runner = new RewardFunctionRunner();
    return { reward: functionRewardSource(spec.functions, runner), runner };
  }
  const labeller = labellerFromConfig(spec.labeller);
  return { reward: rewardFromFunction((text, prompt) => labeller.score(text, prompt)), runner: null };
}
