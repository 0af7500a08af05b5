/**
 * The settings rows of the trainers that sample while they train (GRPO, RLOO: grpo-config.ts,
 * rloo-config.ts; online DPO: online-dpo-config.ts) share their common rows
 * (online-rows.ts). Sharing must not change a name, label, kind, range, default, live flag or
 * help text: each table's rows, LoRA's aside (LORA_ROWS, owned by model/lora-config.ts), are
 * written out below as they were before the rows were shared.
 */
import { describe, expect, it } from 'vitest';
import { GRPO_SETTINGS } from '../../src/lib/rlhf/grpo-config';
import { RLOO_SETTINGS } from '../../src/lib/rlhf/rloo-config';
import { ONLINE_DPO_SETTINGS } from '../../src/lib/rlhf/online-dpo-config';
import { LORA_ROWS } from '../../src/lib/model/lora-config';

/** One row in words: key, kind, range, flags, default, label, then help; any other property as JSON. */
function describeRow(key: string, spec: object): string {
  const { kind, min, max, minExclusive, maxExclusive, int, choices, onValue, live, label, url, help, ...rest } =
    spec as Record<string, unknown>;
  const d = (spec as { default: unknown }).default;
  delete rest.default;
  const parts = [`${key}: ${kind}`];
  if (min !== undefined || max !== undefined)
    parts.push(`${minExclusive ? '(' : '['}${min}, ${max}${maxExclusive ? ')' : ']'}`);
  if (int) parts.push('int');
  if (choices) parts.push(`choices ${(choices as string[]).join('|')}`);
  if (onValue !== undefined) parts.push(`on ${onValue}`);
  parts.push(`default ${typeof d === 'function' ? 'computed' : JSON.stringify(d)}`);
  if (live) parts.push('live');
  if (label !== undefined) parts.push(`label "${label}"`);
  if (url !== undefined) parts.push(`url ${JSON.stringify(url)}`);
  if (Object.keys(rest).length) parts.push(`other ${JSON.stringify(rest)}`);
  return `${parts.join(', ')} — ${help}`;
}

function rows(table: { keys: readonly string[]; fields: object }): string[] {
  const fields = table.fields as Record<string, object>;
  return table.keys.filter((k) => !(k in LORA_ROWS)).map((k) => describeRow(k, fields[k]));
}

function loraRowsAreShared(table: { keys: readonly string[]; fields: object }): void {
  const fields = table.fields as Record<string, object>;
  for (const k of Object.keys(LORA_ROWS)) expect(fields[k], k).toBe(LORA_ROWS[k as keyof typeof LORA_ROWS]);
}

