/**
 * Named errors of SFT and DPO training. Kept free of TF.js imports so the main thread can
 * register them in `src/lib/engine/errors.ts` without loading TF.js.
 */

/** The data or the settings cannot train (no pairs, empty completions, bad numbers): nothing was changed. */
export class TuneInputError extends Error {
  override name = 'TuneInputError';
}

/** A non-finite loss or gradient: training stopped and the weights are those of before it started. */
export class TuneDivergedError extends Error {
  override name = 'TuneDivergedError';
}
