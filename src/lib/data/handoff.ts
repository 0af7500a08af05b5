/**
 * The hand-off bundle: everything needed to continue at scale with TRL or OpenRLHF, as the files
 * of one ZIP.
 *
 *   data/preferences.jsonl      TRL explicit-prompt preference rows {"prompt","chosen","rejected"}
 *                               (https://huggingface.co/docs/trl/dataset_formats, "preference")
 *   model/config.json           GPT2Config (model_type "gpt2", architectures ["GPT2LMHeadModel"]), or for a
 *                               Llama-family model LlamaConfig ("llama", ["LlamaForCausalLM"])
 *   model/model.safetensors     float32, tensor names and layouts as in GPT2LMHeadModel's or
 *                               LlamaForCausalLM's state_dict (Llama projections nn.Linear [out, in])
 *   model/tokenizer.json        Hugging Face `tokenizers` layout (ByteLevel BPE, GPT-2 byte map)
 *   model/vocab.json, merges.txt  the same tokenizer in GPT2Tokenizer's (slow) files
 *   model/tokenizer_config.json, special_tokens_map.json  so AutoTokenizer loads it as GPT-2's
 *   configs/trl_reward.yaml     `trl reward --config …` (trl/scripts/reward.py)
 *   configs/trl_dpo.yaml        `trl dpo --config …` (trl/scripts/dpo.py)
 * With the tab's reward model (handoff-reward.ts), also:
 *   reward_model/…              GPT2ForSequenceClassification or LlamaForSequenceClassification (config,
 *                               safetensors, tokenizer files; handoff-reward.ts)
 *   prompts/prompts.jsonl       the Train page's prompts, {"prompt": "<|endoftext|>…"}
 *   configs/trl_grpo.yaml, trl_rloo.yaml  `trl grpo|rloo --config …` with the tab's GRPO / RLOO
 *                               settings and `reward_model_name_or_path: ./reward_model`
 *   README.md                   the exact commands, also for OpenRLHF's openrlhf.cli.train_rm /
 *                               train_dpo (--prompt_key/--chosen_key/--rejected_key)
 *
 * Flags and field names follow huggingface/trl `trl/scripts/{reward,dpo}.py`, `ScriptArguments`,
 * `RewardConfig`, `DPOConfig`, and OpenRLHF `openrlhf/cli/train_rm.py`, `train_dpo.py`.
 *
 * No preference pairs yet: the bundle still builds (the model alone is worth handing off);
 * `data/preferences.jsonl` is then empty and the README says so first.
 */
import { pairsToTrlPreferenceJsonl } from './jsonl';
import type { TrainingPair } from './records';
import { writeZip, type ZipEntry } from './zip';
import { BpeTokenizer } from '../model/tokenizer';
import {
  promptsJsonl,
  RLHF_REWARD_PY,
  rewardModelToHf,
  trlGrpoYaml,
  trlRlooYaml,
  type HandoffRewardModel,
  type HfRewardExport,
} from './handoff-reward';
import { DEFAULT_GRPO_CONFIG, type GrpoConfig } from '../rlhf/grpo-config';
import { DEFAULT_RLOO_CONFIG, type RlooConfig } from '../rlhf/rloo-config';

/** The config fields the bundle needs (read here: `model/weights.ts` would pull TF.js into the page). */
interface BundleConfig {
  /** GPT2LMHeadModel or LlamaForCausalLM (`model_type` "gpt2" or "llama"). */
  arch: 'gpt2' | 'llama';
  vocabSize: number;
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** Llama: key/value heads (grouped-query attention); GPT-2: nHead. */
  nKvHead: number;
  /** Llama: RoPE base; GPT-2: null (learned positions). */
  ropeTheta: number | null;
  /** Whether lm_head is the token embedding (always for GPT-2). */
  tied: boolean;
}