/** GRPO's rows before sharing (LoRA's aside). */
const GRPO_ROWS = [
  'numGenerations: number, [2, 64], int, default 4, live, label "generations per prompt" — G: completions sampled per prompt; each is judged against the others of its group. TRL default 8; 4 here so that a batch of 16 covers 4 prompts.',
  'batchSize: number, [2, 1024], int, default 16, live, label "batch size" — Completions per iteration (batchSize / G prompts, each sampled G times); a multiple of numGenerations. 16 = the samples of one PPO iteration here.',
  "maxCompletionLength: number, [1, 4096], int, default 24, live, label \"max completion length\" — Longest completion in tokens; prompt + completion must fit the model context. 24 = PPO's maxNewTokens here (TRL's 256 exceeds the bundled model's 64-token context).",
  "temperature: number, (0, 10], default 0.7, live — Sampling temperature; the ratio, KL and entropy use log-probabilities of logits / temperature. 0.7 = PPO's default here, so runs compare on the same sampling (TRL: 1.0).",
  'beta: number, [0, 100], default 0.04, live, label "β" — β: weight of the KL to the frozen reference; 0 builds no reference model (less memory, faster). 0.04 = DeepSeekMath\'s value and TRL\'s default until 0.18 (TRL now defaults to 0): a small model drifts fast without a leash.',
  'epsilon: number, (0, 10], default 0.2, live, label "ε" — ε: the ratio is clipped below at 1 − ε (and above at 1 + ε unless epsilonHigh is set). TRL default 0.2.',
  'epsilonHigh: number-or-off, (0, 10], on 0.28, default null, live, label "ε high" — Upper clip 1 + ε_high (DAPO\'s clip-higher; the paper uses 0.28); off = ε, as TRL\'s default None.',
  'numIterations: number, [1, 100], int, default 1, live, label "iterations per batch" — μ: gradient steps over each generated batch (TRL num_iterations, default 1; with 1 the ratio stays 1 and nothing is clipped).',
  'maskTruncatedCompletions: boolean, default false, live, label "mask truncated completions" — Leave completions that never emit end-of-text out of the loss (DAPO recommends it). TRL default off.',
  'learningRate: number, (0, 1], default 0.00005, live, label "learning rate" — Adam learning rate. 5e-5 = PPO\'s here, measured: 1.2–1.9 base std of lift at 2–7 nats in 100 iterations; 2e-4 ran to 33 nats (TRL\'s 1e-6 is for billion-parameter models).',
  'maxGradNorm: number, (0, 1000000], default 1, live, label "max gradient norm" — Gradients are scaled down when their global norm exceeds this (TrainingArguments max_grad_norm, default 1).',
  'seed: number, [0, 4294967295], int, default 0 — Seed of prompt order and sampling: same seed and backend, same run. Fixed once a run starts.',
  "scaleRewards: choice, choices group|batch|none, default \"group\", live, label \"scale rewards\" — Divide r − mean(group) by the std of the group ('group', TRL default), of the whole batch ('batch') or not at all ('none', Dr. GRPO).",
  "lossType: choice, choices grpo|bnpo|dr_grpo|dapo, default \"dapo\", live, label \"loss type\" — How token losses are averaged: 'grpo' per sequence then over sequences (length-biased); 'bnpo' over the batch's unmasked tokens; 'dr_grpo' over batch × maxCompletionLength; 'dapo' (TRL default) over all completion tokens of the batch.",
];

/** RLOO's rows before sharing (LoRA's aside). */
const RLOO_ROWS = [
  'numGenerations: number, [2, 64], int, default 4, live, label "generations per prompt" — G: completions sampled per prompt; each is judged against the others of its group. TRL default 2; 4 = the k of Ahmadian et al. 2024, a steadier leave-one-out baseline.',
  'batchSize: number, [2, 1024], int, default 16, live, label "batch size" — Completions per iteration (batchSize / G prompts, each sampled G times); a multiple of numGenerations. 16 = the samples of one PPO iteration here.',
  "maxCompletionLength: number, [1, 4096], int, default 24, live, label \"max completion length\" — Longest completion in tokens; prompt + completion must fit the model context. 24 = PPO's maxNewTokens here (TRL's 256 exceeds the bundled model's 64-token context).",
  "temperature: number, (0, 10], default 0.7, live — Sampling temperature; the ratio, KL and entropy use log-probabilities of logits / temperature. 0.7 = PPO's default here, so runs compare on the same sampling (TRL: 1.0).",
  'beta: number, [0, 100], default 0.05, live, label "β" — β: weight of the KL to the frozen reference; 0 builds no reference model (less memory, faster). TRL default 0.05; β times the KL summed over the completion is subtracted from its reward.',
  'epsilon: number, (0, 10], default 0.2, live, label "ε" — ε: the ratio is clipped below at 1 − ε (and above at 1 + ε unless epsilonHigh is set). TRL default 0.2.',
  'epsilonHigh: number-or-off, (0, 10], on 0.28, default null, live, label "ε high" — Upper clip 1 + ε_high (DAPO\'s clip-higher; the paper uses 0.28); off = ε, as TRL\'s default None.',
  'numIterations: number, [1, 100], int, default 1, live, label "iterations per batch" — μ: gradient steps over each generated batch (TRL num_iterations, default 1; with 1 the ratio stays 1 and nothing is clipped).',
  'maskTruncatedCompletions: boolean, default false, live, label "mask truncated completions" — Leave completions that never emit end-of-text out of the loss (DAPO recommends it). TRL default off.',
  'learningRate: number, (0, 1], default 0.00005, live, label "learning rate" — Adam learning rate. 5e-5 = PPO\'s here, measured: 1.2–1.9 base std of lift at 2–7 nats in 100 iterations; 2e-4 ran to 33 nats (TRL\'s 1e-6 is for billion-parameter models).',
  'maxGradNorm: number, (0, 1000000], default 1, live, label "max gradient norm" — Gradients are scaled down when their global norm exceeds this (TrainingArguments max_grad_norm, default 1).',
  'seed: number, [0, 4294967295], int, default 0 — Seed of prompt order and sampling: same seed and backend, same run. Fixed once a run starts.',
  'normalizeAdvantages: boolean, default false, live, label "normalize advantages (REINFORCE++)" — Whiten the leave-one-out advantages over the whole batch, (A − mean) / (std + 1e-4), as REINFORCE++ does. TRL default off.',
];

