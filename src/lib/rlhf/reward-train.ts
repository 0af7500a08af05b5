/**
 * Training a reward model on preference pairs (Bradley–Terry), as TRL's `RewardTrainer`.
 *
 * Loss per batch (TRL `RewardTrainer.compute_loss`):
 *   −log σ(r_chosen − r_rejected − margin)  +  centerCoef · mean((r_chosen + r_rejected)²)
 * (`bradleyTerryLossT`; the centring term is Eisenstein et al. 2023, TRL's
 * `center_rewards_coefficient`). Metrics carry TRL's names: `loss`, `accuracy`
 * (r_c > r_r), `margin` (mean r_c − r_r), `mean_reward` (mean of r_c and r_r), and the same
 * on the validation pairs with an `eval_` prefix; `grad_norm`, `learning_rate`, `epoch` as
 * the HF Trainer logs them.
 *
 * Validation pairs are split off **by prompt** (`splitByPrompt`): no prompt has pairs on both
 * sides, so held-out accuracy measures generalisation to new prompts rather than memorised
 * ones. In full mode early stopping watches eval accuracy (ties broken by eval loss) and the
 * best epoch's weights are kept; head mode is a convex fit (ridge-regularised logistic
 * regression on fixed features) and runs to its last epoch.
 *
 * Full mode first fits the head alone on the frozen trunk, then trains everything from there:
 * "linear probing then fine-tuning" (LP-FT; Kumar et al. 2022, "Fine-Tuning can Distort
 * Pretrained Features and Underperform Out-of-Distribution"). On 300 noisy sentiment pairs,
 * four seeds, held-out accuracy 81.1 % → 83.8 % (scripts/experiments/reward-model.ts).
 *
 * Optimiser: Adam (β₁ 0.9, β₂ 0.999, ε 1e-8 given explicitly, because TF.js's default epsilon
 * depends on the backend), optional decoupled weight decay (AdamW), global-norm gradient
 * clipping, learning rate decaying linearly to 0 (the HF Trainer default schedule).
 *
 * Failure leaves the caller's model as it was: the weights (and normalisation) are
 * snapshotted first and restored on any error, cancellation included.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingPair } from '../data/records';
import { splitByPrompt, type PromptSplit as GenericPromptSplit } from '../data/split';
import { Rng, shuffleInPlace } from '../model/rng';
import { loraSpecOf } from '../model/lora';
import { bradleyTerryLoss, bradleyTerryLossT } from './bradley-terry';
import { Adam } from './adam';
import { RewardTrainingError } from './errors';
import { MIN_PROMPTS } from './reward-limits';
import type { RewardMode, RewardModel, RewardNormalisation } from './reward-model';
import { REWARD_SETTINGS, type RewardConfig } from './reward-config';

// Defined in ./errors (free of TF.js, so the main thread can revive it); re-exported here.
export { RewardTrainingError };

/** Ids of one text: `(prompt, response) → [eot, ...prompt ids, ...response ids]` (see `rewardInputIds`). */
export type RewardEncoder = (prompt: string, response: string) => number[];

export { MIN_PAIRS, MIN_PROMPTS } from './reward-limits';
/** Any |reward| above this means training diverged (BT saturates long before). */
const DIVERGED_REWARD = 1e6;

/**
 * What `trainRewardModel` takes: any settings of the reward-model table (src/lib/rlhf/reward-config.ts,
 * where each default and range lives and why), the encoder, and optionally a fixed validation set
 * or the texts to normalise on. The mode defaults to the model's own; `pooling` is the model's and
 * is ignored here.
 */
export interface RewardTrainOptions extends Partial<RewardConfig> {
  /** Text → ids of the reward model's input. */
  encode: RewardEncoder;
  /** A fixed validation set instead of a split; then every pair in `pairs` trains. */
  valPairs?: TrainingPair[];
  /** Ids of base-model samples to normalise on (mean 0, std 1). Default: every text of the pairs. */
  normaliseOn?: number[][];
}