function bundleConfig(j: Record<string, unknown>): BundleConfig {
  const int = (key: string, fallback?: unknown): number => {
    const v = j[key] ?? fallback;
    if (!Number.isInteger(v) || (v as number) <= 0)
      throw new HandoffError(`config.json: "${key}" must be a positive integer, got ${JSON.stringify(v)}.`);
    return v as number;
  };
  if (j.model_type === 'llama') {
    const nHead = int('num_attention_heads');
    const theta = j.rope_theta ?? 10000;
    if (typeof theta !== 'number' || !(theta > 0))
      throw new HandoffError(`config.json: "rope_theta" must be a positive number, got ${JSON.stringify(theta)}.`);
    return {
      arch: 'llama',
      vocabSize: int('vocab_size'),
      blockSize: int('max_position_embeddings'),
      nLayer: int('num_hidden_layers'),
      nHead,
      nEmbd: int('hidden_size'),
      nKvHead: int('num_key_value_heads', nHead),
      ropeTheta: theta,
      tied: j.tie_word_embeddings === true,
    };
  }
  if (j.model_type !== 'gpt2')
    throw new HandoffError(`config.json has model_type ${JSON.stringify(j.model_type)}, not "gpt2" or "llama".`);
  const nHead = int('n_head');
  return {
    arch: 'gpt2',
    vocabSize: int('vocab_size'),
    blockSize: int('n_positions', j.n_ctx),
    nLayer: int('n_layer'),
    nHead,
    nEmbd: int('n_embd'),
    nKvHead: nHead,
    ropeTheta: null,
    tied: true,
  };
}

export class HandoffError extends Error {
  override name = 'HandoffError';
}

/** The model files the engine hands out (`Engine.exportModel`). */
export interface HandoffModel {
  /** Name of the loaded model, e.g. "tiny-gpt". */
  name: string;
  which: 'base' | 'policy';
  /** PPO iterations behind a policy (null for the base model). */
  iteration: number | null;
  /** Hugging Face `config.json` text (GPT2Config or LlamaConfig; `configToHF`). */
  config: string;
  /** Hugging Face `tokenizers` `tokenizer.json` text. */
  tokenizer: string;
  /** safetensors bytes with GPT2LMHeadModel or LlamaForCausalLM tensor names and layouts (`modelToHfTensors`). */
  weights: ArrayBuffer | Uint8Array;
  /** A LoRA policy as PEFT's adapter files (`weights` is then its base): written to `adapter/`. */
  adapter?: { config: string; weights: ArrayBuffer | Uint8Array };
}

export interface HandoffInput {
  pairs: readonly TrainingPair[];
  /** Feedback records the pairs came from (for the README). */
  recordCount: number;
  model: HandoffModel;
  /** Stamped in the README and on the ZIP entries (default now). */
  createdAt?: Date;
  /** The tab's reward model: adds `reward_model/`, `prompts/` and the GRPO / RLOO configs. */
  rewardModel?: HandoffRewardModel;
  /** Prompts of the GRPO / RLOO configs (the Train page's); with `rewardModel`. */
  prompts?: readonly string[];
  /** The tab's GRPO / RLOO settings (default: the tables' defaults). */
  grpo?: GrpoConfig;
  rloo?: RlooConfig;
}

export const HANDOFF_FILES = [
  'README.md',
  'data/preferences.jsonl',
  'model/config.json',
  'model/model.safetensors',
  'model/tokenizer.json',
  'model/vocab.json',
  'model/merges.txt',
  'model/tokenizer_config.json',
  'model/special_tokens_map.json',
  'configs/trl_reward.yaml',
  'configs/trl_dpo.yaml',
] as const;

/** Appended to `HANDOFF_FILES` when the bundle carries the reward model. */
export const HANDOFF_REWARD_FILES = [
  'reward_model/config.json',
  'reward_model/model.safetensors',
  'reward_model/tokenizer.json',
  'reward_model/vocab.json',
  'reward_model/merges.txt',
  'reward_model/tokenizer_config.json',
  'reward_model/special_tokens_map.json',
  'prompts/prompts.jsonl',
  'configs/trl_grpo.yaml',
  'configs/trl_rloo.yaml',
  'rlhf_reward.py',
] as const;

function parse(text: string, what: string): Record<string, unknown> {
  try {
    const j = JSON.parse(text) as unknown;
    if (typeof j === 'object' && j !== null && !Array.isArray(j)) return j as Record<string, unknown>;
  } catch {
    /* reported below */
  }
  throw new HandoffError(`The model's ${what} is not a JSON object; reload the model and try again.`);
}

/** GPT2Tokenizer's `merges.txt`: a version line, then one "left right" merge per line. */
function mergesTxt(merges: readonly string[]): string {
  return '#version: 0.2\n' + merges.map((m) => m + '\n').join('');
}

