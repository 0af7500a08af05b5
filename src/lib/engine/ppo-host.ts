/**
 * The engine's PPO run: builds a `PpoTrainer` on the loaded model with the active
 * reward model, a scripted labeller, or the user's JavaScript reward functions (run in
 * their own worker, `reward-fn-runner.ts`) as the reward, runs it phase by
 * phase or iteration by iteration as a cancellable job, samples fixed evaluation
 * prompts every few iterations (with a noise-free "gold" labeller score, to spot
 * reward hacking), hands out plain-data state for checkpoints, and (when asked) packs each
 * iteration's whole batch for the rollout history (`src/lib/data/rollouts.ts`).
 */
import { loraOf } from '../model/lora-config';
import * as tf from '@tensorflow/tfjs-core';
import type { BpeTokenizer } from '../model/tokenizer';
import type { GPT } from '../model/gpt';
import { generate } from '../model/sampling';
import { labellerFromConfig, type LabellerConfig } from '../rlhf/labellers';
import { diversityMetrics } from '../rlhf/diversity';
import { logprobsOfTokens } from '../rlhf/entropy';
import {
  PpoTrainer,
  type AdvantagesResult,
  type IterationResult,
  type PpoPhase,
  type PpoState,
  type RewardSource,
  type RolloutResult,
  type ScoreResult,
} from '../rlhf/ppo';
import { packRolloutLog, type RolloutLog } from '../data/rollouts';
import { validatePpoConfig, type PpoConfig } from '../rlhf/ppo-config';
import { InvalidInputError, NotReadyError } from './errors';
import { functionRewardSource, RewardFunctionRunner } from './reward-fn-runner';
import { checkSpecs, type RewardFunctionSpec } from '../rlhf/reward-functions';
import type { RewardHost } from './reward-host';
import { buildRewardSource } from './reward-sources';
import type { PpoEvalSample, PpoEvent, PpoRunRequest, PpoSetup, PpoStatus } from './types';

/** Most samples per evaluation prompt (`PpoSetup.evalSamples`). */
export const MAX_EVAL_SAMPLES = 32;

export class PpoHost {
  private trainer: PpoTrainer | null = null;
  private setup: PpoSetup | null = null;
  private gold: ((text: string, prompt: string) => number) | null = null;
  private reward: RewardSource | null = null;
  private tok: BpeTokenizer | null = null;
  /** The worker of the user's reward functions, when the reward is `kind: 'function'`. */
  private runner: RewardFunctionRunner | null = null;
  /** The running job's checkpoint, awaited between sampling and minibatch steps. */
  private stepHook: (() => Promise<void>) | null = null;
  /** Phase results of the iteration being stepped phase by phase (for its rollout log). */
  private stepped: { rollout?: RolloutResult; score?: ScoreResult; advantages?: AdvantagesResult } = {};

  status(): PpoStatus | null {
    if (!this.trainer || !this.setup) return null;
    return {
      iteration: this.trainer.completedIterations,
      nextPhase: this.trainer.nextPhase,
      config: this.trainer.nextConfig,
      setup: this.setup,
    };
  }

  create(model: GPT, tok: BpeTokenizer, rewards: RewardHost, setup: PpoSetup, state?: PpoState): PpoStatus {
    if (!setup.prompts.length) throw new InvalidInputError('PPO needs at least one prompt to train on.');
    const es = setup.evalSamples;
    if (es !== undefined && !(Number.isInteger(es) && es >= 1 && es <= MAX_EVAL_SAMPLES))
      throw new InvalidInputError(
        `Samples per evaluation prompt must be a whole number from 1 to ${MAX_EVAL_SAMPLES}, got ${String(es)}.`,
      );
    // A resumed run is built as it was saved: with or without LoRA (the state holds adapters or weights).
    const config = validatePpoConfig(state ? { ...setup.config, ...loraOf(state.config) } : setup.config);
    const built = buildRewardSource(setup.reward, rewards, tok);
    const { runner } = built;
    const inner = built.reward;
    const reward = this.poisonable(() => this.inner);
    this.gold = setup.gold ? labellerFromConfig({ ...setup.gold, noise: 0 } as LabellerConfig).score : null;
    const trainer = new PpoTrainer({
      model,
      reward,
      tokenizer: tok,
      prompts: setup.prompts,
      config,
      onStep: () => this.stepHook?.(),
    });
    try {
      if (state) trainer.setState(state);
    } catch (e) {
      trainer.dispose();
      runner?.dispose();
      throw e;
    }
    this.trainer?.dispose();
    this.runner?.dispose();
    this.runner = runner;
    this.trainer = trainer;
    this.setup = setup;
    this.inner = inner;
    this.reward = reward;
    this.tok = tok;
    return this.status()!;
  }

  /** Test hook ({@link EngineTestHooks.debugPoisonPpo}): the next scored batch gets NaN rewards. */
  poisonNext = false;