type Resolved = RewardConfig & Pick<RewardTrainOptions, 'encode' | 'valPairs' | 'normaliseOn'>;

/** The options checked against the table (every bad setting in one `RewardTrainingError`). */
function resolve(rm: RewardModel, o: RewardTrainOptions): Resolved {
  const { encode, valPairs, normaliseOn, ...settings } = o;
  const config = REWARD_SETTINGS.validate({ ...settings, mode: o.mode ?? rm.mode, pooling: rm.pooling });
  return { ...config, encode, valPairs, normaliseOn };
}

// ---------------------------------------------------------------------------
// Split

/** The reward model's split of its pairs (`splitByPrompt`, in `data/split.ts`). */
export type PromptSplit = GenericPromptSplit<TrainingPair>;
export { splitByPrompt } from '../data/split';

// ---------------------------------------------------------------------------
// Metrics

export interface RewardStepMetrics {
  step: number;
  /** Fractional epoch, as the HF Trainer logs it. */
  epoch: number;
  loss: number;
  accuracy: number;
  margin: number;
  mean_reward: number;
  grad_norm: number;
  learning_rate: number;
}

export interface PairEvaluation {
  loss: number;
  accuracy: number;
  margin: number;
  mean_reward: number;
  chosen_rewards: number[];
  rejected_rewards: number[];
}

export interface RewardEpochMetrics {
  epoch: number;
  step: number;
  /** Means over the epoch's steps (weighted by pairs). */
  loss: number;
  accuracy: number;
  margin: number;
  mean_reward: number;
  /** Rewards of the training pairs as seen during the epoch's steps (for a histogram). */
  chosen_rewards: number[];
  rejected_rewards: number[];
  eval_loss?: number;
  eval_accuracy?: number;
  eval_margin?: number;
  eval_mean_reward?: number;
  eval_chosen_rewards?: number[];
  eval_rejected_rewards?: number[];
  /** Wall-clock seconds of the epoch (training steps and evaluation). */
  seconds: number;
}

export type RewardTrainEvent =
  | {
      type: 'start';
      mode: RewardMode;
      trainPairs: number;
      valPairs: number;
      valPrompts: string[];
      droppedTies: number;
      totalSteps: number;
      /** Validation before any step (epoch 0), when there is a validation set. */
      initial?: PairEvaluation;
    }
  | { type: 'step'; metrics: RewardStepMetrics }
  | { type: 'epoch'; metrics: RewardEpochMetrics; isBest: boolean };

export interface RewardTrainResult {
  mode: RewardMode;
  history: RewardEpochMetrics[];
  /** Epoch whose weights were kept (1-based). */
  bestEpoch: number;
  best: RewardEpochMetrics;
  stoppedEarly: boolean;
  steps: number;
  split: PromptSplit;
  /** Pairs dropped because chosen and rejected were identical. */
  droppedTies: number;
  normalisation: RewardNormalisation;
  seconds: number;
  secondsPerEpoch: number;
  /** Full mode with `linearProbe`: the head's fit before the trunk trained (last epoch's metrics). */
  linearProbe?: { seconds: number; accuracy: number; eval_accuracy?: number };
}

// ---------------------------------------------------------------------------
// Encoding and rewards of many pairs

interface EncodedPair {
  pair: TrainingPair;
  chosen: number[];
  rejected: number[];
  margin: number;
}

function encodePairs(pairs: readonly TrainingPair[], encode: RewardEncoder, marginScale: number): EncodedPair[] {
  return pairs.map((pair) => ({
    pair,
    chosen: encode(pair.prompt, pair.chosen),
    rejected: encode(pair.prompt, pair.rejected),
    margin: (pair.margin ?? 0) * marginScale,
  }));
}

