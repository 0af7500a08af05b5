/**
 * The tab's reward model as a Hugging Face `GPT2ForSequenceClassification`, for the hand-off
 * bundle (`reward_model/`), and the TRL `trl grpo` / `trl rloo` configs that train against it.
 *
 * What HF's class computes (transformers/models/gpt2/modeling_gpt2.py, `GPT2ForSequenceClassification
 * .forward`, since huggingface/transformers#35911, v4.49):
 *
 *   h      = GPT2Model(input_ids)            [B, T, C]   (after the final LayerNorm ln_f)
 *   logits = h @ score.weightᵀ               [B, T, 1]   (nn.Linear(n_embd, num_labels, bias=False))
 *   last   = argmax_t(t · [input_ids[t] ≠ pad_token_id])   the rightmost non-pad token
 *   score  = logits[b, last_b]
 *
 * What the tab's reward model computes (src/lib/rlhf/reward-model.ts): on ids
 * `[eot] + prompt + response`, `r = w · pool(h) + b`, then the normalised reward
 * `gain · r + bias` that PPO / GRPO / RLOO use. `pool` is the last real token ('last', as HF) or
 * the mean over all real tokens ('mean', the Reward page's default).
 *
 * Folding (exact up to float32 rounding): HF has no `score.bias` and no normalisation, but
 * ln_f's output is `γ ⊙ x̂ + β`, and β is a constant input of the head: with `w' = gain · w` and
 * `β' = β + δ`, `δ = c · w' / |w'|²`, `c = gain · b + bias`, we get
 * `w' · (γ ⊙ x̂ + β') = gain · (w · h + b) + bias` at every position. ln_f feeds nothing but the
 * score in `GPT2ForSequenceClassification` (no LM head), so nothing else changes. HF's logit is
 * then the tab's normalised reward.
 *
 * Pooling: the rightmost non-pad token. `pad_token_id` is `<|endoftext|>`, which also starts every
 * text in the tab: it is not the rightmost token of any text with at least one real token, so HF
 * picks the last real token under right or left padding. 'mean' pooling has no counterpart in
 * `GPT2ForSequenceClassification`: such a model is still exported (HF loads it and reads the last
 * token), and the README, the config's `rlhf_playground` block and the panel say that its HF
 * scores differ from the tab's; scripts/golden/check_handoff.py measures by how much.
 *
 * A Llama-family reward model is exported as `LlamaForSequenceClassification`
 * (transformers/models/llama/modeling_llama.py: `model = LlamaModel`, `score = nn.Linear(hidden,
 * num_labels, bias=False)`, the same rightmost-non-pad pooling): `model.*` trunk tensors with
 * nn.Linear's [out, in] layout, `score.weight = gain · w`. Its final norm is an RMSNorm, which has
 * no bias to fold the constant `c = gain · b + bias` into, so HF's logit is the tab's normalised
 * reward minus c: c is written as `rlhf_playground.score_offset`, `rlhf_reward.py` adds it back
 * (and the TRL configs use it), and the README says so. A constant does not change GRPO's or
 * RLOO's advantages, nor any ranking of texts.
 *
 * Kept plain (no TF.js): the page builds the bundle from the saved reward model's weights.
 */
import type { GPTConfig } from '../model/config';
import { hfTrunkShapes, isHfTransposedName, parameterShapes } from '../model/shapes';
import type { RewardModelState } from '../rlhf/reward-model';
import type { GrpoConfig } from '../rlhf/grpo-config';
import type { RlooConfig } from '../rlhf/rloo-config';

export class RewardHandoffError extends Error {
  override name = 'RewardHandoffError';
}

/** The saved reward model handed to the bundle (`SavedRewardModel` of the Reward page). */
export interface HandoffRewardModel {
  name: string;
  state: Pick<RewardModelState, 'config' | 'pooling' | 'normalisation' | 'weights' | 'mode'>;
}

