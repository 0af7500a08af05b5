/**
 * What the feedback studio's parts share: the item types, the modes, and `Studio`, the narrow
 * view of the studio (`FeedbackState` in `../feedback.svelte.ts`) that each mode's part gets.
 * The parts (`pairwise`, `ranking`, `rating`, `edit`, `scripted`, `sources`) import this file,
 * never the studio itself, so there is no import circle.
 */
import type { GenerateResult, SamplingSettings } from '../../lib/engine/types';
import type {
  Demonstration,
  NewRecordInput,
  PairwiseLabel,
  PreferenceRecord,
  ResponseSample,
  SamplingSettings as RecordSampling,
} from '../../lib/data/records';
import type { PromptSet } from '../../lib/data/prompts';
import type { Rng } from '../../lib/model/rng';

export const STUDIO_MODES = [
  { id: 'pairwise', label: 'Pairwise', hint: 'Two samples: pick the better one.' },
  { id: 'ranking', label: 'Ranking', hint: 'Order K samples from best to worst.' },
  { id: 'rating', label: 'Rating', hint: 'Rate each sample 1–7 and flag problems.' },
  { id: 'edit', label: 'Edit', hint: 'Rewrite a sample; saved as a demonstration and as edited ≻ original.' },
] as const;
export type StudioMode = (typeof STUDIO_MODES)[number]['id'];

/** One arm of an arena comparison: the setting a sample came from, hidden until the vote. */
export interface Arm {
  name: string;
  temperature: number;
  seed: number;
}

export interface QueueItem {
  key: number;
  /** The settings fingerprint it was made with (`FeedbackState.configKey`). */
  config: string;
  mode: StudioMode;
  prompt: string;
  responses: ResponseSample[];
  /** Arena only: where each response came from, in display order. */
  arms: Arm[] | null;
  sampling: RecordSampling;
  seed: number;
  modelId: string;
  checkpointId: string;
  /** Pairwise, when ordering by uncertainty: |r_A − r_B| under the active reward model. */
  uncertainty?: number;
}

export interface Reveal {
  chosen: PairwiseLabel;
  arms: Arm[];
}

export interface PromptSource {
  id: string;
  set: PromptSet;
  builtIn: boolean;
}

/** The studio as its parts see it. */
export interface Studio {
  readonly current: QueueItem | null;
  readonly saving: boolean;
  readonly modelReady: boolean;
  readonly sampling: SamplingSettings;
  /** The prompts of the selected prompt source. */
  readonly prompts: readonly string[];
  /** What a record of `item` is made of (prompt, responses, model, annotator…). */
  input(item: QueueItem): NewRecordInput;
  /** A record from `fn`, or null with a notice saying why it could not be made. */
  build<T>(fn: () => T): T | null;
  /** Save, then move on. False (the item stays) when the save failed. */
  commit(item: QueueItem, record: PreferenceRecord | null, demo: Demonstration | null): Promise<boolean>;
  /** Whether an engine error is a cancelled job. */
  isCancel(e: unknown): boolean;
  /** Cancel the queue's running generation, if any (batch labelling takes the engine). */
  cancelGeneration(): void;
  /** Refill the queue (after batch labelling). */
  pump(): Promise<void>;
}

/** The sampling settings a record stores. */
export function recordSampling(s: SamplingSettings, temperature = s.temperature): RecordSampling {
  return { temperature, topK: s.topK, topP: s.topP, maxNewTokens: s.maxNewTokens };
}

/** A generated sample as a record's response (with its arm's setting in the arena). */
export function toResponse(
  s: GenerateResult['samples'][number],
  arm?: { sampling: ResponseSample['sampling']; seed: number },
): ResponseSample {
  return arm
    ? { text: s.text, tokenIds: [...s.ids], sampling: arm.sampling, seed: arm.seed }
    : { text: s.text, tokenIds: [...s.ids] };
}

/** `n` prompts drawn (with replacement) from `list` with `rng`. */
export function drawPrompts(list: readonly string[], n: number, rng: Rng): string[] {
  return Array.from({ length: n }, () => list[rng.int(list.length)]);
}