function sameIds(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Rewards of every distinct text of `rows`, in `rows` order (head mode via cached features). */
async function rewardsOf(rm: RewardModel, rows: number[][], useCache: boolean): Promise<number[]> {
  if (rows.length === 0) return [];
  const keyOf = (r: number[]) => r.join(',');
  const unique = new Map<string, number[]>();
  for (const r of rows) unique.set(keyOf(r), r);
  const list = [...unique.values()];
  const vals = useCache ? await rm.scoreCached(list) : await rm.score(list);
  const byKey = new Map<string, number>();
  list.forEach((r, i) => byKey.set(keyOf(r), vals[i]));
  return rows.map((r) => byKey.get(keyOf(r))!);
}

async function evaluateEncoded(
  rm: RewardModel,
  enc: EncodedPair[],
  centerCoef: number,
  useCache: boolean,
): Promise<PairEvaluation> {
  const all = await rewardsOf(rm, [...enc.map((e) => e.chosen), ...enc.map((e) => e.rejected)], useCache);
  const c = all.slice(0, enc.length);
  const r = all.slice(enc.length);
  const { loss, accuracy } = bradleyTerryLoss(
    c,
    r,
    enc.map((e) => e.margin),
    centerCoef,
  );
  let margin = 0;
  let sum = 0;
  for (let i = 0; i < c.length; i++) {
    margin += c[i] - r[i];
    sum += c[i] + r[i];
  }
  return {
    loss,
    accuracy,
    margin: margin / c.length,
    mean_reward: sum / (2 * c.length),
    chosen_rewards: c,
    rejected_rewards: r,
  };
}

/** Loss, accuracy and rewards of `pairs` under `rm` (no training; head mode reads cached features). */
export async function evaluatePairs(
  rm: RewardModel,
  pairs: readonly TrainingPair[],
  encode: RewardEncoder,
  opts: { centerCoef?: number; marginScale?: number } = {},
): Promise<PairEvaluation> {
  if (pairs.length === 0) throw new RangeError('evaluatePairs: no pairs');
  // A head-mode model's trunk is frozen: its cached features are valid.
  const useCache = rm.mode === 'head';
  return evaluateEncoded(rm, encodePairs(pairs, encode, opts.marginScale ?? 1), opts.centerCoef ?? 0, useCache);
}

export interface MisclassifiedPair {
  pair: TrainingPair;
  chosenReward: number;
  rejectedReward: number;
}

/** Pairs the model gets wrong (r_chosen ≤ r_rejected), worst first. */
export async function misclassified(
  rm: RewardModel,
  pairs: readonly TrainingPair[],
  encode: RewardEncoder,
): Promise<MisclassifiedPair[]> {
  if (pairs.length === 0) return [];
  const ev = await evaluatePairs(rm, pairs, encode);
  const out: MisclassifiedPair[] = [];
  pairs.forEach((pair, i) => {
    const c = ev.chosen_rewards[i];
    const r = ev.rejected_rewards[i];
    if (!(c > r)) out.push({ pair, chosenReward: c, rejectedReward: r });
  });
  return out.sort((a, b) => b.rejectedReward - b.chosenReward - (a.rejectedReward - a.chosenReward));
}

/**
 * Raw reward of every prefix `ids[0..k]` (k = 0..n−1), for the per-token heatmap: the
 * contribution of token k is `prefix[k] − prefix[k−1]`. One forward pass while the text fits
 * the context (attention is causal, so position k's hidden state is the prefix's; with mean
 * pooling the prefix reward is the running mean of per-position rewards, the head being
 * linear); prefixes longer than blockSize are scored on their last blockSize tokens, as
 * `score` does.
 */
export async function prefixRewards(rm: RewardModel, ids: readonly number[]): Promise<number[]> {
  const n = ids.length;
  if (n === 0) return [];
  const T = rm.config.blockSize;
  const first = Math.min(n, T);
  const perPos = tf.tidy(() => {
    const idx = tf.tensor2d(Int32Array.from(ids.slice(0, first)), [1, first], 'int32');
    const hidden = rm.trunk.hiddenStates(idx);
    return rm.headT(tf.reshape(hidden, [first, rm.config.nEmbd]) as tf.Tensor2D);
  });
  const r = Array.from(await perPos.data());
  perPos.dispose();
  let out = r;
  if (rm.pooling === 'mean') {
    let sum = 0;
    out = r.map((x, k) => (sum += x) / (k + 1));
  }
  if (n > T) {
    const rest: number[][] = [];
    for (let k = T; k < n; k++) rest.push(ids.slice(k - T + 1, k + 1) as number[]);
    out.push(...(await rm.score(rest)));
  }
  return out;
}

/** Gain and bias that map the raw rewards of `idsBatch` to mean 0, std 1. */
export async function computeNormalisation(rm: RewardModel, idsBatch: number[][]): Promise<RewardNormalisation> {
  if (idsBatch.length === 0) return { gain: 1, bias: 0 };
  const r = await rm.score(idsBatch);
  const mean = r.reduce((a, b) => a + b, 0) / r.length;
  const std = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / r.length);
  const gain = std > 1e-8 && Number.isFinite(std) ? 1 / std : 1;
  return { gain, bias: -mean * gain };
}

