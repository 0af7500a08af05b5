/**
 * The engine's critic-free run: a `GrpoTrainer` or `RlooTrainer` (src/lib/rlhf/grpo.ts, TRL's
 * GRPOTrainer / RLOOTrainer) on the loaded model, rewarded by any reward source
 * (`reward-sources.ts`), run iteration by iteration as a cancellable job. Each iteration's
 * metrics (TRL's names) and its groups (each prompt's G completions with reward, advantage and
 * length, zero-spread groups flagged) go to the page for the curves and the group inspector.
 */
import type { GPT } from '../model/gpt';
import type { BpeTokenizer } from '../model/tokenizer';
import { GrpoTrainer, RlooTrainer, type GroupAlgo } from '../rlhf/grpo';
import type { GrpoConfig } from '../rlhf/grpo-config';
import type { RlooConfig } from '../rlhf/rloo-config';
import { InvalidInputError, NotReadyError } from './errors';
import type { RewardFunctionRunner } from './reward-fn-runner';
import type { RewardHost } from './reward-host';
import { buildRewardSource } from './reward-sources';
import type { GroupEvent, GroupRunRequest, GroupSetup, GroupState, GroupStatus } from './types';

type Trainer = GrpoTrainer | RlooTrainer;

export class GroupHost {
  private trainer: Trainer | null = null;
  private setup: GroupSetup | null = null;
  private runner: RewardFunctionRunner | null = null;
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
    if (setup.algo !== 'grpo' && setup.algo !== 'rloo')
      throw new InvalidInputError(`Unknown algorithm "${String(setup.algo)}": 'grpo' or 'rloo'.`);
    const { reward, runner } = buildRewardSource(setup.reward, rewards, tok);
    const opts = {
      model,
      reward,
      tokenizer: tok,
      prompts: setup.prompts,
      onStep: () => this.stepHook?.(),
    };
    let trainer: Trainer;
    try {
      trainer =
        setup.algo === 'grpo'
          ? new GrpoTrainer({ ...opts, config: setup.config as Partial<GrpoConfig> })
          : new RlooTrainer({ ...opts, config: setup.config as Partial<RlooConfig> });
      if (state) {
        try {
          (trainer as GrpoTrainer).setState(state as Parameters<GrpoTrainer['setState']>[0]);
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
    this.setup = setup;
    return this.status()!;
  }

  /** The run's state between iterations (weights, Adam, RNG, prompt order, history). */
  async getState(): Promise<GroupState> {
    return this.require().getState();
  }

  require(): Trainer {
    if (!this.trainer) throw new NotReadyError('No GRPO or RLOO run yet: start one first.');
    return this.trainer;
  }

  /** Settings changed during a run: checked against the table, applied at the next iteration. */
  updateConfig(change: Partial<GrpoConfig> & Partial<RlooConfig>): GrpoConfig | RlooConfig {
    const t = this.require();
    const next = (t as GrpoTrainer).updateConfig(change as Partial<GrpoConfig>);
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
        const it = await t.iteration();
        onEvent?.({
          kind: 'iteration',
          metrics: it.metrics,
          groups: it.advantages.groups.slice(0, req.groupsShown ?? 8),
        });
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

  dispose(): void {
    this.trainer?.dispose();
    this.trainer = null;
    this.runner?.dispose();
    this.runner = null;
    this.setup = null;
  }
}

const label = (a: GroupAlgo) => a.toUpperCase();