/** The result: HF files' contents and what the README and panel say about them. */
export interface HfRewardExport {
  /** `reward_model/config.json` as an object. */
  config: Record<string, unknown>;
  /** `reward_model/model.safetensors`. */
  weights: Uint8Array;
  pooling: 'last' | 'mean';
  /** HF's score equals the tab's normalised reward (pooling 'last', and no `offset`). */
  exact: boolean;
  /** The constant gain · b + bias: folded into ln_f.bias (GPT-2), or `offset` (Llama). */
  foldedBias: number;
  /** Added to HF's logit to give the tab's normalised reward: 0 for GPT-2 (folded), gain · b + bias
   *  for Llama (RMSNorm has no bias to fold it into); config.json `rlhf_playground.score_offset`. */
  offset: number;
  /** `GPT2ForSequenceClassification` or `LlamaForSequenceClassification`. */
  className: string;
}

export const SCORE_WEIGHT = 'score.weight';
const SCORE_BIAS = 'score.bias';
const LN_F_BIAS = 'transformer.ln_f.bias';

/**
 * Tensor names and shapes of `GPT2ForSequenceClassification(config).state_dict()` (no causal-mask
 * buffers) or `LlamaForSequenceClassification(config).state_dict()` (nn.Linear [out, in]): the
 * trunk as HF stores it (model/shapes.ts, no LM head) plus `score.weight` [1, C].
 */
export function seqClsShapes(c: GPTConfig): Map<string, number[]> {
  const s = hfTrunkShapes(c);
  s.set(SCORE_WEIGHT, [1, c.nEmbd]);
  return s;
}

/** `[rows, cols]` row-major → its transpose. */
function transpose(data: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}

/** float32 safetensors (https://github.com/huggingface/safetensors, "format"); header padded to 8 bytes with spaces. */
function safetensorsF32(tensors: Map<string, { shape: number[]; data: Float32Array }>, meta: Record<string, string>) {
  const header: Record<string, unknown> = { __metadata__: meta };
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const hlen = Math.ceil(raw.length / 8) * 8;
  const out = new Uint8Array(8 + hlen + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hlen), true);
  out.fill(0x20, 8, 8 + hlen);
  out.set(raw, 8);
  let pos = 8 + hlen;
  for (const t of tensors.values()) {
    for (let i = 0; i < t.data.length; i++) dv.setFloat32(pos + 4 * i, t.data[i], true);
    pos += 4 * t.data.length;
  }
  return out;
}

/**
 * The reward model as `GPT2ForSequenceClassification` or (a Llama-family trunk)
 * `LlamaForSequenceClassification` files. `eotId` is the tokenizer's end-of-text token (pad, BOS
 * and EOS); `vocabSize` the bundle's tokenizer size, which the reward model must share. Throws
 * `RewardHandoffError` with a message a user can act on.
 */