// ---------------------------------------------------------------------------
// Training

function checkPairs(pairs: readonly TrainingPair[], enc: EncodedPair[], o: Resolved): EncodedPair[] {
  const usable = enc.filter((e) => e.pair.chosen !== e.pair.rejected && !sameIds(e.chosen, e.rejected));
  for (const e of usable)
    if (!Number.isFinite(e.margin))
      throw new RewardTrainingError(`A pair has a margin that is not a number (${e.pair.margin}); check the ratings.`);
  if (pairs.length > 0 && usable.length === 0)
    throw new RewardTrainingError(
      `No usable pairs: all ${pairs.length} pairs are ties (chosen and rejected are the same text), which carry no preference. Label pairs where one response is better.`,
    );
  if (usable.length < o.minPairs) {
    throw new RewardTrainingError(
      `Reward model training needs at least ${o.minPairs} preference pairs, from at least ${MIN_PROMPTS} different prompts; there ${usable.length === 1 ? 'is' : 'are'} ${usable.length}${pairs.length > usable.length ? ` (${pairs.length - usable.length} ties dropped)` : ''}. Label ${o.minPairs - usable.length} more.`,
    );
  }
  return usable;
}

/** One training run's data and state, handed from stage to stage (prepare → epochs → finish). */
interface RewardRun {
  rm: RewardModel;
  o: Resolved;
  full: boolean;
  t0: number;
  /** Usable pairs (ties dropped), encoded. */
  usable: EncodedPair[];
  droppedTies: number;
  split: PromptSplit;
  train: EncodedPair[];
  val: EncodedPair[];
  stepsPerEpoch: number;
  totalSteps: number;
  vars: tf.Variable[];
  adam: Adam | null;
  /** Head mode: the training pairs' features, computed once (the trunk is fixed). */
  trainF: { chosen: tf.Tensor2D; rejected: tf.Tensor2D } | null;
  /** Head mode with `headL2`: s_k² per feature (see `RewardTrainOptions.headL2`). */
  headScale: tf.Tensor1D | null;
  linearProbe?: RewardTrainResult['linearProbe'];
  rng: Rng | null;
  step: number;
  history: RewardEpochMetrics[];
  bestEpoch: number;
  /** [eval accuracy, eval loss] of the best epoch so far. */
  bestKey: [number, number];
  sinceBest: number;
  /** Weights of the best epoch when they are not the live ones. */
  best: tf.Tensor[] | null;
  stoppedEarly: boolean;
}

/** Throw the divergence error of `run` (the caller's weights are restored by `trainRewardModel`). */
function diverged(run: RewardRun, what: string, epoch: number): never {
  throw new RewardTrainingError(
    `Reward model training diverged (${what} at epoch ${epoch}, step ${run.step}); the previous weights were kept. Lower the learning rate (now ${run.o.learningRate}).`,
  );
}

/** The weights training changes (all of them in full mode, the head's in head mode). */
function snapshotTrainable(rm: RewardModel, full: boolean): tf.Tensor[] {
  return full ? rm.snapshot() : rm.headVariables().map((v) => tf.clone(v));
}

