/**
 * GPT configuration, in nanoGPT's names (karpathy/nanoGPT `model.py`, `GPTConfig`).
 * The same object is written to `config.json` next to the weights, together with
 * the Hugging Face names (`n_layer`, `n_embd`, … or Llama's `hidden_size`, …) so other tools can read it.
 *
 * Two architectures share the object: GPT-2 (the default; a config without `arch` is GPT-2, so
 * every saved config stays valid) and the Llama family as SmolLM2 uses it (`arch: 'llama'`:
 * RMSNorm, RoPE, SwiGLU, grouped-query attention; Hugging Face `LlamaConfig` in brackets below).
 */
export interface GPTConfig {
  /** Tokens in the vocabulary (256 bytes + BPE merges + `<|endoftext|>`). */
  vocabSize: number;
  /** Longest context the model sees; positions are learned up to this length. */
  blockSize: number;
  /** Transformer blocks. */
  nLayer: number;
  /** Attention heads per block; `nEmbd` must be divisible by it. */
  nHead: number;
  /** Width of the residual stream. */
  nEmbd: number;
  /** LayerNorm epsilon (GPT-2 uses 1e-5); for Llama the RMSNorm epsilon (`rms_norm_eps`). */
  layerNormEps: number;
  /** Architecture; absent means 'gpt2'. */
  arch?: ModelArch;
  /** Llama: key/value heads of grouped-query attention (`num_key_value_heads`); divides nHead.
   *  Absent means nHead (plain multi-head attention). */
  nKvHead?: number;
  /** Llama: width of the SwiGLU MLP (`intermediate_size`). Required for llama. */
  intermediateSize?: number;
  /** Llama: RoPE base (`rope_theta`); absent means 10000. */
  ropeTheta?: number;
  /** Llama: whether `lm_head` is the token embedding (`tie_word_embeddings`); absent means false,
   *  as in HF's LlamaConfig (SmolLM2 sets it true). GPT-2 is always tied. */
  tieWordEmbeddings?: boolean;
}

export type ModelArch = 'gpt2' | 'llama';

/** The architecture of a config ('gpt2' when `arch` is absent). */
export function archOf(config: GPTConfig): ModelArch {
  return config.arch ?? 'gpt2';
}

export const DEFAULT_ROPE_THETA = 10000;

export const DEFAULT_LAYER_NORM_EPS = 1e-5;

/** Key/value heads of a config (nHead when absent). */
export function kvHeads(config: GPTConfig): number {
  return config.nKvHead ?? config.nHead;
}

/** Whether the LM head is the token embedding: always for GPT-2; for Llama when `tieWordEmbeddings`. */
export function tiedHead(config: GPTConfig): boolean {
  return archOf(config) === 'gpt2' || config.tieWordEmbeddings === true;
}

/** Added to attention scores of masked positions (both architectures' TF.js attention). Finite
 *  (not -Infinity) so a row with every key masked gives a uniform softmax instead of NaN. */
export const MASK_VALUE = -1e9;
