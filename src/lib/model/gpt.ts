/**
 * A GPT-2 style decoder-only transformer in TF.js.
 *
 * Follows:
 *  - Radford et al. 2019, "Language Models are Unsupervised Multitask Learners" (GPT-2):
 *    pre-LayerNorm blocks, a final LayerNorm, learned positions, GELU (tanh form),
 *    residual projections initialised with std 0.02/sqrt(2·nLayer).
 *  - Vaswani et al. 2017, "Attention Is All You Need": scaled dot-product, multi-head attention.
 *  - karpathy/nanoGPT `model.py`: structure, init and naming of the config.
 *
 * Parameters are named and shaped as in Hugging Face `GPT2LMHeadModel`, so export and
 * import map 1:1 (HF's Conv1D stores weights as [in, out], hence `x @ W` needs no transpose).
 * The LM head is tied to the token embedding `wte`.
 *
 * `arch: 'llama'` builds the Llama family as SmolLM2 uses it, after Hugging Face
 * `models/llama/modeling_llama.py` (Touvron et al. 2023, "LLaMA"): RMSNorm (Zhang & Sennrich 2019;
 * weight only, x·rsqrt(mean(x²) + eps)·w), rotary positions (Su et al. 2021, "RoFormer"; HF's
 * rotate_half convention: x·cos + [−x₂, x₁]·sin with inv_freq = θ^(−2i/d)), a SwiGLU MLP (Shazeer
 * 2020: down(silu(gate(x))·up(x))), grouped-query attention (Ainslie et al. 2023: kv head
 * ⌊h / (nHead/nKvHead)⌋ serves query head h), no biases, tied or untied `lm_head`. Names are
 * LlamaForCausalLM's; every projection (`*_proj.weight`, an untied `lm_head.weight`) is held as
 * [in, out] here (x @ W, no transposed matMul) while HF files store nn.Linear's [out, in]:
 * weights.ts converts on import and export. Llama attention uses our kernel where GPT-2's does
 * (kv heads repeated for their query heads), TF.js ops elsewhere (queries grouped per kv head).
 *
 * Backend notes (TF.js 4.22, measured on the wasm backend; scripts/bench/profile-step.ts):
 *  - wasm has no kernel for the gradient of `gather`: embeddings gather forward and add rows
 *    back in their own gradient (ops.ts `embed`).
 *  - wasm's BatchMatMul loops plainly whenever batch > 1, so on wasm and cpu attention runs in
 *    our own WebAssembly kernel (./kernels: heads read from the fused qkv rows, no transposes);
 *    other backends use TF.js ops.
 *  - `matMul` with transposeA/transposeB is 10–30× slower than plain matMul on wasm, so the
 *    tied head uses `transpose(wte)` once per forward and keys are transposed as 4-D tensors.
 *  - The training step's hot ops (linear, LayerNorm, GELU, cross-entropy, matMul) are fused ops
 *    with hand-written gradients in ./ops.ts: fewer kernels, fewer saved (copied) tensors, no
 *    Sum over axis 0 (slow on wasm), Sigmoid instead of Tanh, Softmax instead of LogSoftmax.
 *  - `pow` is slow: GELU writes x³ as x·x·x.
 *  - `@tensorflow/tfjs-core` alone registers no gradients. Whoever trains must import
 *    '@tensorflow/tfjs-core/dist/register_all_gradients' once (bundlers, Vitest) or, in Node
 *    scripts run by tsx (whose resolver cannot load that file), '@tensorflow/tfjs'.
 *    `trainableVariables()` checks this and says so.
 */
import * as tf from '@tensorflow/tfjs-core';
import { archOf, DEFAULT_ROPE_THETA, type GPTConfig } from './config';
import { ModelLoadError } from './errors';
import { Rng } from './rng';
import { attentionKernelAvailable, cachedAttention, selfAttention } from './kernels/attention-kernel';
import { embed, geluTanh, layerNorm, linear, linearFrozen, matMul, pickedLogSoftmax, transposeLast2 } from './ops';
import { LoraAdapters, type LoraSpec } from './lora';

/** Added to attention scores of masked positions. Finite (not -Infinity) so a row with
 *  every key masked gives a uniform softmax instead of NaN. */
const MASK_VALUE = -1e9;

/** Additive attention bias broadcastable to [B, nh, t, L] (see `GPT.attentionBias`). */
type AttentionBias = tf.Tensor;

/**
 * Llama's additive mask [B|1, 1, t, L] for queries at columns L−t..L−1: causal, plus
 * `padding[b]` masked leading key columns of row b. Built per call in JS (t·L values), so no
 * [context, context] tensor is kept.
 */
function llamaBias(B: number, t: number, L: number, padding?: readonly number[]): AttentionBias {
  const rows = padding ? B : 1;
  const m = new Float32Array(rows * t * L);
  for (let b = 0; b < rows; b++)
    for (let i = 0; i < t; i++) {
      const o = (b * t + i) * L;
      const pad = padding ? Math.min(padding[b], L) : 0;
      m.fill(MASK_VALUE, o, o + pad);
      m.fill(MASK_VALUE, o + L - t + i + 1, o + L);
    }
  return tf.tensor4d(m, [rows, 1, t, L]);
}

