/**
 * The engine's on-policy run without a value model: a `GrpoTrainer` or `RlooTrainer`
 * (src/lib/rlhf/grpo.ts, TRL's GRPOTrainer / RLOOTrainer) or an `OnlineDpoTrainer`
 * (src/lib/rlhf/online-dpo.ts, TRL's OnlineDPOTrainer) on the loaded model, rewarded by any
 * reward source (`reward-sources.ts`), run iteration by iteration as a cancellable job. Each
 * iteration's metrics (TRL's names) go to the page for the curves, with its groups (each
 * prompt's G completions with reward, advantage and length, zero-spread groups flagged) or, for
 * online DPO, its judged pairs, for the inspectors; with `keepRollouts`, a GRPO / RLOO batch
 * also goes whole (packed, `src/lib/data/rollouts.ts`) to the rollout history.
 * `passRate` samples the current policy on held-out prompts and counts the completions the
 * run's reward passes (src/lib/rlhf/pass-rate.ts), for the verifiable-reward scenarios.
 */
import { hasLoraRows, loraOf } from '../model/lora-config';
import { packGroupLog } from '../data/rollouts';
import type { GPT } from '../model/gpt';
import type { BpeTokenizer } from '../model/tokenizer';
import { GrpoTrainer, RlooTrainer } from '../rlhf/grpo';
import { evaluatePassRate, type PassRateResult } from '../rlhf/pass-rate';
import type { RewardSource } from '../rlhf/ppo';
import type { GrpoConfig } from '../rlhf/grpo-config';
import type { RlooConfig } from '../rlhf/rloo-config';
import { OnlineDpoTrainer } from '../rlhf/online-dpo';
import type { OnlineDpoConfig } from '../rlhf/online-dpo-config';
import { InvalidInputError, NotReadyError } from './errors';
import type { RewardFunctionRunner } from './reward-fn-runner';
import type { RewardHost } from './reward-host';
import { buildRewardSource } from './reward-sources';
import type {
  GroupEvent,
  GroupPassRateRequest,
  GroupRunAlgo,
  GroupRunRequest,
  GroupSetup,
  GroupState,
  GroupStatus,
} from './types';

type Trainer = GrpoTrainer | RlooTrainer | OnlineDpoTrainer;

export class GroupHost {
  private trainer: Trainer | null = null;
  private setup: GroupSetup | null = null;
  private runner: RewardFunctionRunner | null = null;
  private reward: RewardSource | null = null;
  private tok: BpeTokenizer | null = null;
  private stepHook: (() => Promise<void>) | null = null;

  status(): GroupStatus | null {
    if (!this.trainer || !this.setup) return null;
    return {
      algo: this.trainer.algo,
      iteration: this.trainer.completedIterations,
      config: { ...this.trainer.nextConfig },
      setup: this.setup,
    };
  }

  /** A new run, or with `state` (from `getState`, e.g. a saved checkpoint) the run resumed where it stopped. */
  create(model: GPT, tok: BpeTokenizer, rewards: RewardHost, setup: GroupSetup, state?: GroupState): GroupStatus {
    if (state && state.algo !== setup.algo)
      throw new InvalidInputError(`A saved ${label(state.algo)} state cannot resume a ${label(setup.algo)} run.`);
    if (!setup.prompts.length)
      throw new InvalidInputError(`${label(setup.algo)} needs at least one prompt to train on.`);
    if (setup.algo !== 'grpo' && setup.algo !== 'rloo' && setup.algo !== 'online-dpo')
      throw new InvalidInputError(`Unknown algorithm "${String(setup.algo)}": 'grpo', 'rloo' or 'online-dpo'.`);
    const { reward, runner } = buildRewardSource(setup.reward, rewards, tok);
    // A resumed run is built as it was saved: with or without LoRA (the state holds adapters or weights).
    if (state && setup.algo !== 'online-dpo' && hasLoraRows(state.config))
      setup = { ...setup, config: { ...setup.config, ...loraOf(state.config) } } as GroupSetup;
    const opts = {
      model,
      reward,
      rewardName: rewardName(setup.reward),
      tokenizer: tok,
      prompts: setup.prompts,
      onStep: () => this.stepHook?.(),
    };
    let trainer: Trainer;
    try {
      trainer =
        setup.algo === 'grpo'
          ? new GrpoTrainer({ ...opts, config: setup.config as Partial<GrpoConfig> })
          : setup.algo === 'rloo'
            ? new RlooTrainer({ ...opts, config: setup.config as Partial<RlooConfig> })
            : new OnlineDpoTrainer({ ...opts, config: setup.config as Partial<OnlineDpoConfig> });
      if (state) {
        try {
          if (trainer instanceof OnlineDpoTrainer)
            trainer.setState(state as Parameters<OnlineDpoTrainer['setState']>[0]);
          else (trainer as GrpoTrainer).setState(state as Parameters<GrpoTrainer['setState']>[0]);
        } catch (e) {
          trainer.dispose();
          throw new InvalidInputError(`The saved run cannot be resumed on this model: ${(e as Error).message}`);
        }
      }
    } catch (e) {
      runner?.dispose();
      throw e;
    }
    this.dispose();
    this.trainer = trainer;
    this.runner = runner;
    this.reward = reward;
    this.tok = tok;
    this.setup = setup;
    return this.status()!;
  }