function trlRewardYaml(c: BundleConfig): string {
  return `# TRL reward model on the hand-off bundle.  Run from the bundle's folder:
#   trl reward --config configs/trl_reward.yaml
# Fields: trl ScriptArguments, RewardConfig, ModelConfig (trl/scripts/reward.py).
model_name_or_path: ./model
# A local folder: datasets.load_dataset("./data") reads data/preferences.jsonl as the "train" split.
dataset_name: ./data
dataset_train_split: train
output_dir: ./out/reward-model
# The model has learned positions for ${c.blockSize} tokens only: prompt + response must fit.
max_length: ${c.blockSize}
per_device_train_batch_size: 8
num_train_epochs: 3
learning_rate: 1.0e-4
logging_steps: 10
eval_strategy: "no"
save_strategy: epoch
report_to: none
seed: 0
`;
}

function trlDpoYaml(c: BundleConfig): string {
  return `# TRL DPO on the hand-off bundle.  Run from the bundle's folder:
#   trl dpo --config configs/trl_dpo.yaml
# Fields: trl ScriptArguments, DPOConfig, ModelConfig (trl/scripts/dpo.py). Without --use_peft the
# reference model is a second copy of ./model, frozen.
model_name_or_path: ./model
dataset_name: ./data
dataset_train_split: train
output_dir: ./out/dpo-policy
# The model has learned positions for ${c.blockSize} tokens only: prompt + response must fit.
max_length: ${c.blockSize}
beta: 0.1
loss_type: sigmoid
per_device_train_batch_size: 8
num_train_epochs: 3
learning_rate: 1.0e-5
logging_steps: 10
eval_strategy: "no"
save_strategy: epoch
report_to: none
seed: 0
`;
}