  /** The reward source in use (`setRewardFunctions` swaps it between iterations). */
  private inner: RewardSource | null = null;

  private poisonable(inner: () => RewardSource | null): RewardSource {
    return {
      lastParts: () => inner()?.lastParts?.() ?? null,
      score: async (batch) => {
        const scores = await inner()!.score(batch);
        if (!this.poisonNext) return scores;
        this.poisonNext = false;
        return scores.map(() => NaN);
      },
    };
  }

  /**
   * New code for a run rewarded by the user's functions (e.g. after one failed and paused it): the
   * weights, optimiser and history stay; the next scored batch uses the new functions.
   */
  setRewardFunctions(functions: RewardFunctionSpec[]): PpoStatus {
    this.require();
    if (this.setup?.reward.kind !== 'function')
      throw new InvalidInputError('This run is not rewarded by JavaScript functions; start a new run to use them.');
    const why = checkSpecs(functions);
    if (why) throw new InvalidInputError(why);
    const specs = functions.map(({ name, code, weight }) => ({ name, code, weight }));
    const runner = new RewardFunctionRunner();
    this.inner = functionRewardSource(specs, runner);
    this.runner?.dispose();
    this.runner = runner;
    this.setup = { ...this.setup, reward: { kind: 'function', functions: specs } };
    return this.status()!;
  }

  require(): PpoTrainer {
    if (!this.trainer) throw new NotReadyError('No PPO run yet: start one first.');
    return this.trainer;
  }

  /**
   * Change settings during a run: checked against the PPO table and the model, applied by the
   * trainer at the next iteration boundary (`PpoTrainer.updateConfig`). A bad change throws
   * `PpoConfigError` and the run goes on unchanged.
   */
  updateConfig(change: Partial<PpoConfig>): PpoConfig {
    const next = this.require().updateConfig(change);
    if (this.setup) this.setup = { ...this.setup, config: next };
    return next;
  }

  /** Run `req.iterations` iterations, or just the next phase when `req.phase` is set. */
  async run(
    req: PpoRunRequest,
    onEvent: ((e: PpoEvent) => void) | undefined,
    checkpoint: () => Promise<void>,
  ): Promise<PpoStatus> {
    const t = this.require();
    this.stepHook = checkpoint;
    try {
      if (req.phase) {
        const phase: PpoPhase = t.nextPhase;
        const result = await this.runPhase(t, phase);
        if (phase === 'rollout') this.stepped = { rollout: result as RolloutResult };
        else if (phase !== 'update') this.stepped[phase] = result as never;
        const log =
          phase === 'update' &&
          req.keepRollouts &&
          this.stepped.rollout &&
          this.stepped.score &&
          this.stepped.advantages
            ? this.rolloutLog(t.completedIterations, this.stepped.rollout, this.stepped.score, this.stepped.advantages)
            : undefined;
        onEvent?.({ kind: 'phase', phase, result, iteration: t.completedIterations, ...(log ? { rollout: log } : {}) });
        if (phase === 'update') await this.afterIteration(t, req, onEvent);
        return this.status()!;
      }
      for (let i = 0; i < req.iterations; i++) {
        if (t.nextPhase !== 'rollout') {
          // Finish a half-stepped iteration first.
          const next = (): PpoPhase => t.nextPhase; // re-read after each phase (no narrowing)
          for (let phase = next(); phase !== 'rollout'; phase = next()) {
            const result = await this.runPhase(t, phase);
            if (phase !== 'update') this.stepped[phase] = result as never;
            const { rollout, score, advantages } = this.stepped;
            const log =
              phase === 'update' && req.keepRollouts && rollout && score && advantages
                ? this.rolloutLog(t.completedIterations, rollout, score, advantages)
                : undefined;
            onEvent?.({
              kind: 'phase',
              phase,
              result,
              iteration: t.completedIterations,
              ...(log ? { rollout: log } : {}),
            });
          }
        } else {
          const it: IterationResult = await t.iteration();
          const log = req.keepRollouts
            ? this.rolloutLog(t.completedIterations, it.rollout, it.score, it.advantages)
            : undefined;
          onEvent?.({
            kind: 'iteration',
            metrics: it.metrics,
            texts: it.rollout.texts.slice(0, 4),
            prompts: it.rollout.prompts.slice(0, 4),
            scores: it.score.scores.slice(0, 4),
            traces: it.advantages.samples,
            ...(log ? { rollout: log } : {}),
          });
        }
        await this.afterIteration(t, req, onEvent);
        await checkpoint();
      }
      return this.status()!;
    } catch (e) {
      // Cancelled or failed mid-iteration: the half-done batch is dropped, the weights are
      // those of the last completed update.
      if (t.nextPhase !== 'rollout' && !req.phase) t.abandonIteration();
      throw e;
    } finally {
      this.stepHook = null;
    }
  }