export function rewardModelToHf(rm: HandoffRewardModel, eotId: number, vocabSize: number): HfRewardExport {
  const { config: c, weights, normalisation } = rm.state;
  if (c.vocabSize !== vocabSize)
    throw new RewardHandoffError(
      `The reward model "${rm.name}" was trained on a model with ${c.vocabSize} tokens, but the loaded model has ${vocabSize}: load the model it was trained on, or train a reward model on this one.`,
    );
  const llama = c.arch === 'llama';
  const shapes = seqClsShapes(c);
  // The shapes as the tab holds them (Llama's projections [in, out]).
  const held = parameterShapes(c);
  held.set(SCORE_WEIGHT, [1, c.nEmbd]);
  const C = c.nEmbd;
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  for (const [name, shape] of shapes) {
    const w = weights.get(name);
    if (!w || w.length !== size(shape))
      throw new RewardHandoffError(
        `The reward model "${rm.name}" lacks ${name} (or it has the wrong size): retrain it on the Reward page.`,
      );
  }
  const b = weights.get(SCORE_BIAS)?.[0] ?? 0;
  const gain = normalisation?.gain ?? 1;
  const nbias = normalisation?.bias ?? 0;
  if (![b, gain, nbias].every(Number.isFinite))
    throw new RewardHandoffError(`The reward model "${rm.name}" has a non-finite head bias or normalisation.`);

  // w' = gain · w (float64 maths, stored as float32); the constant c = gain · b + bias.
  const w = weights.get(SCORE_WEIGHT)!;
  const w2f = Float32Array.from(w, (x) => gain * x);
  const cst = gain * b + nbias;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  let offset = 0;
  if (llama) {
    // RMSNorm has no bias: the constant stays outside the weights, as `score_offset`.
    offset = cst;
    for (const [name, shape] of shapes) {
      const src = weights.get(name)!;
      const h = held.get(name)!;
      const data =
        name === SCORE_WEIGHT ? w2f : isHfTransposedName(c, name) ? transpose(src, h[0], h[1]) : Float32Array.from(src);
      tensors.set(name, { shape, data });
    }
  } else {
    // δ along w' so that w' · δ = c, added to ln_f.bias (a constant input of the head).
    const norm2 = w2f.reduce((a, x) => a + x * x, 0);
    if (norm2 === 0 && cst !== 0)
      throw new RewardHandoffError(`The reward model "${rm.name}" has an all-zero head: its bias cannot be folded.`);
    const beta = weights.get(LN_F_BIAS)!;
    const beta2 = new Float32Array(C);
    for (let i = 0; i < C; i++) beta2[i] = beta[i] + (norm2 === 0 ? 0 : (cst * w2f[i]) / norm2);
    for (const [name, shape] of shapes) {
      const data = name === LN_F_BIAS ? beta2 : name === SCORE_WEIGHT ? w2f : weights.get(name)!;
      tensors.set(name, { shape, data: data instanceof Float32Array ? data : Float32Array.from(data) });
    }
  }
  const pooling = rm.state.pooling ?? 'last';
  const exact = pooling === 'last' && offset === 0;
  const playground = {
    name: rm.name,
    mode: rm.state.mode,
    pooling,
    exact,
    normalisation: { gain, bias: nbias },
    score_bias: b,
    score_offset: offset,
    folded: llama
      ? "score.weight = gain · w; the tab's reward = HF logit + score_offset, score_offset = gain · b + bias (RMSNorm has no bias to fold it into)"
      : 'score.weight = gain · w; ln_f.bias += (gain · b + bias) · score.weight / |score.weight|²',
    input: llama
      ? 'end-of-text token + prompt + response (the tab prepends it to every text)'
      : '<|endoftext|> + prompt + response (the tab prepends <|endoftext|> to every text)',
  };
  const head = {
    pad_token_id: eotId,
    num_labels: 1,
    id2label: { '0': 'LABEL_0' },
    label2id: { LABEL_0: 0 },
    torch_dtype: 'float32',
    nanogpt: { ...c },
    rlhf_playground: playground,
  };
  const config: Record<string, unknown> = llama
    ? {
        model_type: 'llama',
        architectures: ['LlamaForSequenceClassification'],
        vocab_size: c.vocabSize,
        hidden_size: c.nEmbd,
        intermediate_size: c.intermediateSize,
        num_hidden_layers: c.nLayer,
        num_attention_heads: c.nHead,
        num_key_value_heads: c.nKvHead ?? c.nHead,
        head_dim: c.nEmbd / c.nHead,
        hidden_act: 'silu',
        max_position_embeddings: c.blockSize,
        rms_norm_eps: c.layerNormEps,
        rope_theta: c.ropeTheta ?? 10000,
        rope_scaling: null,
        attention_bias: false,
        attention_dropout: 0,
        mlp_bias: false,
        pretraining_tp: 1,
        // The sequence-classification model has no LM head; tying is irrelevant to its tensors.
        tie_word_embeddings: c.tieWordEmbeddings === true,
        initializer_range: 0.02,
        bos_token_id: eotId,
        eos_token_id: eotId,
        use_cache: true,
        ...head,
      }
    : {
        model_type: 'gpt2',
        architectures: ['GPT2ForSequenceClassification'],
        vocab_size: c.vocabSize,
        n_positions: c.blockSize,
        n_ctx: c.blockSize,
        n_embd: c.nEmbd,
        n_layer: c.nLayer,
        n_head: c.nHead,
        n_inner: null,
        activation_function: 'gelu_new',
        layer_norm_epsilon: c.layerNormEps,
        initializer_range: 0.02,
        resid_pdrop: 0,
        embd_pdrop: 0,
        attn_pdrop: 0,
        summary_dropout_prob: 0,
        bos_token_id: eotId,
        eos_token_id: eotId,
        ...head,
      };
  const cls = llama ? 'LlamaForSequenceClassification' : 'GPT2ForSequenceClassification';
  const bytes = safetensorsF32(tensors, {
    format: 'pt',
    source: `rlhf-playground reward model "${rm.name}" (${pooling} pooling) as ${cls}`,
  });
  return { config, weights: bytes, pooling, exact, foldedBias: cst, offset, className: cls };
}

