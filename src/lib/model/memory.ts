/**
 * What a model needs in memory for each thing the app does with it, with full fine-tuning and
 * with LoRA (Hu et al. 2021, https://arxiv.org/abs/2106.09685), and whether that fits each
 * backend: shown before a model is loaded, from the plan of ./plan.ts.
 *
 * Counted in copies of the float32 weights W (every backend keeps weights as float32), as the
 * trainers build them today (src/lib/rlhf):
 * - every stage keeps the loaded model (1 W);
 * - a trained copy holds its weights, Adam's two moments and its gradients (4 W); PPO and GRPO
 *   also snapshot the weights and moments before each update to roll back a diverged one (+3 W);
 * - PPO (ppo.ts) trains a policy and a value model (clones of the trunk) and keeps a frozen
 *   reference and the reward model: 1 + 7 + 7 + 1 + 1 = 17 W; GRPO (grpo.ts): 1 + 7 + 1 + 1 = 10 W;
 *   SFT / DPO: 1 + 4 + a reference 1 = 6 W; the reward model: 1 + 4 = 5 W.
 * With LoRA the reference is the base with its adapters off and the value and reward heads share
 * the frozen trunk, so the weights are there once and only the adapters A are trained:
 * W + k·A with the same counts on A. A uses PEFT's default target modules per architecture
 * (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`: GPT-2 `c_attn`, Llama `q_proj`, `v_proj`)
 * at rank 8.
 * These are weights-only floors, not the whole story: activations, gradients of the activations
 * and the logits (B × L × vocabulary floats) grow with the batch and are not counted, and with
 * LoRA they dominate. Measured on wasm (scripts/bench/hf-shapes.ts): distilgpt2 GRPO with LoRA,
 * a floor of a few hundred MiB here, peaked at 2863 MiB at 8 rows and ran out of the 4 GB heap at
 * the default 16; SmolLM2-135M ran out at 4 rows. The model card's Measure
 * (`../engine/lora-timing.ts`) measures a LoRA training step's bytes on the loaded model and says
 * which batch fits.
 */
import { archOf, type GPTConfig } from './config';
import { parameterShapes } from './gpt';
import { WASM_HEAP_MAX_BYTES, type BackendLimits, type ModelPlan } from './plan';

const F32 = 4;

/** PEFT's default LoRA targets, by architecture. */
export const LORA_DEFAULT_TARGETS: Record<string, string[]> = {
  gpt2: ['c_attn'],
  llama: ['q_proj', 'v_proj'],
};
export const LORA_DEFAULT_RANK = 8;

/** One thing the app does with the model and what it needs. */
export interface MemoryUse {
  key: string;
  label: string;
  /** How the number is made, in copies of W (weights) and A (adapters); activations are not counted. */
  copies: string;
  bytes: number;
}

/** A backend's budget for the plan's table. */
export interface BackendBudget {
  name: string;
  /** All tensors together; null when the platform does not say. */
  totalBytes: number | null;
}

/** LoRA adapter parameters: rank·(in + out) for each targeted weight matrix. */
export function loraParams(config: GPTConfig, rank = LORA_DEFAULT_RANK, arch = archOf(config)): number {
  const targets = LORA_DEFAULT_TARGETS[arch] ?? [];
  let n = 0;
  for (const [name, shape] of parameterShapes(config)) {
    if (shape.length === 2 && targets.some((t) => name.endsWith(`.${t}.weight`))) n += rank * (shape[0] + shape[1]);
  }
  return n;
}

/** Memory of each use, full fine-tuning and LoRA, from the plan. */
export function memoryUses(plan: ModelPlan, rank = LORA_DEFAULT_RANK): MemoryUse[] {
  const W = plan.weightsBytes;
  const A = loraParams(plan.config, rank) * F32;
  const sample = plan.loadBytes + plan.kvCacheBytes;
  const full = (k: number) => k * W + plan.maskBytes;
  const lora = (k: number) => W + k * A + plan.maskBytes;
  return [
    { key: 'sample', label: 'Load and sample', copies: '2 W while loading + mask + KV cache', bytes: sample },
    { key: 'sft-full', label: 'SFT / DPO, full fine-tuning', copies: '6 W', bytes: full(6) },
    { key: 'reward-full', label: 'Reward model, full', copies: '5 W', bytes: full(5) },
    { key: 'grpo-full', label: 'GRPO, full', copies: '10 W', bytes: full(10) },
    { key: 'ppo-full', label: 'PPO, full', copies: '17 W', bytes: full(17) },
    { key: 'sft-lora', label: `SFT / DPO, LoRA r=${rank} (weights only)`, copies: 'W + 4 A', bytes: lora(4) },
    { key: 'reward-lora', label: `Reward model, LoRA r=${rank} (weights only)`, copies: 'W + 4 A', bytes: lora(4) },
    { key: 'grpo-lora', label: `GRPO, LoRA r=${rank} (weights only)`, copies: 'W + 8 A', bytes: lora(8) },
    { key: 'ppo-lora', label: `PPO, LoRA r=${rank} (weights only)`, copies: 'W + 15 A', bytes: lora(15) },
  ];
}

/** The backends a plan is shown for: the active one, and wasm (the fallback everywhere) when it is another. */
export function budgets(limits: BackendLimits): BackendBudget[] {
  const out: BackendBudget[] = [{ name: limits.backend, totalBytes: limits.maxTotalBytes }];
  if (limits.backend !== 'wasm') out.push({ name: 'wasm', totalBytes: WASM_HEAP_MAX_BYTES });
  return out;
}

/** Whether `bytes` fit a budget (no stated limit: assumed to fit). */
export function fits(bytes: number, budget: BackendBudget): boolean {
  return budget.totalBytes === null || bytes <= budget.totalBytes;
}