  /**
   * The whole batch of a finished iteration, packed for the rollout history: the run id is the
   * page's to fill in. Rewards per source are a weighted sum's parts, else the one source's raw
   * score; the gold labeller (noise-free) scores every row when the run has one.
   */
  private rolloutLog(iteration: number, r: RolloutResult, s: ScoreResult, a: AdvantagesResult): RolloutLog {
    const tok = this.tok!;
    const spec = this.setup?.reward;
    const name =
      spec?.kind === 'labeller' ? spec.labeller.kind : spec?.kind === 'reward-model' ? 'reward model' : 'reward';
    const gold = this.gold;
    return packRolloutLog('', iteration, 'ppo', {
      prompts: r.prompts,
      completions: r.texts,
      finished: r.finished,
      reward: s.scores,
      sources: s.parts?.length ? s.parts : [{ name, scores: s.rawScores }],
      gold: gold ? r.texts.map((text, i) => gold(text, r.prompts[i])) : null,
      tokens: a.rows.responseIds.map((ids) => ids.map((id) => tok.decode([id]))),
      logprob: a.rows.logprobs,
      refLogprob: a.rows.refLogprobs,
      kl: a.rows.kl,
      advantage: a.rows.advantages,
      entropy: a.rows.entropy,
    });
  }

  private async runPhase(t: PpoTrainer, phase: PpoPhase) {
    switch (phase) {
      case 'rollout':
        return t.rollout();
      case 'score':
        return t.score();
      case 'advantages':
        return t.advantages();
      case 'update':
        return t.update();
    }
  }

  private async afterIteration(t: PpoTrainer, req: PpoRunRequest, onEvent: ((e: PpoEvent) => void) | undefined) {
    const every = req.evalEvery ?? 0;
    if (every > 0 && t.completedIterations % every === 0 && this.setup?.evalPrompts.length) {
      const samples = await this.evaluate();
      const metrics = diversityMetrics(samples.map((s) => s.text)) as Record<string, number>;
      onEvent?.({ kind: 'eval', iteration: t.completedIterations, samples, metrics });
    }
  }

  /**
   * Samples of the current policy on the fixed evaluation prompts (seeded, so comparable):
   * `setup.evalSamples` per prompt (default 1), in one batched `generate`, copy-major (all
   * prompts once, then again, …; the one RNG stream gives every copy its own draws). Each sample
   * carries its KL to the reference, Σ_t log π(y_t) − log π_ref(y_t) at the sampling temperature
   * (the k1 estimator per sequence, as `objective/kl`; Gao et al. 2022 plot scores against √KL
   * of the same samples, see src/lib/rlhf/overopt.ts).
   */
  async evaluate(): Promise<PpoEvalSample[]> {
    const t = this.require();
    const tok = this.tok!;
    const base = this.setup?.evalPrompts ?? [];
    if (!base.length) return [];
    const copies = this.setup?.evalSamples ?? 1;
    const prompts = Array.from({ length: copies }, () => base).flat();
    const ids = prompts.map((p) => t.queryFor(t.encodePrompt(p)));
    const temperature = t.config.temperature;
    const rows = await generate(
      t.policy,
      ids,
      {
        maxNewTokens: t.config.maxNewTokens,
        temperature,
        seed: 12345,
        decode: (x) => tok.decode(x),
      },
      tok.eotId,
    );
    // Reference log-probs of the sampled tokens: one forward pass over the right-padded rows.
    const B = ids.length;
    const L = Math.max(...ids.map((q, i) => q.length + rows[i].ids.length));
    const seq = new Int32Array(B * L).fill(tok.eotId);
    ids.forEach((q, i) => seq.set([...q, ...rows[i].ids], i * L));
    const refT = tf.tidy(() => {
      const x = tf.tensor2d(seq, [B, L], 'int32');
      const targets = tf.concat([tf.slice(x, [0, 1], [B, L - 1]), tf.fill([B, 1], tok.eotId, 'int32')], 1);
      return logprobsOfTokens(t.reference.forward(x).logits, targets as tf.Tensor2D, temperature);
    });
    const ref = (await refT.data()) as Float32Array;
    refT.dispose();
    const kl = rows.map((r, i) => r.logprobs.reduce((sum, lp, j) => sum + lp - ref[i * L + ids[i].length - 1 + j], 0));
    const texts = rows.map((r) => r.text);
    const scores = await this.reward!.score(
      rows.map((r, i) => ({
        prompt: prompts[i],
        promptIds: ids[i].slice(1),
        responseIds: r.ids,
        text: r.text,
        finished: r.finished,
      })),
    );
    return texts.map((text, i) => ({
      prompt: prompts[i],
      text,
      score: scores[i],
      gold: this.gold ? this.gold(text, prompts[i]) : null,
      kl: kl[i],
    }));
  }

  async getState(): Promise<PpoState> {
    return this.require().getState();
  }

  dispose(): void {
    this.trainer?.dispose();
    this.trainer = null;
    this.runner?.dispose();
    this.runner = null;
    this.setup = null;
  }
}