/**
 * `rlhf_reward.py` at the bundle's root: the reward model as a TRL reward function
 * (`reward_funcs: [rlhf_reward.reward_model]`, a dotted path TRL's scripts import from the working
 * folder), pooling as the tab does, read from config.json's `rlhf_playground.pooling`. Exact for
 * 'mean' pooling, which `GPT2ForSequenceClassification` itself cannot do. `pooled_scores` takes any
 * object with `.transformer(input_ids=, attention_mask=).last_hidden_state` and `.score`, so
 * scripts/golden/check_handoff.py runs this very code on its own forward pass.
 */
export const RLHF_REWARD_PY = `"""The RLHF Playground reward model as a TRL reward function, pooling as the tab does.

    # configs/trl_grpo.yaml / trl_rloo.yaml, run from the bundle's folder:
    reward_funcs:
      - rlhf_reward.reward_model

GPT2ForSequenceClassification / LlamaForSequenceClassification read the last non-pad token; a
reward model trained with "mean" pooling averages the per-token scores over every real token instead
(the start token and the prompt included). The per-token score is the class's own:
score(base_model(ids).last_hidden_state), with the normalisation in the weights and, for GPT-2, the
head bias folded in too; a Llama model's RMSNorm has no bias, so its constant is config.json's
rlhf_playground.score_offset, added here (README).
"""
import json
import os

_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reward_model")
_loaded = {}


def _playground(path):
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        return json.load(f).get("rlhf_playground") or {}


def pooling(path=_HERE):
    return _playground(path).get("pooling", "last")


def offset(path=_HERE):
    """Added to the class's logit to give the tab's reward (0 when folded into the weights)."""
    return float(_playground(path).get("score_offset", 0.0))


def pooled_scores(model, input_ids, attention_mask, how, add=0.0):
    """Rewards [B] of right-padded rows: the mean over real tokens ("mean") or the last real token
    ("last"), plus add (config.json's score_offset)."""
    import torch

    with torch.no_grad():
        hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        per_token = model.score(hidden)[..., 0]  # [B, T]
    mask = attention_mask.to(per_token.dtype)
    if how == "mean":
        return (per_token * mask).sum(-1) / mask.sum(-1) + add
    last = attention_mask.sum(-1) - 1
    return per_token[torch.arange(per_token.shape[0]), last] + add


def _load(path=_HERE):
    if path not in _loaded:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).eval()
        _loaded[path] = (model, AutoTokenizer.from_pretrained(path), pooling(path), offset(path))
    return _loaded[path]


def reward_model(prompts, completions, **kwargs):
    """TRL's reward-function shape: one float per completion, the tab's normalised reward."""
    model, tok, how, add = _load()
    enc = tok([p + c for p, c in zip(prompts, completions)], return_tensors="pt", padding=True,
              padding_side="right", add_special_tokens=False)
    device = next(model.parameters()).device
    scores = pooled_scores(model, enc["input_ids"].to(device), enc["attention_mask"].to(device), how, add)
    return scores.float().cpu().tolist()
`;

/** One `{"prompt": …}` JSON line per distinct prompt, each starting with `<|endoftext|>` as the tab's texts do. */
export function promptsJsonl(prompts: readonly string[], eot: string): string {
  const seen = new Set<string>();
  let out = '';
  for (const p of prompts) {
    // The tab holds back trailing spaces of a prompt (BpeTokenizer.encodePrompt); so do we.
    const text = eot + p.replace(/[ \t]+$/, '');
    if (seen.has(text)) continue;
    seen.add(text);
    out += JSON.stringify({ prompt: text }) + '\n';
  }
  return out;
}

