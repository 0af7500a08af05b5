/**
 * Held-out pass rate of a policy under a verifiable reward (a JavaScript reward function that
 * says whether a completion follows a rule): sample each held-out prompt `samples` times at
 * the run's temperature, score every completion with the run's reward source, and count the
 * completions whose reward reaches `threshold`. The scenario runner (src/state/scenario.svelte.ts,
 * through the engine's group host) and the Node measurement script
 * (scripts/experiments/verifiable.ts) both call `evaluatePassRate`, so the numbers in the app and
 * in the notes come from the same code.
 *
 * Each completion reaches the reward functions with its `finished` flag (the third argument), as in
 * training, so a rule such as "one finished sentence" is judged the same way in both.
 *
 * "Held out" is the split every trainer here uses (src/lib/data/split.ts, `splitByPrompt`):
 * prompts the policy never trains on, so a rise measures a rule learned, not prompts memorised.
 */
import type { GPT } from '../model/gpt';
import { generate } from '../model/sampling';
import { splitByPrompt } from '../data/split';
import type { PpoTokenizer, RewardInput, RewardSource } from './ppo';

/** Share of held-out prompts the scenarios hold out (of 32 prompts: 8). */
export const PASS_HELD_OUT_FRACTION = 0.25;

/** Share of `rewards` at or above `threshold` (NaN for none). */
export function passRate(rewards: readonly number[], threshold: number): number {
  if (!rewards.length) return NaN;
  return rewards.filter((r) => r >= threshold).length / rewards.length;
}

/** Train and held-out prompts of a prompt set, split by prompt with the seed (`splitByPrompt`). */
export function passRateSplit(prompts: readonly string[], seed: number): { train: string[]; heldOut: string[] } {
  const s = splitByPrompt(
    prompts.map((prompt) => ({ prompt })),
    PASS_HELD_OUT_FRACTION,
    seed,
  );
  return { train: s.train.map((x) => x.prompt), heldOut: s.val.map((x) => x.prompt) };
}

export interface PassRateOptions {
  /** Samples per prompt. */
  samples: number;
  /** Sampling seed: the same seed samples the same random numbers, so two policies compare fairly. */
  seed: number;
  temperature: number;
  maxNewTokens: number;
  /** A completion passes when its reward is ≥ this. */
  threshold: number;
  /** Prompt text → the ids the model is given (the trainer's `queryFor(encodePrompt(p))`). */
  query: (prompt: string) => number[];
  /** Rows per sampling call (memory). */
  chunk?: number;
  /** Called between chunks (yield, or throw to stop). */
  onChunk?: (done: number, total: number) => Promise<void> | void;
}

export interface PassSample {
  prompt: string;
  text: string;
  reward: number;
  pass: boolean;
  /** It ended by itself (false: the length limit cut it off); reward functions see this too. */
  finished: boolean;
}

export interface PassRateResult {
  passRate: number;
  passed: number;
  total: number;
  meanReward: number;
  /** Tokens per completion, end-of-text included. */
  meanLength: number;
  /** The first sample of each prompt. */
  examples: PassSample[];
}

/** Sample, score and count (see the file header). Throws what the reward source throws. */
export async function evaluatePassRate(
  model: GPT,
  tok: PpoTokenizer,
  reward: RewardSource,
  prompts: readonly string[],
  o: PassRateOptions,
): Promise<PassRateResult> {
  if (!prompts.length) throw new RangeError('no held-out prompts to evaluate on');
  if (!(Number.isInteger(o.samples) && o.samples >= 1)) throw new RangeError(`samples must be ≥ 1, got ${o.samples}`);
  const flat = prompts.flatMap((p) => Array.from({ length: o.samples }, () => p));
  const chunk = o.chunk ?? 32;
  const rewards: number[] = [];
  const lengths: number[] = [];
  const examples: PassSample[] = [];
  for (let c0 = 0; c0 < flat.length; c0 += chunk) {
    const ps = flat.slice(c0, c0 + chunk);
    const queries = ps.map((p) => o.query(p));
    const rows = await generate(
      model,
      queries,
      {
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        seed: o.seed + c0,
        decode: (ids) => tok.decode(ids),
      },
      tok.eotId,
    );
    const inputs: RewardInput[] = rows.map((r, i) => ({
      prompt: ps[i],
      promptIds: queries[i].slice(1),
      responseIds: r.ids,
      text: r.text,
      finished: r.finished,
    }));
    const scores = await reward.score(inputs);
    if (!Array.isArray(scores) || scores.length !== inputs.length)
      throw new RangeError(`reward source returned ${scores?.length} scores for ${inputs.length} completions`);
    scores.forEach((s, i) => {
      rewards.push(s);
      lengths.push(rows[i].ids.length);
      if ((c0 + i) % o.samples === 0)
        examples.push({
          prompt: ps[i],
          text: rows[i].text,
          reward: s,
          pass: s >= o.threshold,
          finished: rows[i].finished,
        });
    });
    await o.onChunk?.(Math.min(c0 + chunk, flat.length), flat.length);
  }
  const rate = passRate(rewards, o.threshold);
  return {
    passRate: rate,
    passed: rewards.filter((r) => r >= o.threshold).length,
    total: rewards.length,
    meanReward: rewards.reduce((a, b) => a + b, 0) / rewards.length,
    meanLength: lengths.reduce((a, b) => a + b, 0) / lengths.length,
    examples,
  };
}