/** The README's reward-model section: what the HF class computes, and how far it is the tab's. */
function rewardSection(input: HandoffInput, rm: HfRewardExport, c: BundleConfig, eot: string, prompts: number): string {
  const name = input.rewardModel!.name;
  const cls = rm.className;
  const llama = c.arch === 'llama';
  const offset = rm.offset.toPrecision(6);
  const how = rm.exact
    ? `**Exact.** The tab's model reads the last real token, as \`${cls}\` does, so
HF's logit is the tab's normalised reward on the same ids (checked to ~1e-5 by
\`scripts/golden/check_handoff.py\`).`
    : rm.pooling === 'last'
      ? `**Exact up to a constant.** The tab's model reads the last real token, as \`${cls}\` does, but
the class's RMSNorm has no bias to hold the head's constant (below): HF's logit **+ ${offset}**
(\`rlhf_playground.score_offset\` in \`config.json\`) is the tab's normalised reward on the same ids
(checked to ~1e-5 by \`scripts/golden/check_handoff.py\`). Rankings of texts, and GRPO's and RLOO's
advantages (a reward minus its group's mean), do not see a constant; **\`rlhf_reward.py\`** (bundle root)
adds it, and the GRPO / RLOO configs use it (\`reward_funcs: [rlhf_reward.reward_model]\`).`
      : `> **Not the tab's scores from the HF class alone.** This reward model was trained with **mean
> pooling** (the Reward page's default): the tab averages the head over every token of the text, while
> \`${cls}\` reads the last real token only, and no setting of HF's class averages.
> The weights are the tab's, so HF loads them, but \`model(...).logits\` differ from the tab's scores
> (they rank texts differently). **\`rlhf_reward.py\`** (bundle root) pools as the tab does on the same
> weights, and the GRPO / RLOO configs use it (\`reward_funcs: [rlhf_reward.reward_model]\`); in your own
> code, call \`rlhf_reward.reward_model(prompts, completions)\`. Or train a reward model with pooling
> **last** on the Reward page for a plain HF reward model.`;
  return `## The reward model (\`reward_model/\`)

**${name}** (${input.rewardModel!.state.mode} mode, ${rm.pooling} pooling) as a Hugging Face
\`${cls}\`: \`num_labels: 1\`, \`score.weight\` [1, ${c.nEmbd}] without bias, the trunk
under the same \`${llama ? 'model' : 'transformer'}.*\` names${llama ? ' and [out, in] layouts' : ''} as the policy${llama ? ' (no LM head)' : ''}, \`pad_token_id\` ${String(rm.config.pad_token_id)} (\`${eot}\`).
\`AutoModelForSequenceClassification.from_pretrained("./reward_model")\` loads it;
\`model(**tok(texts, padding=True)).logits[:, 0]\` are the rewards. HF picks the rightmost token that is
not \`pad_token_id\` (transformers ≥ 4.49; older versions took the token before the first pad, which the
leading \`${eot}\` breaks in padded batches).

${how}

${
  llama
    ? `- **Normalisation folded in; the bias kept aside.** The tab's head has a bias \`b\` and its rewards are
  normalised, \`gain · (w·h + b) + bias\` (mean 0, std 1 on base-model samples). HF's head has no bias, so
  the export stores \`score.weight = gain · w\`. A GPT-2 export folds the constant \`gain · b + bias\` into
  the final LayerNorm's bias; Llama's final RMSNorm (\`model.norm\`) has none, so the constant
  (${offset} here) is written to \`config.json\` as \`rlhf_playground.score_offset\`: the tab's reward is
  HF's logit + \`score_offset\`. The raw values are there too (\`normalisation\`, \`score_bias\`).`
    : `- **Bias and normalisation folded in.** The tab's head has a bias \`b\` and its rewards are normalised,
  \`gain · (w·h + b) + bias\` (mean 0, std 1 on base-model samples). HF's head has no bias, so the export
  stores \`score.weight = gain · w\` and adds \`(gain · b + bias) · score.weight / |score.weight|²\` to
  \`transformer.ln_f.bias\`: ln_f's bias is a constant input of the head, so \`score.weight · ln_f(x)\`
  gains exactly that constant (${rm.foldedBias.toPrecision(4)} here). ln_f feeds only the score in this class.
  The raw values are in \`config.json\` under \`rlhf_playground\`.`
}
- **Start token.** The tab scores \`${eot}\` + prompt + response. \`prompts/prompts.jsonl\` starts every
  prompt with \`${eot}\` (the tokenizer turns it into id ${String(rm.config.pad_token_id)}), so TRL's policy and reward
  model see what the tab's do. Without it, scores move a little.
- **Re-tokenised text.** TRL scores \`prompt + completion\` as text, tokenised again; the tab scores the
  sampled ids. They agree unless the policy spelled a word with unusual tokens.
- **Context.** ${c.blockSize} positions: \`${eot}\` + prompt + completion must fit.

Check (PyTorch only): \`python3 scripts/golden/check_handoff.py <this folder>\` also loads
\`reward_model/\` by \`${cls}\`'s names into its own forward pass; with
\`--expect-reward\` it compares scores with the tab's, and runs \`rlhf_reward.py\`'s pooling.

## GRPO and RLOO with TRL (\`configs/trl_grpo.yaml\`, \`configs/trl_rloo.yaml\`)

\`\`\`sh
cd <this folder>
trl grpo --config configs/trl_grpo.yaml     # GRPO policy  -> ./out/grpo-policy
trl rloo --config configs/trl_rloo.yaml     # RLOO policy  -> ./out/rloo-policy
\`\`\`

Both train \`./model\` on the ${prompts} prompt(s) of \`prompts/prompts.jsonl\` (the Train page's) with
${
  rm.exact
    ? `\`reward_model_name_or_path: ./reward_model\`, which TRL's scripts put into the trainer's
\`reward_funcs\``
    : `\`reward_funcs: [rlhf_reward.reward_model]\` (the ${rm.pooling === 'mean' ? 'mean-pooled ' : ''}reward of \`./reward_model\`${rm.offset !== 0 ? ' plus its score_offset' : ''}; TRL's
scripts import it from the folder they run in)`
}. The settings are the tab's GRPO / RLOO settings tables at download time, in TRL's
names: \`numGenerations\` → \`num_generations\`, \`batchSize\` → \`per_device_train_batch_size\` (one device,
\`gradient_accumulation_steps: 1\`), \`maxCompletionLength\` → \`max_completion_length\`, \`temperature\`,
\`beta\`, \`epsilon\`, \`epsilonHigh\` → \`epsilon_high\`, \`numIterations\` → \`num_iterations\`,
\`maskTruncatedCompletions\` → \`mask_truncated_completions\`, \`learningRate\` → \`learning_rate\`,
\`maxGradNorm\` → \`max_grad_norm\`, \`seed\`; GRPO also \`scaleRewards\` → \`scale_rewards\`, \`lossType\` →
\`loss_type\`; RLOO \`normalizeAdvantages\` → \`normalize_advantages\`. Override any of them on the command
line (\`--beta 0.02\`). TRL samples with \`top_k: 0\`, \`top_p: 1\`, as the tab's GRPO / RLOO do.

`;
}
/** The README's section on the model's architecture: a GPT-2. */
function gpt2Section(c: BundleConfig, eot: string): string {
  return `## Is it GPT-2?

Yes, architecturally: pre-LayerNorm decoder blocks, learned position embeddings, GELU (tanh form,
\`gelu_new\`), fused QKV in Conv1D layout (\`[in, out]\`), a final LayerNorm, LM head tied to the
token embedding. The tensor names are exactly those of Hugging Face's \`GPT2LMHeadModel\`
(\`transformer.wte.weight\`, \`transformer.h.0.attn.c_attn.weight\`, …), so
\`GPT2LMHeadModel.from_pretrained("./model")\` (or \`AutoModelForCausalLM\`) loads it. What differs
from OpenAI's GPT-2:

- **Size.** It is tiny, and the context is ${c.blockSize} tokens (\`n_positions\`), not 1024. Keep
  \`max_length\` ≤ ${c.blockSize}; longer inputs index past the position table.
- **Tokenizer.** Same algorithm and byte-to-unicode map as GPT-2 (byte-level BPE, GPT-2's
  pre-tokenisation regex, \`Ġ\` for a leading space), but its own ${c.vocabSize}-token vocabulary
  trained on the app's corpus: ids 0–255 are the 256 bytes in byte order, then one id per merge, then
  \`${eot}\` (id ${c.vocabSize - 1}). It is not GPT-2's 50,257-token vocabulary, so it cannot be swapped for
  \`gpt2\`'s tokenizer, and GPT-2 weights do not fit it.
- **Missing tensors on load.** \`lm_head.weight\` is not stored (tied to \`transformer.wte.weight\`,
  \`tie_word_embeddings: true\`), and neither are the causal-mask buffers \`attn.bias\` /
  \`attn.masked_bias\` that old \`transformers\` versions list; a "newly initialized" warning about
  those is harmless.
- **Start token.** In the app every sequence starts with \`${eot}\`; GPT-2's tokenizer adds no BOS.
  Scores move a little without it; prepend it to prompts if you want the app's numbers.
- **Extra config keys.** \`nanogpt\` (the app's names) is ignored by \`transformers\`.

Check (PyTorch only, no \`transformers\` needed): \`python3 scripts/golden/check_handoff.py <this folder>\`
from the RLHF Playground repository loads these weights by their \`GPT2LMHeadModel\` names into an
independent GPT-2 forward pass and compares logits.

`;
}