export interface GPTOptions {
  /** Seed of the weight init (default 0). */
  seed?: number;
  /** Whether the variables train (default true). A frozen reference model passes false. */
  trainable?: boolean;
  /** Prefix of the TF.js variable names, which must be unique per process (default: auto). */
  namePrefix?: string;
  /** 'random' (GPT-2 init, default) or 'zeros' when every weight is about to be overwritten
   *  (loading a file, cloning): skips drawing ~1M normal numbers in JS. */
  init?: 'random' | 'zeros';
}

export type ForwardOutput = {
  /** [B, T, V] next-token logits. */
  logits: tf.Tensor3D;
  /** [B, T, C] last hidden state after ln_f (for reward and value heads). */
  hidden?: tf.Tensor3D;
};

/**
 * Key/value cache of one batch for incremental decoding. Rows may be left-padded:
 * `padding[b]` leading columns of row b are padding, masked out as keys, and the
 * row's positions count from its first real token.
 */
export class KVCache {
  /**
   * Per layer, keys and values: [B, L, C] rows when our attention kernel runs (wasm, cpu); on
   * other backends heads, keys already transposed [B, nh, hs, L] and values [B, nh, L, hs]
   * (`layout`).
   */
  keys: tf.Tensor[] = [];
  values: tf.Tensor[] = [];
  layout: 'rows' | 'heads' | null = null;
  /** Columns filled so far (padding included). */
  length = 0;
  /**
   * The tied head's transposed embedding [C, V], made at the first step and kept for the cache's
   * life: the weights do not change while a batch decodes, and transposing a 50,257 × 768 table
   * for every new token cost more than the step itself.
   */
  headT: tf.Tensor2D | null = null;
  constructor(
    readonly batch: number,
    readonly padding: number[],
  ) {}
  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
    this.headT?.dispose();
    this.headT = null;
    this.keys = [];
    this.values = [];
    this.length = 0;
    this.layout = null;
  }
}

let instanceCounter = 0;

/**
 * HF names and shapes of every parameter of a config, in a fixed order. Llama projections are
 * listed as held here, [in, out] (HF files hold their transpose; see `isHfTransposed`).
 */
export function parameterShapes(config: GPTConfig): Map<string, number[]> {
  if (archOf(config) === 'llama') return llamaParameterShapes(config);
  const { vocabSize: V, blockSize: T, nEmbd: C, nLayer } = config;
  const s = new Map<string, number[]>();
  s.set('transformer.wte.weight', [V, C]);
  s.set('transformer.wpe.weight', [T, C]);
  for (let i = 0; i < nLayer; i++) {
    const h = `transformer.h.${i}.`;
    s.set(h + 'ln_1.weight', [C]);
    s.set(h + 'ln_1.bias', [C]);
    s.set(h + 'attn.c_attn.weight', [C, 3 * C]);
    s.set(h + 'attn.c_attn.bias', [3 * C]);
    s.set(h + 'attn.c_proj.weight', [C, C]);
    s.set(h + 'attn.c_proj.bias', [C]);
    s.set(h + 'ln_2.weight', [C]);
    s.set(h + 'ln_2.bias', [C]);
    s.set(h + 'mlp.c_fc.weight', [C, 4 * C]);
    s.set(h + 'mlp.c_fc.bias', [4 * C]);
    s.set(h + 'mlp.c_proj.weight', [4 * C, C]);
    s.set(h + 'mlp.c_proj.bias', [C]);
  }
  s.set('transformer.ln_f.weight', [C]);
  s.set('transformer.ln_f.bias', [C]);
  return s;
}

/** Key/value heads of a config (nHead when absent). */
export function kvHeads(config: GPTConfig): number {
  return config.nKvHead ?? config.nHead;
}

/** Whether the LM head is the token embedding: always for GPT-2; for Llama when `tieWordEmbeddings`. */
export function tiedHead(config: GPTConfig): boolean {
  return archOf(config) === 'gpt2' || config.tieWordEmbeddings === true;
}

function llamaParameterShapes(config: GPTConfig): Map<string, number[]> {
  const { vocabSize: V, nEmbd: C, nLayer, nHead } = config;
  const I = config.intermediateSize!;
  const kv = (C / nHead) * kvHeads(config);
  const s = new Map<string, number[]>();
  s.set('model.embed_tokens.weight', [V, C]);
  for (let i = 0; i < nLayer; i++) {
    const h = `model.layers.${i}.`;
    s.set(h + 'input_layernorm.weight', [C]);
    s.set(h + 'self_attn.q_proj.weight', [C, C]);
    s.set(h + 'self_attn.k_proj.weight', [C, kv]);
    s.set(h + 'self_attn.v_proj.weight', [C, kv]);
    s.set(h + 'self_attn.o_proj.weight', [C, C]);
    s.set(h + 'post_attention_layernorm.weight', [C]);
    s.set(h + 'mlp.gate_proj.weight', [C, I]);
    s.set(h + 'mlp.up_proj.weight', [C, I]);
    s.set(h + 'mlp.down_proj.weight', [I, C]);
  }
  s.set('model.norm.weight', [C]);
  if (!tiedHead(config)) s.set('lm_head.weight', [C, V]);
  return s;
}

/**
 * Whether a parameter is held here as the transpose of its Hugging Face tensor: Llama's
 * nn.Linear weights ([out, in] in HF files, [in, out] here). GPT-2's Conv1D needs none.
 */
export function isHfTransposed(config: GPTConfig, name: string): boolean {
  return archOf(config) === 'llama' && (name.endsWith('_proj.weight') || name === 'lm_head.weight');
}