  /** The run's state between iterations (weights, Adam, RNG, prompt order, history). */
  async getState(): Promise<GroupState> {
    return this.require().getState();
  }

  require(): Trainer {
    if (!this.trainer) throw new NotReadyError('No GRPO, RLOO or online DPO run yet: start one first.');
    return this.trainer;
  }

  /** Settings changed during a run: checked against the table, applied at the next iteration. */
  updateConfig(
    change: Partial<GrpoConfig> & Partial<RlooConfig> & Partial<OnlineDpoConfig>,
  ): GrpoConfig | RlooConfig | OnlineDpoConfig {
    const t = this.require();
    const next =
      t instanceof OnlineDpoTrainer
        ? t.updateConfig(change)
        : (t as GrpoTrainer).updateConfig(change as Partial<GrpoConfig>);
    if (this.setup) this.setup = { ...this.setup, config: next };
    return next;
  }

  /** `req.iterations` iterations; a cancelled or failed one is dropped (the weights stay as after the last). */
  async run(
    req: GroupRunRequest,
    onEvent: ((e: GroupEvent) => void) | undefined,
    checkpoint: () => Promise<void>,
  ): Promise<GroupStatus> {
    const t = this.require();
    this.stepHook = checkpoint;
    try {
      for (let i = 0; i < req.iterations; i++) {
        if (t instanceof OnlineDpoTrainer) {
          const it = await t.iteration();
          onEvent?.({
            kind: 'iteration',
            metrics: it.metrics,
            groups: [],
            pairs: it.pairs.pairs.slice(0, req.groupsShown ?? 8),
          });
        } else {
          const it = await t.iteration();
          const spec = this.setup?.reward;
          const name =
            spec?.kind === 'labeller' ? spec.labeller.kind : spec?.kind === 'reward-model' ? 'reward model' : 'reward';
          // The reward source's last batch is this iteration's (nothing else scores in between).
          const parts = this.reward?.lastParts?.() ?? null;
          const rollout = req.keepRollouts
            ? packGroupLog('', t.completedIterations, t.algo, {
                prompts: it.rollout.prompts,
                completions: it.rollout.texts,
                finished: it.rollout.finished,
                reward: it.score.rewards,
                sources: parts?.length ? parts : [{ name, scores: it.score.rewards }],
                groupSize: it.rollout.groupSize,
                advantages: it.advantages.advantages,
                klPerSequence: it.advantages.klPerSequence,
              })
            : undefined;
          onEvent?.({
            kind: 'iteration',
            metrics: it.metrics,
            groups: it.advantages.groups.slice(0, req.groupsShown ?? 8),
            ...(rollout ? { rollout } : {}),
          });
        }
        await checkpoint();
      }
      return this.status()!;
    } catch (e) {
      if (t.nextPhase !== 'rollout') t.abandonIteration();
      throw e;
    } finally {
      this.stepHook = null;
    }
  }

  /**
   * The held-out pass rate of the run's current policy: `req.samples` samples of each prompt at
   * the run's temperature and completion length, scored by the run's reward.
   */
  async passRate(req: GroupPassRateRequest, checkpoint: () => Promise<void>): Promise<PassRateResult> {
    const t = this.require();
    if (t instanceof OnlineDpoTrainer)
      throw new InvalidInputError('The held-out pass rate is measured for GRPO and RLOO runs.');
    if (t.nextPhase !== 'rollout') throw new InvalidInputError('Finish or cancel the iteration under way first.');
    if (!req.prompts.length) throw new InvalidInputError('No held-out prompts to measure the pass rate on.');
    if (!Number.isFinite(req.threshold)) throw new InvalidInputError('The pass threshold must be a number.');
    const c = t.config;
    return evaluatePassRate(t.policy, this.tok!, this.reward!, req.prompts, {
      samples: req.samples,
      seed: req.seed,
      temperature: c.temperature,
      maxNewTokens: c.maxCompletionLength,
      threshold: req.threshold,
      query: (p) => t.queryFor(t.encodePrompt(p)),
      onChunk: checkpoint,
    });
  }

  dispose(): void {
    this.reward = null;
    this.trainer?.dispose();
    this.trainer = null;
    this.runner?.dispose();
    this.runner = null;
    this.tok = null;
    this.setup = null;
  }
}

const label = (a: GroupRunAlgo) => (a === 'online-dpo' ? 'Online DPO' : a.toUpperCase());

/** The name a reward source without parts is logged under (`rewards/<name>/mean`). */
function rewardName(spec: GroupSetup['reward']): string {
  if (spec.kind === 'reward-model') return 'reward_model';
  if (spec.kind === 'labeller') return spec.labeller.kind;
  return 'reward';
}
