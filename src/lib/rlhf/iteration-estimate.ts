/**
 * "Expect about N s per iteration here": seconds of one GRPO or PPO iteration with LoRA, put
 * together from pieces timed on the user's own backend with the loaded model
 * (`../engine/lora-timing.ts`, run in the worker from the model card). Free of TF.js, so the page
 * computes the estimate for whatever settings it shows.
 *
 * What an iteration does (./grpo.ts `GroupTrainer`, ./ppo.ts `PpoTrainer`, LoRA on):
 *  - rollout: cached sampling of B rows of T new tokens after a P-token query: one prefill that
 *    yields the first token, then T − 1 cached decode steps at batch B;
 *  - log-probs for the update: one forward of the policy over the B × (P + T) sequences, and one
 *    more with the adapters off for the reference when β ≠ 0 (PPO always; its values come from
 *    the reference forward's hidden states, the value head sitting on the frozen trunk);
 *  - update: GRPO μ = numIterations LoRA training steps over the whole batch; PPO ppoEpochs
 *    passes of miniBatches steps, each step's rows 1/miniBatches of the batch, so one pass costs
 *    about one training step over the whole batch, plus the value model's trunk forward (bounded
 *    here by a whole forward).
 *
 *   GRPO ≈ prefill + (T − 1)·decode + (1 + [β ≠ 0])·forward + μ·trainStep
 *   PPO  ≈ prefill + (T − 1)·decode + 2·forward + ppoEpochs·(trainStep + forward)
 *
 * with decode timed at batch B, and forward and trainStep timed on `rows` ≤ B rows of P + T + 1
 * tokens (the end-of-text token starts each query) and on one row, and taken to the batch as a
 * line through the two: t(B) = t(1) + (B − 1)·(t(rows) − t(1)) / (rows − 1). The products grow
 * with the rows; the tied head's transpose and per-op overheads do not (scaling t(rows) by
 * B / rows alone overestimated distilgpt2's PPO iteration by ×1.39). Timing few rows keeps the
 * timing's memory low (at distilgpt2's 50257-token vocabulary, 16 rows × 49 tokens of training
 * does not fit wasm's 4 GB heap). Scoring is left
 * out: a JS reward function costs next to nothing; a reward model of the policy's size adds
 * about one forward (shown apart).
 * Checked against whole iterations of the real trainers in scripts/bench/hf-shapes.ts.
 */

/** Pieces timed on the loaded model with LoRA on (seconds), and the shape they were timed at. */
export interface LoraTimings {
  /** Rows sampled and trained on together. */
  batch: number;
  /** Prompt tokens per row (the query is these plus one end-of-text token). */
  promptTokens: number;
  /** New tokens per row the forward and training step were timed with. */
  newTokens: number;
  /** Rows the forward and the training step were timed on (≤ batch; scaled up to the batch). */
  rows: number;
  /** Prefill of the batch's queries and the first sampled token. */
  prefill: number;
  /** One cached decode step of the whole batch. */
  decode: number;
  /** One forward (no gradient) over rows × (promptTokens + newTokens + 1) tokens. */
  forward: number;
  /** One LoRA training step (forward, backward over the adapters, Adam) over the same tokens. */
  trainStep: number;
  /** The forward and the training step on one row. */
  forwardOneRow: number;
  trainStepOneRow: number;
  /** Peak bytes of the LoRA training step (tf.profile) and what a trainer holds besides, when measured. */
  memory?: LoraStepMemory;
}

/**
 * Bytes of a LoRA training step, measured with the timings: the step's peak over what was held
 * before it (activations, gradients, Adam's temporaries) on `rows` rows and on one row, what a
 * trainer holds besides (the loaded model, the trainer's policy clone, adapters and their Adam
 * state), and the backends' budgets (`../model/memory.ts` `budgets`).
 */
export interface LoraStepMemory {
  stepBytes: number;
  stepBytesOneRow: number;
  heldBytes: number;
  budgets: { name: string; totalBytes: number | null }[];
}

/** Share of a budget the estimate may fill, the same for every backend (fragmentation, the sampler's cache). */
export const MEMORY_MARGIN = 0.9;

/** Bytes of a training step over `batch` rows: the line through one row and `rows` rows (as {@link batchTimes}), plus `held`. */
export function stepBytesAtBatch(m: LoraStepMemory, rows: number, batch: number): number {
  if (rows === 1) return m.heldBytes + batch * m.stepBytes;
  const perRow = Math.max(0, (m.stepBytes - m.stepBytesOneRow) / (rows - 1));
  return m.heldBytes + m.stepBytesOneRow + (batch - 1) * perRow;
}