function restoreTrainable(rm: RewardModel, full: boolean, snap: tf.Tensor[]): void {
  if (full) rm.restore(snap, true);
  else rm.headVariables().forEach((v, i) => v.assign(snap[i]));
}

/**
 * Stage 1a, before anything changes: resolve the options, encode the pairs, drop ties, split
 * by prompt. Throws `RewardTrainingError` for data or settings the run cannot use.
 */
function planRun(rm: RewardModel, pairs: readonly TrainingPair[], opts: RewardTrainOptions): RewardRun {
  const o = resolve(rm, opts);
  const t0 = performance.now();
  const usable = checkPairs(pairs, encodePairs(pairs, o.encode, o.marginScale), o);
  const usablePairs = usable.map((e) => e.pair);
  let split: PromptSplit;
  if (o.valPairs) {
    split = { train: usablePairs, val: [...o.valPairs], valPrompts: [...new Set(o.valPairs.map((p) => p.prompt))] };
  } else {
    const nPrompts = new Set(usablePairs.map((p) => p.prompt)).size;
    if (o.valFraction > 0 && nPrompts < MIN_PROMPTS)
      throw new RewardTrainingError(
        `Reward model training needs pairs from at least ${MIN_PROMPTS} different prompts (validation uses prompts not seen in training); all ${usablePairs.length} pairs share one prompt. Label pairs for another prompt.`,
      );
    split = splitByPrompt(usablePairs, o.valFraction, o.seed);
  }
  const encOf = new Map(usable.map((e) => [e.pair, e]));
  const train = split.train.map((p) => encOf.get(p)!);
  const val = o.valPairs
    ? encodePairs(o.valPairs, o.encode, o.marginScale).filter((e) => !sameIds(e.chosen, e.rejected))
    : split.val.map((p) => encOf.get(p)!);
  const stepsPerEpoch = Math.ceil(train.length / o.batchSize);
  return {
    rm,
    o,
    full: o.mode === 'full',
    t0,
    usable,
    droppedTies: pairs.length - usable.length,
    split,
    train,
    val,
    stepsPerEpoch,
    totalSteps: stepsPerEpoch * o.epochs,
    vars: rm.trainableVariables(o.mode),
    adam: null,
    trainF: null,
    headScale: null,
    rng: null,
    step: 0,
    history: [],
    bestEpoch: 0,
    bestKey: [-Infinity, Infinity],
    sinceBest: 0,
    best: null,
    stoppedEarly: false,
  };
}

/**
 * Stage 1b, after the caller's weights are snapshotted: full mode's linear probe (LP-FT),
 * head mode's cached features and ridge scale, the optimiser and the batch-order RNG.
 */
async function prepareRun(run: RewardRun, checkpoint?: () => Promise<void>): Promise<void> {
  const { rm, o, full, train, val } = run;
  const C = rm.config.nEmbd;
  if (full && o.linearProbe) {
    // LP-FT: the head's ridge fit on the frozen trunk, on the same split, before any trunk step.
    const lp = await trainRewardModel(
      rm,
      run.split.train,
      {
        encode: o.encode,
        mode: 'head',
        valPairs: val.map((e) => e.pair),
        seed: o.seed,
        batchSize: o.batchSize,
        centerCoef: o.centerCoef,
        marginScale: o.marginScale,
        minPairs: 1,
        normaliseOn: [], // the full run normalises at its end
      },
      undefined,
      checkpoint,
    );
    run.linearProbe = { seconds: lp.seconds, accuracy: lp.best.accuracy, eval_accuracy: lp.best.eval_accuracy };
  }
  if (full) rm.invalidateFeatures();
  // Head mode: the trunk is fixed, so each text's feature vector is computed once.
  if (!full) {
    const fc = await rm.features(train.map((e) => e.chosen));
    const fr = await rm.features(train.map((e) => e.rejected));
    if (val.length) await rm.features([...val.map((e) => e.chosen), ...val.map((e) => e.rejected)]);
    const pack = (fs: Float32Array[]) => {
      const flat = new Float32Array(fs.length * C);
      fs.forEach((f, i) => flat.set(f, i * C));
      return tf.tensor2d(flat, [fs.length, C]);
    };
    run.trainF = { chosen: pack(fc), rejected: pack(fr) };
    if (o.headL2 > 0) {
      // Per-feature RMS of the pair differences: the ridge acts on standardised features.
      const s2 = new Float32Array(C);
      fc.forEach((f, i) => {
        for (let k = 0; k < C; k++) s2[k] += (f[k] - fr[i][k]) ** 2 / fc.length;
      });
      run.headScale = tf.tensor1d(s2.map((x) => x + 1e-12));
    }
  }
}