/** The README's section on the model's architecture: a Llama-family model (SmolLM2's layout). */
function llamaSection(c: BundleConfig, eot: string): string {
  return `## Is it Llama?

Yes: \`LlamaForCausalLM\` as SmolLM2 uses it. Pre-RMSNorm decoder blocks, rotary position embeddings
(\`rope_theta\` ${c.ropeTheta}, rotate-half form), grouped-query attention
(${c.nHead} query heads, ${c.nKvHead} key/value heads), a SwiGLU MLP (\`silu\`), no biases, a final RMSNorm, and an LM head ${
    c.tied ? 'tied to the token embedding (`tie_word_embeddings: true`)' : 'of its own (`lm_head.weight`)'
  }. The tensor names are exactly those of Hugging Face's \`LlamaForCausalLM\`
(\`model.embed_tokens.weight\`, \`model.layers.0.self_attn.q_proj.weight\`, …) and every projection is in
\`nn.Linear\`'s \`[out, in]\` layout, so \`LlamaForCausalLM.from_pretrained("./model")\` (or
\`AutoModelForCausalLM\`) loads it.

- **Context.** ${c.blockSize} positions (\`max_position_embeddings\`); the tab trained and sampled far shorter
  texts.
- **Tokenizer.** The tokenizer the tab used with this model, written as byte-level BPE files
  (\`GPT2TokenizerFast\`, \`vocab.json\` + \`merges.txt\`), ${c.vocabSize} tokens; \`${eot}\` is BOS, EOS, UNK and
  PAD.${
    c.tied
      ? `
- **Missing tensor on load.** \`lm_head.weight\` is not stored: it is \`model.embed_tokens.weight\`
  (\`tie_word_embeddings: true\`).`
      : ''
  }