/**
 * The largest batch (≤ `cap`) whose {@link stepBytesAtBatch} fits `margin` of `budget`: 0 when
 * not even one row fits, `cap` when the budget is unstated or the bytes do not grow with the rows.
 */
export function largestBatchThatFits(
  m: LoraStepMemory,
  rows: number,
  budget: number | null,
  cap = 1024,
  margin = MEMORY_MARGIN,
): number {
  if (budget === null) return cap;
  const room = budget * margin;
  if (stepBytesAtBatch(m, rows, 1) > room) return 0;
  const perRow = rows === 1 ? m.stepBytes : Math.max(0, (m.stepBytes - m.stepBytesOneRow) / (rows - 1));
  if (perRow === 0) return cap;
  let b = Math.min(cap, 1 + Math.floor((room - stepBytesAtBatch(m, rows, 1)) / perRow));
  while (b > 1 && stepBytesAtBatch(m, rows, b) > room) b--; // floating-point edge
  return b;
}

export interface GrpoEstimateSettings {
  batchSize: number;
  numGenerations: number;
  maxCompletionLength: number;
  beta: number;
  numIterations: number;
}

export interface PpoEstimateSettings {
  batchSize: number;
  maxNewTokens: number;
  ppoEpochs: number;
}

/** Why timings taken at one shape cannot speak for `batch` rows of `newTokens` tokens, or null. */
export function shapeMismatch(t: LoraTimings, batch: number, newTokens: number): string | null {
  if (t.batch !== batch || t.newTokens !== newTokens)
    return `timed at ${t.batch} rows × ${t.newTokens} new tokens, asked for ${batch} × ${newTokens}`;
  return null;
}

function check(t: LoraTimings): void {
  for (const k of ['prefill', 'decode', 'forward', 'trainStep', 'forwardOneRow', 'trainStepOneRow'] as const)
    if (!(Number.isFinite(t[k]) && t[k] >= 0)) throw new RangeError(`timing ${k} must be a number ≥ 0, got ${t[k]}`);
  if (!(Number.isInteger(t.rows) && t.rows >= 1 && t.rows <= t.batch))
    throw new RangeError(`timing rows must be a whole number from 1 to the batch (${t.batch}), got ${t.rows}`);
}

/**
 * Forward and training step of the whole batch: the line through their times on one row and on
 * `rows` rows (slope at least 0: timing noise must not make rows free); timed on one row only,
 * that row's time × batch.
 */
export function batchTimes(t: LoraTimings): { forward: number; trainStep: number } {
  const atBatch = (one: number, many: number) => {
    if (t.rows === 1) return t.batch * many;
    const perRow = Math.max(0, (many - one) / (t.rows - 1));
    return one + (t.batch - 1) * perRow;
  };
  return { forward: atBatch(t.forwardOneRow, t.forward), trainStep: atBatch(t.trainStepOneRow, t.trainStep) };
}

/** Seconds of one GRPO (or RLOO) iteration with LoRA at `s`, from timings taken at the same batch and length. */
export function grpoIterationSeconds(t: LoraTimings, s: GrpoEstimateSettings): number {
  check(t);
  const bad = shapeMismatch(t, s.batchSize, s.maxCompletionLength);
  if (bad) throw new RangeError(`GRPO estimate: ${bad}`);
  const { forward, trainStep } = batchTimes(t);
  const forwards = s.beta !== 0 ? 2 : 1;
  return t.prefill + (s.maxCompletionLength - 1) * t.decode + forwards * forward + s.numIterations * trainStep;
}

/** Seconds of one PPO iteration with LoRA at `s` (reward from a function), from timings at the same shape. */
export function ppoIterationSeconds(t: LoraTimings, s: PpoEstimateSettings): number {
  check(t);
  const bad = shapeMismatch(t, s.batchSize, s.maxNewTokens);
  if (bad) throw new RangeError(`PPO estimate: ${bad}`);
  const { forward, trainStep } = batchTimes(t);
  return t.prefill + (s.maxNewTokens - 1) * t.decode + 2 * forward + s.ppoEpochs * (trainStep + forward);
}

/** "about 40 s", "about 3 min", "about 1.4 h": the rounding a user reads an estimate with. */
export function formatAbout(seconds: number): string {
  if (seconds < 10) return `about ${seconds.toFixed(1)} s`;
  if (seconds < 90) return `about ${Math.round(seconds)} s`;
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1)} h`;
}