/** Loss, accuracy and rewards of the validation pairs now. */
function evaluateRun(run: RewardRun): Promise<PairEvaluation> {
  return evaluateEncoded(run.rm, run.val, run.o.centerCoef, !run.full);
}

/** Stage 2: one pass over the training pairs in a seeded order, one Adam step per batch. */
async function runEpoch(
  run: RewardRun,
  epoch: number,
  onProgress?: (e: RewardTrainEvent) => void,
  checkpoint?: () => Promise<void>,
): Promise<RewardEpochMetrics> {
  const { rm, o, train, trainF, headScale, vars, stepsPerEpoch, totalSteps } = run;
  const adam = run.adam!;
  const order = shuffleInPlace(
    train.map((_, i) => i),
    run.rng!,
  );
  const sums = { loss: 0, correct: 0, margin: 0, reward: 0, n: 0 };
  const chosenR: number[] = [];
  const rejectedR: number[] = [];
  for (let s = 0; s < stepsPerEpoch; s++) {
    await checkpoint?.();
    const idx = order.slice(s * o.batchSize, (s + 1) * o.batchSize);
    const B = idx.length;
    const lr = o.lrSchedule === 'linear' ? o.learningRate * (1 - run.step / totalSteps) : o.learningRate;
    let kept: tf.Tensor | null = null;
    let btLoss: tf.Tensor | null = null;
    const packed = tf.tidy(() => {
      const margins = tf.tensor1d(idx.map((i) => train[i].margin));
      const { value, grads } = tf.variableGrads(() => {
        let rewards: tf.Tensor1D;
        if (trainF) {
          const sel = tf.tensor1d(Int32Array.from(idx), 'int32');
          rewards = rm.headT(tf.concat([tf.gather(trainF.chosen, sel), tf.gather(trainF.rejected, sel)], 0));
        } else {
          const rows = [...idx.map((i) => train[i].chosen), ...idx.map((i) => train[i].rejected)];
          rewards = rm.trunk.inTraining(() => rm.scoreT(rows));
        }
        kept = tf.keep(rewards); // read back with the loss, no second forward
        const bt = bradleyTerryLossT(tf.slice(rewards, 0, B), tf.slice(rewards, B, B), margins, o.centerCoef).loss;
        if (!headScale) return bt;
        btLoss = tf.keep(bt); // the reported loss is the Bradley–Terry loss, without the penalty
        const w = tf.reshape(rm.headVariables()[0], [-1]);
        return tf.add(bt, tf.mul(0.5 * o.headL2, tf.sum(tf.mul(tf.square(w), headScale))));
      }, vars);
      // Clipped on the device: nothing is read back before the step (divergence is checked after).
      const norm = adam.gradNorm(grads);
      adam.apply(grads, norm, { lr, maxGradNorm: o.maxGradNorm });
      return tf.concat([tf.reshape(btLoss ?? value, [1]), tf.reshape(norm, [1]), kept!]);
    });
    const data = await packed.data(); // one read-back per step
    tf.dispose([packed, kept!, ...(btLoss ? [btLoss] : [])]);
    run.step++;
    const loss = data[0];
    const gradNorm = data[1];
    if (!Number.isFinite(loss)) diverged(run, `loss is ${loss}`, epoch);
    if (!Number.isFinite(gradNorm)) diverged(run, `gradient norm is ${gradNorm}`, epoch);
    let correct = 0;
    let marginSum = 0;
    let rewardSum = 0;
    for (let b = 0; b < B; b++) {
      const c = data[2 + b];
      const r = data[2 + B + b];
      if (!(Math.abs(c) < DIVERGED_REWARD && Math.abs(r) < DIVERGED_REWARD))
        diverged(run, `a reward is ${Math.abs(c) > Math.abs(r) ? c : r}`, epoch);
      if (c > r) correct++;
      marginSum += c - r;
      rewardSum += c + r;
      chosenR.push(c);
      rejectedR.push(r);
    }
    sums.loss += loss * B;
    sums.correct += correct;
    sums.margin += marginSum;
    sums.reward += rewardSum;
    sums.n += B;
    if (onProgress && (run.step % o.logEvery === 0 || run.step === totalSteps)) {
      onProgress({
        type: 'step',
        metrics: {
          step: run.step,
          epoch: epoch - 1 + (s + 1) / stepsPerEpoch,
          loss,
          accuracy: correct / B,
          margin: marginSum / B,
          mean_reward: rewardSum / (2 * B),
          grad_norm: gradNorm,
          learning_rate: lr,
        },
      });
    }
  }
  return {
    epoch,
    step: run.step,
    loss: sums.loss / sums.n,
    accuracy: sums.correct / sums.n,
    margin: sums.margin / sums.n,
    mean_reward: sums.reward / (2 * sums.n),
    chosen_rewards: chosenR,
    rejected_rewards: rejectedR,
    seconds: 0,
  };
}

