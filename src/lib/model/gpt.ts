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
 * `arch: 'llama'` builds the Llama family as SmolLM2 uses it (RMSNorm, RoPE, SwiGLU, grouped-query
 * attention): its forward passes live in ./llama.ts (class `Llama`, sources cited there); this class
 * keeps the weights and the projections (`linear`, with LoRA) of both, and fills their KV caches
 * (./kv-cache.ts).
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
import { archOf, kvHeads, MASK_VALUE, tiedHead, type GPTConfig } from './config';
import { ModelLoadError } from './errors';
import { Rng } from './rng';
import {
  attentionKernelAvailable,
  cachedAttention,
  cachedAttentionRows,
  RowCache,
  selfAttention,
} from './kernels/attention-kernel';
import { addLayerNorm, biasGelu, decodeLayerNormAvailable } from './kernels/layernorm-kernel';
import { embed, geluTanh, layerNorm, linear, linearFrozen, matMul, pickedLogSoftmax, transposeLast2 } from './ops';
import { LoraAdapters, type LoraSpec } from './lora';
import { isHfTransposed, Llama, llamaParameterShapes, validateLlamaConfig } from './llama';
import { KVCache } from './kv-cache';

export { isHfTransposed, KVCache, kvHeads, tiedHead };

/** Additive attention bias broadcastable to [B, nh, t, L] (see `GPT.attentionBias`). */
type AttentionBias = tf.Tensor;

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
  if (arch === 'llama') validateLlamaConfig(c);
}

export class GPT {
  readonly config: GPTConfig;
  readonly params = new Map<string, tf.Variable>();
  private readonly trainable: boolean;
  private readonly prefix: string;
  /** [blockSize, blockSize] additive causal mask: 0 on and below the diagonal, MASK_VALUE above.
   *  GPT-2 only; Llama builds its [t, L] mask per call (its context may be 8192). */
  private readonly causalBias: tf.Tensor2D | null = null;
  /** The Llama forward passes (./llama.ts) over this model's weights, or null for GPT-2. */
  private readonly llama: Llama | null;
  /** LoRA adapters on some projections (./lora.ts), or null. While present the base is frozen. */
  lora: LoraAdapters | null = null;

  constructor(config: GPTConfig, opts: GPTOptions = {}) {
    validateConfig(config);
    this.config = { ...config };
    this.trainable = opts.trainable ?? true;
    this.prefix = opts.namePrefix ?? `gpt${instanceCounter++}/`;
    this.llama =
      archOf(config) === 'llama'
        ? new Llama({
            config: this.config,
            param: (name) => this.p(name),
            linear: (x, name) => this.linear(x, name),
            embedTokens: (idx) => this.embedTokens(idx),
            tiedHeadT: (name, cache) => this.tiedHeadT(name, cache),
            useAttentionKernel: () => this.useAttentionKernel(),
            baseFrozen: () => this.lora !== null,
          })
        : null;
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
    return tf.tidy(() => {
      const { hidden, logits } = this.llama ? this.llama.forward(idx) : this.head(this.blocks(idx));
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
        ? this.llama.trunk(idx, 0, undefined, null, [], []).x // after the final RMSNorm
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
        const { x } = this.llama.trunk(idx, P, cache.padding, cache, newKeys, newValues);
        return tf.reshape(this.llama.head(x, cache), [B, t, V]) as tf.Tensor3D;
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
      const fused = layout === 'rows' && !this.lora && decodeLayerNormAvailable();
      if (P > 0 && fused !== (cache.rowData !== null))
        throw new Error('forwardCached: this cache was filled by the other decode path here; start a new cache');
      if (fused) return tf.reshape(this.decodeRows(x, B, t, cache, padding), [B, t, V]) as tf.Tensor3D;
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

  /**
   * forwardCached's GPT-2 blocks and head on the wasm backend (rows layout, no LoRA), from the
   * embedded input x [B·t, C]: each residual add and the LayerNorm after it are one call of our
   * kernel (kernels/layernorm-kernel.ts, the same bits as the TF.js ops), and keys and values are
   * appended to plain arrays (`cache.rowData`) instead of sliced and concatenated as tensors, and
   * the MLP's bias add and GELU take one kernel call and 2 TF.js kernels instead of 8: ~150 fewer
   * TF.js kernels per step for the bundled model. Returns logits [B·t, V].
   */
  private decodeRows(x0: tf.Tensor2D, B: number, t: number, cache: KVCache, padding?: readonly number[]): tf.Tensor2D {
    const { nEmbd: C, nLayer, nHead, layerNormEps: eps, blockSize } = this.config;
    const P = cache.length;
    // Keys and values stay in plain arrays that grow in place (no Slice or Concat kernels).
    if (P === 0) cache.rowData = Array.from({ length: nLayer }, () => new RowCache(B, C, Math.min(blockSize, 2 * t)));
    const rows = cache.rowData!;
    const vec = (name: string) => this.params.get(name) as tf.Tensor as tf.Tensor1D | undefined;
    const mat = (name: string) => this.p(name) as tf.Tensor as tf.Tensor2D;
    // r = x (+ y·W + bias of `proj`), then LayerNorm `ln` of r: { x: r, h }.
    const addNorm = (x: tf.Tensor2D, y: tf.Tensor2D | null, proj: string | null, ln: string) =>
      addLayerNorm(
        x,
        y && proj ? matMul(y, mat(proj + '.weight')) : null,
        proj ? (vec(proj + '.bias') ?? null) : null,
        vec(ln + '.weight')!,
        vec(ln + '.bias')!,
        eps,
      );
    let { x, h } = addNorm(x0, null, null, 'transformer.h.0.ln_1');
    for (let l = 0; l < nLayer; l++) {
      const pre = `transformer.h.${l}.`;
      const qkv = this.linear(h, pre + 'attn.c_attn');
      const y = cachedAttentionRows(qkv, rows[l], P, blockSize, nHead, padding); // [B·t, C]
      ({ x, h } = addNorm(x, y, pre + 'attn.c_proj', pre + 'ln_2'));
      const m = biasGelu(matMul(h, mat(pre + 'mlp.c_fc.weight')), vec(pre + 'mlp.c_fc.bias') ?? null);
      ({ x, h } = addNorm(
        x,
        m,
        pre + 'mlp.c_proj',
        l + 1 < nLayer ? `transformer.h.${l + 1}.ln_1` : 'transformer.ln_f',
      ));
    }
    return matMul(h, this.tiedHeadT('transformer.wte.weight', cache));
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