/** online DPO's rows before sharing (LoRA's aside). */
const ODPO_ROWS = [
  'batchSize: number, [1, 512], int, default 8, live, label "prompts per iteration" — Prompts per iteration (TRL per_device_train_batch_size); each is sampled twice, so 8 prompts = the 16 completions of a PPO or GRPO iteration here.',
  "maxNewTokens: number, [1, 4096], int, default 24, live, label \"max new tokens\" — Longest completion in tokens; prompt + completion must fit the model context. 24 = PPO's here (TRL's 64 is the bundled model's whole context).",
  "temperature: number, (0, 10], default 0.7, live — Sampling temperature; log-probabilities in the loss are of logits / temperature. 0.7 = PPO's and GRPO's here, so runs compare on the same sampling (TRL: 0.9).",
  'beta: number, (0, 100], default 0.1, live, label "β" — β: strength of the implicit KL leash to the frozen reference, as in DPO (TRL default 0.1). Larger stays closer.',
  "lossType: choice, choices sigmoid|ipo, default \"sigmoid\", live, label \"loss type\" — 'sigmoid' is DPO's −log σ(β·margin) (TRL default); 'ipo' regresses the margin to 1/(2β) (Azar et al. 2023). Both on summed completion log-probabilities, as TRL's online trainer does.",
  'missingEosPenalty: number-or-off, [0, 1000000], on 1, default 1, live, label "missing EOS penalty" — Subtracted from the score of a completion that never emits end-of-text before the pair is judged (TRL missing_eos_penalty; TRL: off); pushes the policy to finish its answers. 1 (about one std of a normalised reward model score) cut the KL 2–3× at the same lift on the issue-6 task here.',
  'learningRate: number, (0, 1], default 0.0001, live, label "learning rate" — Adam learning rate. 1e-4 = offline DPO\'s here (TRL\'s 5e-7 is for billion-parameter models).',
  'maxGradNorm: number, (0, 1000000], default 1, live, label "max gradient norm" — Gradients are scaled down when their global norm exceeds this (TrainingArguments max_grad_norm, default 1).',
  'seed: number, [0, 4294967295], int, default 0 — Seed of prompt order and sampling: same seed and backend, same run. Fixed once a run starts.',
];

describe("online trainers' settings rows", () => {
  it('GRPO: every row as before', () => {
    expect(rows(GRPO_SETTINGS)).toEqual(GRPO_ROWS);
    loraRowsAreShared(GRPO_SETTINGS);
  });
  it('RLOO: every row as before', () => {
    expect(rows(RLOO_SETTINGS)).toEqual(RLOO_ROWS);
    loraRowsAreShared(RLOO_SETTINGS);
  });
  it('online DPO: every row as before', () => {
    expect(rows(ONLINE_DPO_SETTINGS)).toEqual(ODPO_ROWS);
  });
});