/**
 * Stage 3: the epoch's validation (into `metrics`) and the choice of the weights to keep:
 * with early stopping the best eval accuracy (ties: lower eval loss), else the last epoch.
 * Returns whether this epoch is the best so far.
 */
async function evaluateEpoch(run: RewardRun, metrics: RewardEpochMetrics, startedAt: number): Promise<boolean> {
  const { o, val } = run;
  const epoch = metrics.epoch;
  let isBest: boolean;
  if (val.length) {
    const ev = await evaluateRun(run);
    // Without early stopping every epoch is "best": the last one's weights are kept.
    const allR = [...ev.chosen_rewards, ...ev.rejected_rewards];
    if (!Number.isFinite(ev.loss) || allR.some((x) => !(Math.abs(x) < DIVERGED_REWARD)))
      diverged(run, `validation loss is ${ev.loss}`, epoch);
    metrics.eval_loss = ev.loss;
    metrics.eval_accuracy = ev.accuracy;
    metrics.eval_margin = ev.margin;
    metrics.eval_mean_reward = ev.mean_reward;
    metrics.eval_chosen_rewards = ev.chosen_rewards;
    metrics.eval_rejected_rewards = ev.rejected_rewards;
    isBest =
      !o.earlyStopping || ev.accuracy > run.bestKey[0] || (ev.accuracy === run.bestKey[0] && ev.loss < run.bestKey[1]);
    if (isBest) run.bestKey = [ev.accuracy, ev.loss];
  } else {
    isBest = true; // no validation: keep the last epoch
  }
  metrics.seconds = (performance.now() - startedAt) / 1000;
  run.history.push(metrics);
  if (isBest) {
    run.bestEpoch = epoch;
    run.sinceBest = 0;
    if (run.best) tf.dispose(run.best);
    // The last epoch's weights are live already; without early stopping they are the ones kept.
    run.best = epoch === o.epochs || !o.earlyStopping ? null : snapshotTrainable(run.rm, run.full);
  } else {
    run.sinceBest++;
  }
  return isBest;
}

