/**
 * GPT configuration, in nanoGPT's names (karpathy/nanoGPT `model.py`, `GPTConfig`).
 * The same object is written to `config.json` next to the weights, together with
 * the Hugging Face GPT-2 names (`n_layer`, `n_embd`, …) so other tools can read it.
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
  /** LayerNorm epsilon (GPT-2 uses 1e-5). */
  layerNormEps: number;
}

export const DEFAULT_LAYER_NORM_EPS = 1e-5;