function validateConfig(c: GPTConfig): void {
  const ints = ['vocabSize', 'blockSize', 'nLayer', 'nHead', 'nEmbd'] as const;
  for (const k of ints) {
    if (!Number.isInteger(c[k]) || c[k] <= 0)
      throw new ModelLoadError(`GPT config: ${k} must be a positive integer, got ${c[k]}.`);
  }
  if (c.nEmbd % c.nHead !== 0)
    throw new ModelLoadError(`GPT config: nEmbd (${c.nEmbd}) must be divisible by nHead (${c.nHead}).`);
  if (!(c.layerNormEps > 0)) throw new ModelLoadError(`GPT config: layerNormEps must be > 0, got ${c.layerNormEps}.`);
  const arch = c.arch ?? 'gpt2';
  if (arch !== 'gpt2' && arch !== 'llama')
    throw new ModelLoadError(`GPT config: arch must be 'gpt2' or 'llama', got ${JSON.stringify(c.arch)}.`);
  if (arch === 'llama') {
    const kv = kvHeads(c);
    if (!Number.isInteger(kv) || kv <= 0 || c.nHead % kv !== 0)
      throw new ModelLoadError(`GPT config: nKvHead (${kv}) must be a positive divisor of nHead (${c.nHead}).`);
    if (!Number.isInteger(c.intermediateSize) || c.intermediateSize! <= 0)
      throw new ModelLoadError(`GPT config: intermediateSize must be a positive integer, got ${c.intermediateSize}.`);
    const theta = c.ropeTheta ?? DEFAULT_ROPE_THETA;
    if (!(theta > 0)) throw new ModelLoadError(`GPT config: ropeTheta must be > 0, got ${theta}.`);
    if ((c.nEmbd / c.nHead) % 2 !== 0)
      throw new ModelLoadError(`GPT config: the head size (${c.nEmbd / c.nHead}) must be even for rotary positions.`);
  }
}

export class GPT {
  readonly config: GPTConfig;
  readonly params = new Map<string, tf.Variable>();
  private readonly trainable: boolean;
  private readonly prefix: string;
  /** [blockSize, blockSize] additive causal mask: 0 on and below the diagonal, MASK_VALUE above.
   *  GPT-2 only; Llama builds its [t, L] mask per call (its context may be 8192). */
  private readonly causalBias: tf.Tensor2D | null = null;
  private readonly llama: boolean;
  /** LoRA adapters on some projections (./lora.ts), or null. While present the base is frozen. */
  lora: LoraAdapters | null = null;