/** Stage 4: keep the best epoch's weights, normalise the rewards, report. */
async function finishRun(run: RewardRun, checkpoint?: () => Promise<void>): Promise<RewardTrainResult> {
  const { rm, o, usable, val, history, bestEpoch, split } = run;
  if (run.best) restoreTrainable(rm, run.full, run.best);
  await checkpoint?.();
  const normIds = o.normaliseOn ?? [
    ...new Map([...usable, ...val].flatMap((e) => [e.chosen, e.rejected]).map((r) => [r.join(','), r])).values(),
  ];
  const normalisation = await computeNormalisation(rm, normIds);
  if (!Number.isFinite(normalisation.gain) || !Number.isFinite(normalisation.bias))
    diverged(run, 'normalisation is not finite', bestEpoch);
  rm.normalisation = normalisation;
  rm.mode = o.mode;
  const seconds = (performance.now() - run.t0) / 1000;
  return {
    mode: o.mode,
    history,
    bestEpoch,
    best: history[bestEpoch - 1],
    stoppedEarly: run.stoppedEarly,
    steps: run.step,
    split: o.valPairs ? { train: split.train, val: val.map((e) => e.pair), valPrompts: split.valPrompts } : split,
    droppedTies: run.droppedTies,
    normalisation,
    seconds,
    secondsPerEpoch: history.reduce((a, m) => a + m.seconds, 0) / history.length,
    linearProbe: run.linearProbe,
  };
}

/**
 * Train `rm` in place on preference pairs. On success the best epoch's weights are kept and
 * `rm.normalisation` is set; on any error (cancellation via `checkpoint` included) weights
 * and normalisation are restored to what they were, and the error is rethrown
 * (`RewardTrainingError` for problems of the data or the settings).
 *
 * `checkpoint` is awaited before every step (the engine yields and cancels there).
 * Stages: `planRun` and `prepareRun` (data, split, features, optimiser), `runEpoch` and
 * `evaluateEpoch` per epoch (early stopping), `finishRun` (best weights, normalisation).
 */
export async function trainRewardModel(
  rm: RewardModel,
  pairs: readonly TrainingPair[],
  opts: RewardTrainOptions,
  onProgress?: (e: RewardTrainEvent) => void,
  checkpoint?: () => Promise<void>,
): Promise<RewardTrainResult> {
  // LoRA (full mode only, the table checks): fresh adapters on the trunk, its base frozen; the
  // adapters go again if the run fails, so the model is as it was.
  const lora = resolve(rm, opts);
  const addedLora = lora.lora && !rm.trunk.lora;
  if (addedLora) rm.trunk.addAdapters(loraSpecOf(lora), lora.seed);
  let run: RewardRun;
  try {
    run = planRun(rm, pairs, opts);
  } catch (e) {
    if (addedLora) rm.trunk.removeAdapters();
    throw e;
  }
  const { o } = run;
  // Everything below can fail: snapshot first, restore on any error.
  const initial = snapshotTrainable(rm, run.full);
  const initialNorm = { ...rm.normalisation };
  try {
    await prepareRun(run, checkpoint);
    onProgress?.({
      type: 'start',
      mode: o.mode,
      trainPairs: run.train.length,
      valPairs: run.val.length,
      valPrompts: run.split.valPrompts,
      droppedTies: run.droppedTies,
      totalSteps: run.totalSteps,
      initial: run.val.length ? await evaluateRun(run) : undefined,
    });
    run.adam = new Adam(run.vars, {
      beta1: o.adamBeta1,
      beta2: o.adamBeta2,
      eps: o.adamEpsilon,
      weightDecay: o.weightDecay,
    });
    run.rng = new Rng(o.seed + 1);
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const te = performance.now();
      const metrics = await runEpoch(run, epoch, onProgress, checkpoint);
      const isBest = await evaluateEpoch(run, metrics, te);
      onProgress?.({ type: 'epoch', metrics, isBest });
      if (run.sinceBest >= o.patience && epoch < o.epochs) {
        run.stoppedEarly = true;
        break;
      }
    }
    return await finishRun(run, checkpoint);
  } catch (e) {
    restoreTrainable(rm, run.full, initial);
    rm.normalisation = initialNorm;
    if (addedLora) {
      rm.trunk.removeAdapters();
      rm.invalidateFeatures();
    }
    throw e;
  } finally {
    tf.dispose(initial);
    if (run.best) tf.dispose(run.best);
    run.adam?.dispose();
    if (run.trainF) tf.dispose([run.trainF.chosen, run.trainF.rejected]);
    run.headScale?.dispose();
  }
}
