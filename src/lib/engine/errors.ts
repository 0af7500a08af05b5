/**
 * Named errors that cross the worker boundary. Comlink carries an error's `name`
 * and `message` across; `reviveError` turns it back into the class here, so the
 * UI can `instanceof`-check and show the message, which always says what to do.
 * (Pattern from mlc-ai/web-llm `error.ts`.)
 */

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

/** A model could not be loaded: the files are missing, malformed or do not match. */
export class ModelLoadError extends EngineError {
  override name = 'ModelLoadError';
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

const CLASSES: Record<string, new (message: string) => EngineError> = {
  EngineError,
  BackendInitError,
  DeviceLostError,
  ModelLoadError,
  JobCancelledError,
  NotReadyError,
  InvalidInputError,
};

/** Turn an error that came through Comlink (a plain `Error` with a `name`) back into its class. */
export function reviveError(e: unknown): Error {
  if (e instanceof EngineError) return e;
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