/**
 * A number as YAML 1.1 (PyYAML, which TRL's parser uses) reads it as a float: `1e-7` alone is a
 * string there, `1.0e-7` a float.
 */
export function yamlNumber(x: number): string {
  const s = String(x);
  return /e/i.test(s) && !s.includes('.') ? s.replace(/e/i, '.0e') : s;
}

/** The settings both configs share, in TRL's names (`GRPOConfig` / `RLOOConfig`). */
function groupYaml(c: GrpoConfig | RlooConfig): string {
  const n = yamlNumber;
  return `num_generations: ${c.numGenerations}
# The tab's batchSize (completions per iteration) on one device, one step per generation batch.
per_device_train_batch_size: ${c.batchSize}
gradient_accumulation_steps: 1
max_completion_length: ${c.maxCompletionLength}
temperature: ${n(c.temperature)}
beta: ${n(c.beta)}
epsilon: ${n(c.epsilon)}
${c.epsilonHigh === null ? '# epsilon_high: off in the tab (= epsilon)' : `epsilon_high: ${n(c.epsilonHigh)}`}
num_iterations: ${c.numIterations}
mask_truncated_completions: ${c.maskTruncatedCompletions}
learning_rate: ${n(c.learningRate)}
max_grad_norm: ${n(c.maxGradNorm)}
seed: ${c.seed}`;
}

function groupHeader(what: 'grpo' | 'rloo', blockSize: number, exact: boolean): string {
  const Trainer = what === 'grpo' ? 'GRPOTrainer' : 'RLOOTrainer';
  return `# TRL ${what.toUpperCase()} against the tab's reward model.  Run from the bundle's folder:
#   trl ${what} --config configs/trl_${what}.yaml
# Fields: trl ${what === 'grpo' ? 'GRPOScriptArguments, GRPOConfig' : 'RLOOScriptArguments, RLOOConfig'}, ModelConfig (trl/scripts/${what}.py).
${
  exact
    ? `# reward_model_name_or_path becomes the ${Trainer}'s reward_funcs: AutoModelForSequenceClassification
# (num_labels=1) loads ./reward_model; its logit on prompt + completion is the tab's normalised reward.`
    : `# The HF class alone does not give the tab's reward (mean pooling, which it cannot do, or a Llama
# model's score_offset, README): rlhf_reward.py loads ./reward_model and scores as the tab does,
# as a reward function.`
}
# Settings are the tab's ${what.toUpperCase()} settings table at download time, in TRL's names.
model_name_or_path: ./model
${exact ? 'reward_model_name_or_path: ./reward_model' : 'reward_funcs:\n  - rlhf_reward.reward_model'}
# One {"prompt": "<|endoftext|>…"} per line: the Train page's prompts, each starting with the start token the tab uses.
dataset_name: ./prompts
dataset_train_split: train
output_dir: ./out/${what}-policy
# The model has learned positions for ${blockSize} tokens: prompt + completion must fit.
`;
}

/** `configs/trl_grpo.yaml`: the tab's GRPO settings with TRL's names. */
export function trlGrpoYaml(c: GrpoConfig, blockSize: number, exact: boolean): string {
  return `${groupHeader('grpo', blockSize, exact)}${groupYaml(c)}
scale_rewards: ${c.scaleRewards}
loss_type: ${c.lossType}
# 100 generation batches, as a 100-iteration run in the tab.
max_steps: 100
logging_steps: 1
save_strategy: "no"
report_to: none
`;
}

/** `configs/trl_rloo.yaml`: the tab's RLOO settings with TRL's names. */
export function trlRlooYaml(c: RlooConfig, blockSize: number, exact: boolean): string {
  return `${groupHeader('rloo', blockSize, exact)}${groupYaml(c)}
normalize_advantages: ${c.normalizeAdvantages}
# 100 generation batches, as a 100-iteration run in the tab.
max_steps: 100
logging_steps: 1
save_strategy: "no"
report_to: none
`;
}
