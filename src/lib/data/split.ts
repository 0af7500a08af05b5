/**
 * The held-out split every trainer uses: by prompt, seeded. No prompt has items on both sides,
 * so held-out numbers measure generalisation to new prompts rather than memorised ones. The
 * reward model splits its preference pairs with it, SFT its demonstrations and DPO its pairs
 * (`offline-train.ts`), so a prompt held out of one is held out of all.
 */
import { Rng, shuffleInPlace } from '../model/rng';

export interface PromptSplit<T extends { prompt: string }> {
  train: T[];
  val: T[];
  /** Prompts whose items are in `val`. */
  valPrompts: string[];
}

/**
 * Hold out `valFraction` of the distinct prompts (rounded, at least 1 and at most all but one
 * when there are ≥ 2 prompts and valFraction > 0), seeded: every item of a held-out prompt
 * goes to `val`, the rest to `train`, both in their input order. The prompts are shuffled in
 * order of first appearance with `new Rng(seed)`.
 */
export function splitByPrompt<T extends { prompt: string }>(
  items: readonly T[],
  valFraction = 0.2,
  seed = 0,
): PromptSplit<T> {
  const prompts = [...new Set(items.map((p) => p.prompt))];
  if (valFraction <= 0 || prompts.length < 2) return { train: [...items], val: [], valPrompts: [] };
  const nVal = Math.min(prompts.length - 1, Math.max(1, Math.round(valFraction * prompts.length)));
  const valPrompts = shuffleInPlace([...prompts], new Rng(seed)).slice(0, nVal);
  const held = new Set(valPrompts);
  return {
    train: items.filter((p) => !held.has(p.prompt)),
    val: items.filter((p) => held.has(p.prompt)),
    valPrompts: prompts.filter((p) => held.has(p)),
  };
}
