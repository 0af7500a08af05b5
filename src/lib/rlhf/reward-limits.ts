/**
 * The least data a reward model trains on (no TF.js here, so the main thread can check it):
 * `MIN_PAIRS` preference pairs that carry a preference, from `MIN_PROMPTS` prompts, because
 * validation holds out whole prompts.
 */
export const MIN_PAIRS = 8;
export const MIN_PROMPTS = 2;