- **Start token.** In the app every sequence starts with \`${eot}\`. Scores move a little without it;
  prepend it to prompts if you want the app's numbers.
- **Extra config keys.** \`nanogpt\` (the app's names) is ignored by \`transformers\`.

Check (PyTorch only, no \`transformers\` needed): \`python3 scripts/golden/check_handoff.py <this folder>\`
from the RLHF Playground repository loads these weights by their \`LlamaForCausalLM\` names into an
independent Llama forward pass and compares logits.

`;
}

function readme(
  input: HandoffInput,
  c: BundleConfig,
  eot: string,
  created: Date,
  rows: number,
  rm: HfRewardExport | null,
  prompts: number,
): string {
  const m = input.model;
  const what =
    m.which === 'policy'
      ? `the PPO policy after ${m.iteration ?? '?'} iteration(s), trained from **${m.name}**`
      : `the base model **${m.name}**`;
  const empty =
    rows === 0
      ? `> **No preference pairs yet.** \`data/preferences.jsonl\` is empty: label some samples in the
> Feedback studio (A/B, ranking, rating or edit) or import a file, then download the bundle again.
> The training commands below fail on an empty dataset; the model files are complete.

`
      : '';
  return `# RLHF Playground hand-off bundle

${empty}Made ${created.toISOString()} by RLHF Playground, in the browser; nothing was uploaded.

- **Data:** ${rows} preference pair(s) from ${input.recordCount} feedback record(s), in TRL's
  explicit-prompt preference format, one JSON object per line with exactly the keys
  \`prompt\`, \`chosen\`, \`rejected\`.
- **Model:** ${what}. ${c.nLayer} layers, ${c.nHead} heads, width ${c.nEmbd}, context ${c.blockSize}
  tokens, vocabulary ${c.vocabSize}.${
    m.adapter
      ? `
- **LoRA adapter:** \`adapter/\` holds the policy's LoRA adapter in PEFT's files; \`model/\` is its base.
  Load both with \`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("./model"), "./adapter")\`
  (\`merge_and_unload()\` gives the merged model).`
      : ''
  }
${
  rm
    ? `- **Reward model:** ${input.rewardModel!.name}, as \`${rm.className}\` in \`reward_model/\`${rm.exact ? " (HF's scores are the tab's)" : rm.pooling === 'last' ? " (HF's scores are the tab's minus a constant, \`score_offset\`; \`rlhf_reward.py\` adds it, see below)" : ' (**mean pooling**: the HF class alone reads the last token and differs from the tab; \`rlhf_reward.py\` pools as the tab does, see below)'}; TRL GRPO / RLOO configs use it.\n`
    : ''
}
## Files

| file | what |
| --- | --- |
| \`data/preferences.jsonl\` | preference pairs (TRL "preference" type, standard format, explicit prompt) |
${
  c.arch === 'llama'
    ? `| \`model/config.json\` | \`LlamaConfig\`: \`model_type: "llama"\`, \`architectures: ["LlamaForCausalLM"]\` |
| \`model/model.safetensors\` | float32 weights, tensor names and layouts of \`LlamaForCausalLM.state_dict()\` |
`
    : `| \`model/config.json\` | \`GPT2Config\`: \`model_type: "gpt2"\`, \`architectures: ["GPT2LMHeadModel"]\` |
| \`model/model.safetensors\` | float32 weights, tensor names of \`GPT2LMHeadModel.state_dict()\` |
`
}| \`model/tokenizer.json\` | the tokenizer in Hugging Face \`tokenizers\` format (\`GPT2TokenizerFast\`) |
| \`model/vocab.json\`, \`model/merges.txt\` | the same tokenizer as \`GPT2Tokenizer\` files |
| \`model/tokenizer_config.json\`, \`special_tokens_map.json\` | special tokens: \`${eot}\` is BOS, EOS, UNK and PAD |
| \`configs/trl_reward.yaml\`, \`configs/trl_dpo.yaml\` | TRL CLI configs |
${
  rm
    ? `| \`reward_model/\` | the reward model: \`${rm.className}\` config, weights, tokenizer files |
| \`prompts/prompts.jsonl\` | the Train page's prompts, \`{"prompt": "${eot}…"}\` |
| \`configs/trl_grpo.yaml\`, \`configs/trl_rloo.yaml\` | TRL GRPO / RLOO against the reward model |
| \`rlhf_reward.py\` | the reward model as a TRL reward function, scored as the tab does (needed for mean pooling and a Llama model's \`score_offset\`) |
`
    : ''
}
${c.arch === 'llama' ? llamaSection(c, eot) : gpt2Section(c, eot)}## Continue with TRL

