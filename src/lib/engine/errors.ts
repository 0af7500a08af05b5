/**
 * Named errors that cross the worker boundary. Comlink carries an error's `name`
 * and `message` across; `reviveError` turns it back into the class here, so the
 * UI can `instanceof`-check and show the message, which always says what to do.
 * (Pattern from mlc-ai/web-llm `error.ts`.)
 */
import { ModelLoadError, WeightsFormatError } from '../model/errors';
import { TokenizerError } from '../model/tokenizer';
import { TuneDivergedError, TuneInputError } from '../rlhf/tune-errors';
import { RewardFunctionError } from '../rlhf/reward-functions';

export { ModelLoadError, WeightsFormatError, TokenizerError };
export { TuneInputError, TuneDivergedError, RewardFunctionError };

export class EngineError extends Error {
  override name = 'EngineError';
}

/** No TF.js backend could be initialised (or the one asked for failed). */
export class BackendInitError extends EngineError {
  override name = 'BackendInitError';
}

/** The WebGPU device was lost mid-job; the engine moved to the next backend. */
export class DeviceLostError extends EngineError {
  override name = 'DeviceLostError';
}

/** A job was cancelled by the user. */
export class JobCancelledError extends EngineError {
  override name = 'JobCancelledError';
}

/** A job was asked for that needs something the engine does not have yet. */
export class NotReadyError extends EngineError {
  override name = 'NotReadyError';
}

/** Input the user gave (a prompt, an option) is out of range. */
export class InvalidInputError extends EngineError {
  override name = 'InvalidInputError';
}

const CLASSES: Record<string, new (message: string) => Error> = {
  // The model layer's errors (they extend Error: lib/model does not depend on the engine).
  ModelLoadError,
  WeightsFormatError,
  TokenizerError,
  EngineError,
  BackendInitError,
  DeviceLostError,
  JobCancelledError,
  NotReadyError,
  InvalidInputError,
  // SFT and DPO (src/lib/rlhf/tune-errors.ts).
  TuneInputError,
  TuneDivergedError,
  // The user's reward functions (src/lib/rlhf/reward-functions.ts).
  RewardFunctionError,
};

/** Turn an error that came through Comlink (a plain `Error` with a `name`) back into its class. */
export function reviveError(e: unknown): Error {
  if (e instanceof Error && Object.values(CLASSES).some((C) => e.constructor === C)) return e;
  if (e instanceof Error) {
    const Cls = CLASSES[e.name];
    if (Cls) {
      const revived = new Cls(e.message);
      if (e.stack) revived.stack = e.stack;
      return revived;
    }
    return e;
  }
  return new EngineError(String(e));
}

/** Errors thrown from library layers below the engine (model, data) that carry a user-facing name. */
export function asEngineError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new EngineError(String(e));
}
