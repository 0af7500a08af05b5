/**
 * Named errors that cross the worker boundary. Comlink carries an error's `name`, `message` and
 * `stack` across; `installErrorTransfer` adds the error's own data (`details`, e.g.
 * `PpoConfigError.fields`), and `reviveError` turns what arrives back into the class here, so the
 * UI can `instanceof`-check and show the message, which always says what to do.
 * (Pattern from mlc-ai/web-llm `error.ts`; the transfer handler follows Comlink's own
 * `throwTransferHandler` in comlink/src/comlink.ts and its README "Transfer handlers".)
 *
 * Every error class the engine, the model layer or a trainer can throw is registered in
 * `REVIVERS` (tests/unit/engine-errors.test.ts checks that none is missing).
 */
import * as Comlink from 'comlink';
import { ModelLoadError, WeightsFormatError } from '../model/errors';
import { TokenizerError } from '../model/tokenizer';
import {
  GroupDivergedError,
  GroupPhaseError,
  PpoDivergedError,
  PpoPhaseError,
  RewardTrainingError,
  TuneDivergedError,
  TuneInputError,
} from '../rlhf/errors';
import { LabellerConfigError } from '../rlhf/labellers';
import { PpoConfigError } from '../rlhf/ppo-config';
import { GrpoConfigError } from '../rlhf/grpo-config';
import { RlooConfigError } from '../rlhf/rloo-config';
import { SettingsError } from '../settings/table';
import { RewardFunctionError, type RewardFailure } from '../rlhf/reward-functions';

export { ModelLoadError, WeightsFormatError, TokenizerError };
export { TuneInputError, TuneDivergedError, PpoDivergedError, PpoPhaseError, RewardTrainingError };
export { PpoConfigError, LabellerConfigError, SettingsError, GrpoConfigError, RlooConfigError };
export { GroupDivergedError, GroupPhaseError, RewardFunctionError };

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

/** An error's own data beyond name, message and stack, as plain JSON (what `installErrorTransfer` carries). */
export type ErrorDetails = Record<string, unknown>;

/** Rebuilds one class from the message and the details that crossed the boundary. */
type Reviver = (message: string, details: ErrorDetails) => Error;

const plain =
  (C: new (message: string) => Error): Reviver =>
  (message) =>
    new C(message);

const isRecord = (x: unknown): x is Record<string, string> =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && Object.values(x).every((v) => typeof v === 'string');

/** A settings table's error class: rebuilt with its `fields`. */
const withFields =
  (C: new (fields: Record<string, string>) => Error): Reviver =>
  (message, details) => {
    const e = new C(isRecord(details.fields) ? details.fields : {});
    e.message = message;
    return e;
  };

/** Name → how to rebuild it. Classes with data of their own read it from `details`. */
const REVIVERS: Record<string, Reviver> = {
  // The model layer's errors (they extend Error: lib/model does not depend on the engine).
  ModelLoadError: plain(ModelLoadError),
  WeightsFormatError: plain(WeightsFormatError),
  TokenizerError: plain(TokenizerError),
  EngineError: plain(EngineError),
  BackendInitError: plain(BackendInitError),
  DeviceLostError: plain(DeviceLostError),
  JobCancelledError: plain(JobCancelledError),
  NotReadyError: plain(NotReadyError),
  InvalidInputError: plain(InvalidInputError),
  // The trainers (src/lib/rlhf/errors.ts, ppo-config.ts, labellers.ts).
  TuneInputError: plain(TuneInputError),
  TuneDivergedError: plain(TuneDivergedError),
  PpoDivergedError: plain(PpoDivergedError),
  PpoPhaseError: plain(PpoPhaseError),
  RewardTrainingError: plain(RewardTrainingError),
  GroupDivergedError: plain(GroupDivergedError),
  GroupPhaseError: plain(GroupPhaseError),
  LabellerConfigError: plain(LabellerConfigError),
  // Any settings table's (src/lib/settings/table.ts); PPO's has its own class.
  SettingsError: (message, details) => {
    const e = new SettingsError('', isRecord(details.fields) ? details.fields : {});
    e.message = message;
    return e;
  },
  GrpoConfigError: withFields(GrpoConfigError),
  RlooConfigError: withFields(RlooConfigError),
  PpoConfigError: withFields(PpoConfigError),
  // The user's JavaScript reward functions (src/lib/rlhf/reward-functions.ts): which one, and its line.
  RewardFunctionError: (message, d) =>
    new RewardFunctionError(
      message,
      typeof d.fn === 'string' ? d.fn : '',
      typeof d.line === 'number' ? d.line : null,
      typeof d.failure === 'string' ? (d.failure as RewardFailure) : 'exception',
    ),
};

/** Names of the classes `reviveError` rebuilds. */
export const REVIVED_ERRORS: readonly string[] = Object.keys(REVIVERS);

const OWN_ERROR_KEYS = new Set(['name', 'message', 'stack', 'cause']);

/** The own enumerable data of an error (e.g. `PpoConfigError.fields`) as plain JSON, or undefined if none. */
export function errorDetails(e: Error): ErrorDetails | undefined {
  const entries = Object.entries(e).filter(([k]) => !OWN_ERROR_KEYS.has(k));
  if (!entries.length) return undefined;
  try {
    return JSON.parse(JSON.stringify(Object.fromEntries(entries))) as ErrorDetails;
  } catch {
    return undefined; // not plain data (a cycle, a BigInt): the name and message still cross
  }
}

/** What crosses the boundary for a thrown value. */
type ThrownWire =
  | { isError: true; name: string; message: string; stack?: string; details?: ErrorDetails }
  | { isError: false; value: unknown };

let installed = false;

/**
 * Replace Comlink's handler of thrown values with one that also carries `errorDetails`. Call it on
 * both sides of a Comlink channel (the worker and the page) before the first call; idempotent.
 * Only Comlink's test for "this is a thrown value" is reused: it checks a private marker.
 */
export function installErrorTransfer(): void {
  if (installed) return;
  const original = Comlink.transferHandlers.get('throw');
  if (!original) return;
  installed = true;
  const handler: Comlink.TransferHandler<{ value: unknown }, ThrownWire> = {
    canHandle: (v): v is { value: unknown } => original.canHandle(v),
    serialize({ value }) {
      if (!(value instanceof Error)) return [{ isError: false, value }, []];
      const details = errorDetails(value);
      const wire: ThrownWire = { isError: true, name: value.name, message: value.message, stack: value.stack };
      if (details) wire.details = details;
      return [wire, []];
    },
    deserialize(wire) {
      if (!wire.isError) throw wire.value;
      const e = new Error(wire.message);
      e.name = wire.name;
      if (wire.stack) e.stack = wire.stack;
      if (wire.details) Object.assign(e, { details: wire.details });
      throw e;
    },
  };
  Comlink.transferHandlers.set('throw', handler as Comlink.TransferHandler<unknown, unknown>);
}

/** Turn an error that came through Comlink (a plain `Error` with a `name`, maybe `details`) back into its class. */
export function reviveError(e: unknown): Error {
  if (!(e instanceof Error)) return new EngineError(String(e));
  const revive = REVIVERS[e.name];
  if (!revive || e.constructor !== Error) return e; // unknown, or already a class of its own
  const details = (e as Error & { details?: unknown }).details;
  const revived = revive(e.message, typeof details === 'object' && details !== null ? (details as ErrorDetails) : {});
  if (e.stack) revived.stack = e.stack;
  return revived;
}