\`\`\`sh
pip install "trl>=0.25" "transformers" "datasets" "accelerate"
cd <this folder>
trl reward --config configs/trl_reward.yaml     # reward model  -> ./out/reward-model
trl dpo    --config configs/trl_dpo.yaml        # DPO policy    -> ./out/dpo-policy
\`\`\`

Any field of the YAML can be overridden on the command line, e.g.
\`trl dpo --config configs/trl_dpo.yaml --beta 0.05 --learning_rate 5e-6\`; add
\`accelerate launch\` settings with \`accelerate config\` first for several GPUs. \`dataset_name: ./data\`
makes \`datasets.load_dataset\` read \`data/preferences.jsonl\` as the \`train\` split. \`RewardTrainer\`
reads explicit-prompt rows from TRL 0.25 on (older versions want \`chosen\`/\`rejected\` only, with the
prompt inside each); \`DPOTrainer\` reads them in every recent version. The DPO config and the app's
DPO use the same loss, \`-log σ(β·((log π(chosen) - log π_ref(chosen)) - (log π(rejected) - log π_ref(rejected))))\`.

${rm ? rewardSection(input, rm, c, eot, prompts) : ''}## Continue with OpenRLHF

\`\`\`sh
pip install openrlhf
cd <this folder>
deepspeed --module openrlhf.cli.train_rm \\
  --pretrain ./model --dataset ./data/preferences.jsonl \\
  --prompt_key prompt --chosen_key chosen --rejected_key rejected --input_template '{}' \\
  --max_len ${c.blockSize} --micro_train_batch_size 8 --train_batch_size 32 --max_epochs 3 \\
  --learning_rate 1e-4 --zero_stage 0 --save_path ./out/openrlhf-rm

deepspeed --module openrlhf.cli.train_dpo \\
  --pretrain ./model --dataset ./data/preferences.jsonl \\
  --prompt_key prompt --chosen_key chosen --rejected_key rejected --input_template '{}' \\
  --max_len ${c.blockSize} --micro_train_batch_size 8 --train_batch_size 32 --max_epochs 3 \\
  --beta 0.1 --learning_rate 1e-5 --zero_stage 0 --save_path ./out/openrlhf-dpo
\`\`\`

\`--input_template '{}'\` keeps each prompt exactly as written (\`train_dpo\`'s default wraps it in
"User: … Assistant:"). No \`--apply_chat_template\`: the data is plain text, not chat turns.

## How feedback became pairs

A/B: the picked response is \`chosen\`. Ranking of K: every pair of the ranking. Rating: every two
responses with different ratings. Edit: your edit is \`chosen\`, the original \`rejected\`. Ties,
"both bad" and skips make no pair. Rating margins are left out here so every row has exactly the three
keys; the Export panel's "TRL preference" file can add a \`margin\` column.
`;
}

/**
 * The files of the bundle, in `HANDOFF_FILES` order (then `HANDOFF_REWARD_FILES` with a reward
 * model). Throws `HandoffError` on an unusable model or reward model.
 */