  constructor(config: GPTConfig, opts: GPTOptions = {}) {
    validateConfig(config);
    this.config = { ...config };
    this.trainable = opts.trainable ?? true;
    this.prefix = opts.namePrefix ?? `gpt${instanceCounter++}/`;
    this.llama = archOf(config) === 'llama';
    const { nLayer } = config;
    const rng = new Rng(opts.seed ?? 0);
    const residStd = 0.02 / Math.sqrt(2 * nLayer);
    // GPT-2 init, numbers drawn in JS in the fixed order of parameterShapes(). Llama as HF's
    // LlamaPreTrainedModel: RMSNorm weights 1, every other weight N(0, 0.02).
    for (const [name, shape] of parameterShapes(config)) {
      const n = shape.reduce((a, b) => a * b, 1);
      let values: Float32Array;
      if (name.endsWith('.bias') || opts.init === 'zeros') values = new Float32Array(n);
      else if (this.llama)
        values = name.endsWith('norm.weight') ? new Float32Array(n).fill(1) : rng.normalArray(n, 0.02);
      else if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) values = new Float32Array(n).fill(1);
      else if (name.endsWith('c_proj.weight')) values = rng.normalArray(n, residStd);
      else values = rng.normalArray(n, 0.02);
      const init = tf.tensor(values, shape, 'float32');
      this.params.set(name, tf.variable(init, this.trainable, this.prefix + name)); // copies init
      init.dispose();
    }
    if (this.llama) return;
    const T = config.blockSize;
    const mask = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = MASK_VALUE;
    this.causalBias = tf.tensor2d(mask, [T, T]);
  }

  /**
   * Variables to train: the adapters when LoRA is on (the base is frozen), else every weight, or
   * none when frozen. Throws if TF.js gradients are not registered.
   */
  trainableVariables(): tf.Variable[] {
    if (!this.trainable && !this.lora) return [];
    if (!tf.getGradient(tf.BatchMatMul)) {
      throw new Error(
        "TF.js gradients are not registered: import '@tensorflow/tfjs-core/dist/register_all_gradients' once at start-up (in Node scripts: import '@tensorflow/tfjs').",
      );
    }
    return this.lora ? this.lora.variables() : [...this.params.values()];
  }

  /**
   * Put LoRA adapters on the projections `spec.targetModules` names (replacing any there) and
   * freeze the base weights. `seed` draws A.
   */
  addAdapters(spec: LoraSpec, seed = 0): LoraAdapters {
    const lora = new LoraAdapters(this, spec, seed);
    this.setAdapters(lora);
    return lora;
  }

  /** Use `lora` (built for this model) as the adapters; frees the previous ones. */
  setAdapters(lora: LoraAdapters): void {
    this.lora?.dispose();
    this.lora = lora;
    for (const v of this.params.values()) v.trainable = false;
  }

  /** Drop the adapters; the base weights train again if the model was built trainable. */
  removeAdapters(): void {
    this.lora?.dispose();
    this.lora = null;
    for (const v of this.params.values()) v.trainable = this.trainable;
  }

  /**
   * Run `fn` with the adapters switched off: the base model, i.e. a LoRA run's frozen reference,
   * without a second copy of the weights. Synchronous: `fn` is a forward pass, not an await.
   */
  withoutAdapters<T>(fn: () => T): T {
    const lora = this.lora;
    if (!lora || !lora.enabled) return fn();
    lora.enabled = false;
    try {
      return fn();
    } finally {
      lora.enabled = true;
    }
  }

  /** Run `fn` (a loss under `tf.variableGrads`) in training mode: LoRA dropout applies. */
  inTraining<T>(fn: () => T): T {
    const lora = this.lora;
    if (!lora) return fn();
    const was = lora.training;
    lora.training = true;
    try {
      return fn();
    } finally {
      lora.training = was;
    }
  }

  /** Parameters that train: the adapters' under LoRA, else all (0 for a frozen model). */
  numTrainableParams(): number {
    if (this.lora) return this.lora.numParams();
    return this.trainable ? this.numParams() : 0;
  }

  numParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`GPT: missing parameter ${name}`);
    return v;
  }

  /** LayerNorm over the last axis of x [N, C], fused with its gradient (ops.ts). */
  private layerNorm(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const w = this.p(name + '.weight') as tf.Tensor as tf.Tensor1D;
    return layerNorm(x, w, this.p(name + '.bias') as tf.Tensor as tf.Tensor1D, this.config.layerNormEps);
  }

  /**
   * x [N, in] @ W [in, out] (+ b where the module has a bias), plus the module's LoRA update when
   * it has one: every projection of both architectures goes through here, named by its module
   * (`transformer.h.0.attn.c_attn`, `model.layers.0.self_attn.q_proj`, `lm_head`).
   */
  private linear(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const w = this.p(name + '.weight') as tf.Tensor as tf.Tensor2D;
    const b = this.params.get(name + '.bias');
    const bias = b as tf.Tensor | undefined as tf.Tensor1D | undefined;
    // Under LoRA the base is frozen: the op whose gradient is dx alone (no dW, db).
    const y = this.lora ? linearFrozen(x, w, bias) : bias ? linear(x, w, bias) : matMul(x, w);
    return this.lora ? this.lora.apply(name, x, y) : y;
  }

  /** GELU, tanh approximation (GPT-2 "gelu_new"), fused with its gradient (ops.ts). */
  private gelu(x: tf.Tensor2D): tf.Tensor2D {
    return geluTanh(x);
  }

  /**
   * qkv [B·t, 3C] → q [B, nh, t, hs] (already scaled by 1/√hs), k and v [B, nh, t, hs]: one 4-D
   * transpose of the fused projection and a split on the head axis (contiguous blocks, unlike a
   * column split of [B·t, 3C]). Scaling q (t·hs values) is cheaper than scaling the scores (t·L).
   */
  private qkvHeads(qkv: tf.Tensor2D, B: number, t: number): { q: tf.Tensor4D; kT: tf.Tensor4D; v: tf.Tensor4D } {
    const { nHead, nEmbd } = this.config;
    const hs = nEmbd / nHead;
    const heads = tf.transpose(tf.reshape(qkv, [B, t, 3 * nHead, hs]), [0, 2, 1, 3]); // [B, 3nh, t, hs]
    const [q, k, v] = tf.split(heads, 3, 1) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    return { q: tf.mul(q, 1 / Math.sqrt(hs)), kT: transposeLast2(k), v }; // kT [B, nh, hs, t]
  }

  /**
   * Whether attention runs in our wasm kernel (`kernels/attention-kernel.ts`: on the wasm and cpu
   * backends; causal mask and key padding built in, heads read straight from the fused qkv
   * rows) or as TF.js ops (other backends).
   */
  private useAttentionKernel(): boolean {
    return attentionKernelAvailable(this.config.nEmbd / this.config.nHead);
  }

  /**
   * TF.js path: additive bias broadcastable to [B, nh, t, L], the causal part (rows P..L−1 of
   * the full mask) plus `padding[b]` masked leading key columns.
   */
  private attentionBias(B: number, t: number, L: number, padding?: readonly number[]): AttentionBias {
    let bias: tf.Tensor = tf.slice(this.causalBias!, [L - t, 0], [t, L]);
    if (padding?.some((p) => p > 0)) {
      const padBias = new Float32Array(B * L);
      for (let b = 0; b < B; b++) padBias.fill(MASK_VALUE, b * L, b * L + Math.min(padding[b], L));
      bias = tf.add(bias, tf.tensor4d(padBias, [B, 1, 1, L]));
    }
    return bias;
  }

  /**
   * TF.js path: attention of q [B, nh, t, hs] over kT [B, nh, hs, L], v [B, nh, L, hs] (the
   * queries are the last t positions); returns the projected output [B·t, C].
   */
  private attend(q: tf.Tensor4D, kT: tf.Tensor4D, v: tf.Tensor4D, bias: AttentionBias, layer: number): tf.Tensor2D {
    const [B, , t] = q.shape;
    const scores = tf.add(matMul(q, kT), bias); // [B, nh, t, L]; q is pre-scaled
    const y = matMul(tf.softmax(scores, -1), v); // [B, nh, t, hs]
    const merged = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * t, this.config.nEmbd]) as tf.Tensor2D; // [B·t, C]
    return this.linear(merged, `transformer.h.${layer}.attn.c_proj`);
  }

  /** MLP: c_fc → GELU → c_proj on x [N, C]. */
  private mlp(x: tf.Tensor2D, layer: number): tf.Tensor2D {
    const h = `transformer.h.${layer}.mlp.`;
    return this.linear(this.gelu(this.linear(x, h + 'c_fc')), h + 'c_proj');
  }

  /** Token embeddings of idx [B, T] as [B·T, C]. */
  private embedTokens(idx: tf.Tensor2D): tf.Tensor2D {
    const [B, T] = idx.shape;
    const w = this.p(this.llama ? 'model.embed_tokens.weight' : 'transformer.wte.weight') as tf.Tensor as tf.Tensor2D;
    return embed(tf.reshape(idx, [B * T]) as tf.Tensor1D, w);
  }

  /** Final LayerNorm and tied LM head on x [B·T, C]: returns hidden [B·T, C] and logits [B·T, V]. */
  private head(x: tf.Tensor2D, cache?: KVCache): { hidden: tf.Tensor2D; logits: tf.Tensor2D } {
    const hidden = this.layerNorm(x, 'transformer.ln_f');
    const headT = this.tiedHeadT('transformer.wte.weight', cache);
    return { hidden, logits: this.lora ? linearFrozen(hidden, headT) : matMul(hidden, headT) };
  }

  /**
   * The embedding `name` transposed to [C, V] for a tied head: once per forward, or once per KV
   * cache when decoding (kept on the cache; a plain transposed matMul is 10–30× slower on wasm).
   */
  private tiedHeadT(name: string, cache?: KVCache): tf.Tensor2D {
    const w = this.p(name) as tf.Tensor as tf.Tensor2D;
    if (!cache) return tf.transpose(w);
    if (!cache.headT) cache.headT = tf.keep(tf.transpose(w));
    return cache.headT;
  }

  /** The transformer blocks over idx (int32 [B, T]): the residual stream [B·T, C] before ln_f. */
  private blocks(idx: tf.Tensor2D): tf.Tensor2D {
    const [B, T] = idx.shape;
    const { nEmbd: C, nLayer } = this.config;
    const pos = tf.slice(this.p('transformer.wpe.weight'), [0, 0], [T, C]); // [T, C]
    let x = tf.reshape(tf.add(tf.reshape(this.embedTokens(idx), [B, T, C]), pos), [B * T, C]) as tf.Tensor2D;
    const kernel = this.useAttentionKernel();
    const bias = kernel ? null : this.attentionBias(B, T, T);
    for (let l = 0; l < nLayer; l++) {
      const h = `transformer.h.${l}.`;
      const qkv = this.linear(this.layerNorm(x, h + 'ln_1'), h + 'attn.c_attn'); // [B·T, 3C]
      if (kernel) {
        const y = selfAttention(qkv, B, T, this.config.nHead); // [B·T, C]
        x = tf.add(x, this.linear(y, h + 'attn.c_proj'));
      } else {
        const { q, kT, v } = this.qkvHeads(qkv, B, T);
        x = tf.add(x, this.attend(q, kT, v, bias!, l));
      }
      x = tf.add(x, this.mlp(this.layerNorm(x, h + 'ln_2'), l));
    }
    return x;
  }

  /** Full forward pass of idx (int32 [B, T], T ≤ blockSize). Trainable under tf.variableGrads. */
  forward(idx: tf.Tensor2D, opts: { returnHidden?: boolean } = {}): ForwardOutput {
    const [B, T] = idx.shape;
    const { nEmbd: C, vocabSize: V } = this.config;
    this.checkLength(T);
    if (this.llama) return this.llamaForward(idx, opts);
    return tf.tidy(() => {
      const { hidden, logits } = this.head(this.blocks(idx));
      const out: ForwardOutput = { logits: tf.reshape(logits, [B, T, V]) };
      if (opts.returnHidden) out.hidden = tf.reshape(hidden, [B, T, C]);
      return out;
    });
  }

  /**
   * The final hidden states [B, T, C] of idx (after ln_f), without the LM head: what the value
   * and reward heads read. The same numbers as `forward(idx, { returnHidden: true }).hidden`
   * without the [B·T, C] × [C, V] product (the largest of the model). Trainable.
   */
  hiddenStates(idx: tf.Tensor2D): tf.Tensor3D {
    const [B, T] = idx.shape;
    this.checkLength(T);
    return tf.tidy(() => {
      const x = this.llama
        ? this.llamaTrunk(idx, 0, undefined, null, [], []).x // after the final RMSNorm
        : this.layerNorm(this.blocks(idx), 'transformer.ln_f');
      return tf.reshape(x, [B, T, this.config.nEmbd]) as tf.Tensor3D;
    });
  }

  /** A full forward pass takes at most blockSize tokens (learned positions, the causal mask). */
  private checkLength(T: number): void {
    const { blockSize } = this.config;
    if (T > blockSize) throw new RangeError(`GPT.forward: sequence length ${T} exceeds blockSize ${blockSize}`);
  }

  /**
   * Mean cross-entropy of next-token `targets` (int32 [B, T]) under the logits of `idx`,
   * over positions where `mask` (float [B, T], 1 or 0) is 1; all positions without a mask.
   */
  loss(idx: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => {
      const { logits } = this.forward(idx);
      const nll = GPT.tokenNll(logits, targets); // [B, T]
      if (!mask) return tf.mean(nll);
      const m = tf.cast(mask, 'float32');
      return tf.div(tf.sum(tf.mul(nll, m)), tf.maximum(tf.sum(m), 1));
    });
  }

  /** log p(target) per position, from logits [B, T, V] and int32 targets [B, T]: returns [B, T]. */
  static tokenLogprobs(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const [B, T, V] = logits.shape;
      const flat = tf.reshape(logits, [B * T, V]) as tf.Tensor2D;
      return tf.reshape(pickedLogSoftmax(flat, tf.reshape(targets, [B * T]) as tf.Tensor1D), [B, T]);
    });
  }

  /** Negative log-likelihood per position [B, T]. */
  static tokenNll(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.neg(GPT.tokenLogprobs(logits, targets)));
  }

  /** Empty KV cache for `batch` rows; `padding[b]` leading columns of row b will be padding. */
  createCache(batch: number, padding?: number[]): KVCache {
    const pad = padding ?? new Array<number>(batch).fill(0);
    if (pad.length !== batch) throw new RangeError(`createCache: padding has ${pad.length} rows, batch is ${batch}`);
    return new KVCache(batch, pad);
  }

  /**
   * Feed new tokens idx (int32 [B, t]) after those already in `cache`; appends their keys and
   * values and returns logits [B, t, V]. The cache may hold at most blockSize columns.
   */
  forwardCached(idx: tf.Tensor2D, cache: KVCache): tf.Tensor3D {
    const [B, t] = idx.shape;
    const { blockSize, nEmbd: C, vocabSize: V, nLayer } = this.config;
    if (B !== cache.batch) throw new RangeError(`forwardCached: batch ${B} does not match cache batch ${cache.batch}`);
    const P = cache.length;
    const L = P + t;
    if (L > blockSize)
      throw new RangeError(
        `forwardCached: cache would hold ${L} columns, more than blockSize ${blockSize}; crop and re-prefill`,
      );
    const layout = this.useAttentionKernel() ? 'rows' : 'heads';
    if (P > 0 && cache.layout !== layout)
      throw new Error(
        `forwardCached: the cache holds ${cache.layout} but this backend needs ${layout}; start a new cache`,
      );
    const newKeys: tf.Tensor[] = [];
    const newValues: tf.Tensor[] = [];
    const logits = tf.tidy(() => {
      if (this.llama) {
        const { x } = this.llamaTrunk(idx, P, cache.padding, cache, newKeys, newValues);
        return tf.reshape(this.llamaHead(x, cache), [B, t, V]) as tf.Tensor3D;
      }
      const anyPad = cache.padding.some((p) => p > 0);
      // Positions of the new columns: column j of row b is position max(0, j - padding[b]).
      let pos: tf.Tensor; // broadcastable to [B, t, C]
      if (!anyPad) pos = tf.slice(this.p('transformer.wpe.weight'), [P, 0], [t, C]);
      else {
        const ids = new Int32Array(B * t);
        for (let b = 0; b < B; b++) for (let j = 0; j < t; j++) ids[b * t + j] = Math.max(0, P + j - cache.padding[b]);
        pos = tf.reshape(tf.gather(this.p('transformer.wpe.weight'), tf.tensor1d(ids, 'int32')), [B, t, C]);
      }
      let x = tf.reshape(tf.add(tf.reshape(this.embedTokens(idx), [B, t, C]), pos), [B * t, C]) as tf.Tensor2D;
      const padding = anyPad ? cache.padding : undefined;
      const bias = layout === 'heads' ? this.attentionBias(B, t, L, padding) : null;
      for (let l = 0; l < nLayer; l++) {
        const h = `transformer.h.${l}.`;
        const qkv = this.linear(this.layerNorm(x, h + 'ln_1'), h + 'attn.c_attn');
        if (layout === 'rows') {
          let kk = tf.reshape(tf.slice(qkv, [0, C], [B * t, C]), [B, t, C]) as tf.Tensor3D;
          let vv = tf.reshape(tf.slice(qkv, [0, 2 * C], [B * t, C]), [B, t, C]) as tf.Tensor3D;
          if (P > 0) {
            kk = tf.concat([cache.keys[l] as tf.Tensor3D, kk], 1); // [B, L, C]
            vv = tf.concat([cache.values[l] as tf.Tensor3D, vv], 1);
          }
          newKeys.push(tf.keep(kk));
          newValues.push(tf.keep(vv));
          const y = cachedAttention(qkv, kk, vv, this.config.nHead, padding); // [B·t, C]
          x = tf.add(x, this.linear(y, h + 'attn.c_proj'));
        } else {
          const heads = this.qkvHeads(qkv, B, t);
          let kT = heads.kT; // [B, nh, hs, t]
          let vv = heads.v; // [B, nh, t, hs]
          if (P > 0) {
            kT = tf.concat([cache.keys[l] as tf.Tensor4D, kT], 3); // [B, nh, hs, L]
            vv = tf.concat([cache.values[l] as tf.Tensor4D, vv], 2); // [B, nh, L, hs]
          }
          newKeys.push(tf.keep(kT));
          newValues.push(tf.keep(vv));
          x = tf.add(x, this.attend(heads.q, kT, vv, bias!, l));
        }
        x = tf.add(x, this.mlp(this.layerNorm(x, h + 'ln_2'), l));
      }
      return tf.reshape(this.head(x, cache).logits, [B, t, V]) as tf.Tensor3D;
    });
    for (const old of [...cache.keys, ...cache.values]) old.dispose();
    cache.keys = newKeys;
    cache.values = newValues;
    cache.layout = layout;
    cache.length = L;
    return logits;
  }

  // ---------------------------------------------------------------- Llama

  /** RMSNorm of x [N, C] with weight `name.weight` (HF LlamaRMSNorm). */
  private rmsNorm(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const w = this.p(name + '.weight');
    const ms = tf.mean(tf.square(x), -1, true); // [N, 1]
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, this.config.layerNormEps))), w);
  }

  /**
   * cos and signed sin of the rotary angles of new columns P..P+t−1 (row b's positions count
   * from its first real token: max(0, j − padding[b])), shaped [B|1, t, 1, hs] to broadcast
   * over [B, t, heads, hs]. The sin table is [−sin, sin] so rotate_half(x)·sin = [x₂, x₁]·sinS.
   */
  private rope(B: number, t: number, P: number, padding?: readonly number[]): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
    const hs = this.config.nEmbd / this.config.nHead;
    const half = hs / 2;
    const theta = this.config.ropeTheta ?? DEFAULT_ROPE_THETA;
    const rows = padding ? B : 1;
    const cos = new Float32Array(rows * t * hs);
    const sin = new Float32Array(rows * t * hs);
    const invFreq = Array.from({ length: half }, (_, i) => 1 / theta ** ((2 * i) / hs));
    for (let b = 0; b < rows; b++)
      for (let j = 0; j < t; j++) {
        const pos = Math.max(0, P + j - (padding ? padding[b] : 0));
        const o = (b * t + j) * hs;
        for (let i = 0; i < half; i++) {
          const a = pos * invFreq[i];
          cos[o + i] = cos[o + half + i] = Math.cos(a);
          sin[o + i] = -Math.sin(a);
          sin[o + half + i] = Math.sin(a);
        }
      }
    return { cos: tf.tensor4d(cos, [rows, t, 1, hs]), sin: tf.tensor4d(sin, [rows, t, 1, hs]) };
  }

  /** x [B, t, heads, hs] rotated: x·cos + [x₂, x₁]·sinS (HF `apply_rotary_pos_emb`). */
  private applyRope(x: tf.Tensor4D, rope: { cos: tf.Tensor4D; sin: tf.Tensor4D }): tf.Tensor4D {
    const [x1, x2] = tf.split(x, 2, 3);
    return tf.add(tf.mul(x, rope.cos), tf.mul(tf.concat([x2, x1], 3), rope.sin));
  }

  /**
   * Llama attention of rotated q [B, t, nh, hs], k and v [B, t, nkv, hs] through our wasm kernel
   * (as GPT-2's): each kv head is repeated for its rep = nh/nkv query heads (HF `repeat_kv`) and
   * q, k, v are laid side by side as the fused rows [B·t, 3C] the kernel reads. With a cache, the
   * repeated keys and values [B, L, C] are kept (rows layout). Returns y [B·t, C].
   */
  private llamaKernelAttention(
    q: tf.Tensor4D,
    k: tf.Tensor4D,
    v: tf.Tensor4D,
    l: number,
    P: number,
    padding: readonly number[] | undefined,
    cache: KVCache | null,
    newKeys: tf.Tensor[],
    newValues: tf.Tensor[],
  ): tf.Tensor2D {
    const [B, t, nh, hs] = q.shape;
    const nkv = k.shape[2];
    const C = nh * hs;
    const repeat = (z: tf.Tensor4D): tf.Tensor2D =>
      tf.reshape(nkv === nh ? z : tf.tile(tf.reshape(z, [B * t, nkv, 1, hs]), [1, 1, nh / nkv, 1]), [B * t, C]);
    const kr = repeat(k);
    const vr = repeat(v);
    const qkv = tf.concat([tf.reshape(q, [B * t, C]), kr, vr], 1) as tf.Tensor2D; // [B·t, 3C]
    if (!cache) return selfAttention(qkv, B, t, nh);
    let kk = tf.reshape(kr, [B, t, C]) as tf.Tensor3D;
    let vv = tf.reshape(vr, [B, t, C]) as tf.Tensor3D;
    if (P > 0) {
      kk = tf.concat([cache.keys[l] as tf.Tensor3D, kk], 1); // [B, L, C]
      vv = tf.concat([cache.values[l] as tf.Tensor3D, vv], 1);
    }
    newKeys.push(tf.keep(kk));
    newValues.push(tf.keep(vv));
    return cachedAttention(qkv, kk, vv, nh, padding);
  }

  /**
   * Llama blocks over new tokens idx [B, t] after P cached columns; returns x after the final
   * norm, [B·t, C]. With a cache, appends each layer's keys and values to newKeys/newValues
   * (kept): in the 'heads' layout (TF.js ops) kT [B, nkv, hs, L] and values [B, nkv, L, hs],
   * unrepeated; in the 'rows' layout (our kernel) see `llamaKernelAttention`.
   */
  private llamaTrunk(
    idx: tf.Tensor2D,
    P: number,
    padding: readonly number[] | undefined,
    cache: KVCache | null,
    newKeys: tf.Tensor[],
    newValues: tf.Tensor[],
  ): { x: tf.Tensor2D } {
    const [B, t] = idx.shape;
    const { nEmbd: C, nHead: nh, nLayer } = this.config;
    const nkv = kvHeads(this.config);
    const hs = C / nh;
    const rep = nh / nkv;
    const L = P + t;
    const pad = padding?.some((p) => p > 0) ? padding : undefined;
    const rope = this.rope(B, t, P, pad);
    const kernel = this.useAttentionKernel();
    const bias = kernel ? null : llamaBias(B, t, L, pad);
    let x = this.embedTokens(idx);
    for (let l = 0; l < nLayer; l++) {
      const h = `model.layers.${l}.`;
      const a = this.rmsNorm(x, h + 'input_layernorm');
      const q = this.applyRope(tf.reshape(this.linear(a, h + 'self_attn.q_proj'), [B, t, nh, hs]), rope);
      const k = this.applyRope(tf.reshape(this.linear(a, h + 'self_attn.k_proj'), [B, t, nkv, hs]), rope);
      const v = tf.reshape(this.linear(a, h + 'self_attn.v_proj'), [B, t, nkv, hs]) as tf.Tensor4D;
      if (kernel) {
        const y = this.llamaKernelAttention(q, k, v, l, P, pad, cache, newKeys, newValues);
        x = tf.add(x, this.linear(y, h + 'self_attn.o_proj'));
      } else {
        // Queries grouped by their kv head: [B, nh, t, hs] → [B, nkv, rep·t, hs] (heads are kv-major).
        const qg = tf.reshape(tf.mul(tf.transpose(q, [0, 2, 1, 3]), 1 / Math.sqrt(hs)), [B, nkv, rep * t, hs]);
        let kT = tf.transpose(k, [0, 2, 3, 1]) as tf.Tensor4D; // [B, nkv, hs, t]
        let vv = tf.transpose(v, [0, 2, 1, 3]) as tf.Tensor4D; // [B, nkv, t, hs]
        if (cache) {
          if (P > 0) {
            kT = tf.concat([cache.keys[l] as tf.Tensor4D, kT], 3);
            vv = tf.concat([cache.values[l] as tf.Tensor4D, vv], 2);
          }
          newKeys.push(tf.keep(kT));
          newValues.push(tf.keep(vv));
        }
        const scores = tf.add(tf.reshape(matMul(qg, kT), [B, nh, t, L]), bias!); // [B, nh, t, L]
        const probs = tf.reshape(tf.softmax(scores, -1), [B, nkv, rep * t, L]);
        const y = tf.reshape(matMul(probs, vv), [B, nh, t, hs]);
        const merged = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * t, C]) as tf.Tensor2D;
        x = tf.add(x, this.linear(merged, h + 'self_attn.o_proj'));
      }
      const m = this.rmsNorm(x, h + 'post_attention_layernorm');
      const gate = this.linear(m, h + 'mlp.gate_proj');
      const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), this.linear(m, h + 'mlp.up_proj')) as tf.Tensor2D; // SwiGLU
      x = tf.add(x, this.linear(act, h + 'mlp.down_proj'));
    }
    return { x: this.rmsNorm(x, 'model.norm') };
  }

  /** Logits [B·t, V] of hidden [B·t, C] (after the final norm): tied to embed_tokens or lm_head. */
  private llamaHead(hidden: tf.Tensor2D, cache?: KVCache): tf.Tensor2D {
    if (!tiedHead(this.config)) return this.linear(hidden, 'lm_head');
    return matMul(hidden, this.tiedHeadT('model.embed_tokens.weight', cache));
  }

  private llamaForward(idx: tf.Tensor2D, opts: { returnHidden?: boolean }): ForwardOutput {
    const [B, T] = idx.shape;
    const { nEmbd: C, vocabSize: V } = this.config;
    return tf.tidy(() => {
      const { x } = this.llamaTrunk(idx, 0, undefined, null, [], []);
      const out: ForwardOutput = { logits: tf.reshape(this.llamaHead(x), [B, T, V]) };
      if (opts.returnHidden) out.hidden = tf.reshape(x, [B, T, C]);
      return out;
    });
  }

  /**
   * Replace all weights. Checks every name and shape (and that values are finite-sized)
   * before touching any variable, so a failed load leaves the model as it was.
   */
  setWeights(map: Map<string, tf.Tensor>): void {
    const expected = parameterShapes(this.config);
    const missing = [...expected.keys()].filter((n) => !map.has(n));
    const unknown = [...map.keys()].filter((n) => !expected.has(n));
    if (missing.length || unknown.length) {
      const parts: string[] = [];
      if (missing.length)
        parts.push(
          `missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`,
        );
      if (unknown.length)
        parts.push(
          `unexpected ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}`,
        );
      throw new ModelLoadError(
        `Weights do not match this GPT config (${parts.join('; ')}). Check that config.json belongs to these weights.`,
      );
    }
    for (const [name, shape] of expected) {
      const t = map.get(name)!;
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new ModelLoadError(
          `Weight ${name} has shape [${t.shape}], the config needs [${shape}]. Check that config.json belongs to these weights.`,
        );
      }
      if (t.dtype !== 'float32') throw new ModelLoadError(`Weight ${name} has dtype ${t.dtype}, expected float32.`);
    }
    for (const [name, v] of this.params) v.assign(map.get(name)!);
  }

  /** Deep copy of the base weights with its own variables (e.g. a frozen reference: clone({ trainable: false })); adapters are not copied. */
  clone(opts: { trainable?: boolean; namePrefix?: string } = {}): GPT {
    const copy = new GPT(this.config, {
      trainable: opts.trainable ?? this.trainable,
      namePrefix: opts.namePrefix,
      init: 'zeros', // every value is overwritten below
    });
    for (const [name, v] of this.params) copy.params.get(name)!.assign(v);
    return copy;
  }

  dispose(): void {
    this.lora?.dispose();
    this.lora = null;
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.causalBias?.dispose();
  }
}
