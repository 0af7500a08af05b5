/**
 * Named errors of the model layer. They cross the worker boundary by name and
 * message, so each message says what went wrong and what the user can do.
 */

/** Weights do not fit the model (names, shapes, config). */
export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

/** A weights file (safetensors, config.json) is malformed. */
export class WeightsFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightsFormatError';
  }
}

/** A tokenizer file is malformed or not byte-level BPE, or an id is outside the vocabulary. */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}
