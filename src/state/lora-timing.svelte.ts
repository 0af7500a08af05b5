/**
 * The model card's "expect about N s per iteration here": times the pieces of a LoRA iteration
 * on the loaded model in the worker (`Engine.timeLoraIteration`, a cancellable job) and turns
 * them into GRPO and PPO estimates at the defaults of their settings tables
 * (`../lib/rlhf/iteration-estimate.ts`). One timing per model and backend; the default GRPO and
 * PPO batches have the same shape, so one timing serves both.
 */
import type { ModelInfo } from '../lib/engine/types';
import { JobCancelledError } from '../lib/engine/errors';
import { DEFAULT_GRPO_CONFIG } from '../lib/rlhf/grpo-config';
import { DEFAULT_PPO_CONFIG } from '../lib/rlhf/ppo-config';
import {
  grpoIterationSeconds,
  largestBatchThatFits,
  ppoIterationSeconds,
  stepBytesAtBatch,
  type LoraTimings,
} from '../lib/rlhf/iteration-estimate';
import { engineState } from './engine.svelte';

/** Prompt length the estimate assumes: the app's prompts are a sentence opening of a few words. */
export const ESTIMATE_PROMPT_TOKENS = 8;

/** A training step's bytes at a trainer's default rows per step, against one backend's budget. */
export interface MemoryFit {
  trainer: 'GRPO' | 'PPO';
  /** Rows in one training step at the trainer's defaults. */
  batch: number;
  bytes: number;
  backend: string;
  budgetBytes: number | null;
  fits: boolean;
  /** The largest batch whose bytes fit the budget (with MEMORY_MARGIN). */
  maxBatch: number;
}

export interface IterationEstimate {
  timings: LoraTimings;
  grpo: number;
  ppo: number;
  /** Per trainer and backend; empty when the timing had no memory measurement. */
  memory: MemoryFit[];
}

/** Rows of one training step at the defaults: GRPO's whole batch; PPO's mini-batch. */
export const STEP_ROWS = {
  GRPO: DEFAULT_GRPO_CONFIG.batchSize,
  PPO: Math.ceil(DEFAULT_PPO_CONFIG.batchSize / DEFAULT_PPO_CONFIG.miniBatches),
};

/** The memory lines of `t`: each trainer's default step against each budget the timing carried. */
export function memoryFits(t: LoraTimings): MemoryFit[] {
  const m = t.memory;
  if (!m) return [];
  const out: MemoryFit[] = [];
  for (const trainer of ['GRPO', 'PPO'] as const)
    for (const b of m.budgets) {
      const batch = STEP_ROWS[trainer];
      const bytes = stepBytesAtBatch(m, t.rows, batch);
      const maxBatch = largestBatchThatFits(m, t.rows, b.totalBytes);
      out.push({
        trainer,
        batch,
        bytes,
        backend: b.name,
        budgetBytes: b.totalBytes,
        fits: maxBatch >= batch,
        maxBatch,
      });
    }
  return out;
}

let jobCounter = 0;

export class LoraTimingState {
  /** Timings by model and backend (see {@link keyOf}). */
  timings = $state.raw<Record<string, LoraTimings>>({});
  /** The model key being timed, its job and progress (0–1). */
  running = $state<{ key: string; jobId: string } | null>(null);
  progress = $state(0);
  error = $state<{ key: string; message: string } | null>(null);

  keyOf(info: ModelInfo): string {
    const b = engineState.info;
    return `${info.name}|${info.numParams}|${b?.name ?? '?'} ${b?.adapter ?? ''}`;
  }

  estimate(info: ModelInfo): IterationEstimate | null {
    const timings = this.timings[this.keyOf(info)];
    if (!timings) return null;
    return {
      timings,
      grpo: grpoIterationSeconds(timings, DEFAULT_GRPO_CONFIG),
      ppo: ppoIterationSeconds(timings, DEFAULT_PPO_CONFIG),
      memory: memoryFits(timings),
    };
  }

  /** Time the loaded model (`info`) at the GRPO defaults' shape; errors are shown on the card. */
  async measure(info: ModelInfo): Promise<void> {
    if (this.running || !engineState.ready) return;
    const key = this.keyOf(info);
    const jobId = `lora-timing-${++jobCounter}`;
    this.running = { key, jobId };
    this.progress = 0;
    this.error = null;
    try {
      const t = await engineState.engine.timeLoraIteration(
        jobId,
        {
          batch: DEFAULT_GRPO_CONFIG.batchSize,
          promptTokens: ESTIMATE_PROMPT_TOKENS,
          newTokens: DEFAULT_GRPO_CONFIG.maxCompletionLength,
          temperature: DEFAULT_GRPO_CONFIG.temperature,
        },
        (p) => (this.progress = p.step / p.total),
      );
      this.timings = { ...this.timings, [key]: t };
    } catch (e) {
      if (!(e instanceof JobCancelledError)) this.error = { key, message: (e as Error).message };
    } finally {
      this.running = null;
    }
  }

  cancel(): void {
    if (this.running) void engineState.engine.cancel(this.running.jobId).catch(() => false);
  }
}

export const loraTimingState = new LoraTimingState();