export function handoffFiles(input: HandoffInput): ZipEntry[] {
  const m = input.model;
  if (m.which !== 'base' && m.which !== 'policy')
    throw new HandoffError(`Unknown model "${String(m.which)}": pick the base model or the PPO policy.`);
  const hfConfig = parse(m.config, 'config.json');
  let config: BundleConfig;
  let tok: BpeTokenizer;
  try {
    config = bundleConfig(hfConfig);
    tok = BpeTokenizer.fromJSON(parse(m.tokenizer, 'tokenizer.json'));
  } catch (e) {
    if (e instanceof HandoffError) throw e;
    throw new HandoffError(`The model files cannot be handed off: ${(e as Error).message}`);
  }
  if (tok.vocabSize !== config.vocabSize)
    throw new HandoffError(
      `config.json has ${config.vocabSize} tokens but tokenizer.json ${tok.vocabSize}; reload the model.`,
    );
  const weights = m.weights instanceof Uint8Array ? m.weights : new Uint8Array(m.weights);
  if (weights.byteLength < 8) throw new HandoffError('The model weights are empty; reload the model.');

  const eot = tok.eotToken;
  const tj = tok.toJSON();
  const fullConfig = {
    ...hfConfig,
    pad_token_id: tok.eotId, // *ForSequenceClassification (reward models) finds the last token by it
  };
  const tokenizerConfig = {
    tokenizer_class: 'GPT2TokenizerFast',
    bos_token: eot,
    eos_token: eot,
    unk_token: eot,
    pad_token: eot,
    add_prefix_space: false,
    add_bos_token: false,
    model_max_length: config.blockSize,
    clean_up_tokenization_spaces: false,
  };
  const specialTokens = { bos_token: eot, eos_token: eot, unk_token: eot, pad_token: eot };
  const created = input.createdAt ?? new Date();
  const jsonl = pairsToTrlPreferenceJsonl(input.pairs, { includeMargin: false });
  const rows = input.pairs.length;
  const pretty = (o: unknown) => JSON.stringify(o, null, 2) + '\n';
  let rm: HfRewardExport | null = null;
  const prompts = input.rewardModel ? promptsJsonl(input.prompts ?? [], eot) : '';
  if (input.rewardModel) {
    try {
      rm = rewardModelToHf(input.rewardModel, tok.eotId, config.vocabSize);
    } catch (e) {
      throw new HandoffError((e as Error).message);
    }
    if (!prompts) throw new HandoffError('No prompts for the GRPO / RLOO configs: add prompts on the Train page.');
  }
  const promptCount = prompts ? prompts.split('\n').length - 1 : 0;
  const entries: ZipEntry[] = [
    { name: 'README.md', data: readme(input, config, eot, created, rows, rm, promptCount) },
    { name: 'data/preferences.jsonl', data: jsonl },
    { name: 'model/config.json', data: pretty(fullConfig) },
    { name: 'model/model.safetensors', data: weights },
    { name: 'model/tokenizer.json', data: JSON.stringify(tj) },
    { name: 'model/vocab.json', data: JSON.stringify(tj.model.vocab) },
    { name: 'model/merges.txt', data: mergesTxt(tj.model.merges) },
    { name: 'model/tokenizer_config.json', data: pretty(tokenizerConfig) },
    { name: 'model/special_tokens_map.json', data: pretty(specialTokens) },
    { name: 'configs/trl_reward.yaml', data: trlRewardYaml(config) },
    { name: 'configs/trl_dpo.yaml', data: trlDpoYaml(config) },
  ];
  if (m.adapter) {
    const aw = m.adapter.weights instanceof Uint8Array ? m.adapter.weights : new Uint8Array(m.adapter.weights);
    entries.push(
      {
        name: 'adapter/adapter_config.json',
        data: m.adapter.config.endsWith('\n') ? m.adapter.config : m.adapter.config + '\n',
      },
      { name: 'adapter/adapter_model.safetensors', data: aw },
    );
  }
  if (rm) {
    const tokFiles = entries.filter((e) => e.name.startsWith('model/') && e.name !== 'model/config.json');
    entries.push(
      { name: 'reward_model/config.json', data: pretty(rm.config) },
      { name: 'reward_model/model.safetensors', data: rm.weights },
      ...tokFiles
        .filter((e) => e.name !== 'model/model.safetensors')
        .map((e) => ({ ...e, name: e.name.replace(/^model\//, 'reward_model/') })),
      { name: 'prompts/prompts.jsonl', data: prompts },
      {
        name: 'configs/trl_grpo.yaml',
        data: trlGrpoYaml(input.grpo ?? DEFAULT_GRPO_CONFIG, config.blockSize, rm.exact),
      },
      {
        name: 'configs/trl_rloo.yaml',
        data: trlRlooYaml(input.rloo ?? DEFAULT_RLOO_CONFIG, config.blockSize, rm.exact),
      },
      { name: 'rlhf_reward.py', data: RLHF_REWARD_PY },
    );
  }
  return entries;
}

/** The bundle as one ZIP (stored entries). */
export function buildHandoffZip(input: HandoffInput): Uint8Array {
  return writeZip(handoffFiles(input), input.createdAt ?? new Date());
}

/** File name of the download, e.g. `rlhf-handoff-tiny-gpt-policy-it12-2024-05-17.zip`. */
export function handoffFileName(model: Pick<HandoffModel, 'name' | 'which' | 'iteration'>, date = new Date()): string {
  const safe = model.name.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 40) || 'model';
  const which = model.which === 'policy' ? `policy-it${model.iteration ?? 0}` : 'base';
  return `rlhf-handoff-${safe}-${which}-${date.toISOString().slice(0, 10)}.zip`;
}
