/**
 * The Llama family as SmolLM2 uses it: the `arch: 'llama'` path of `GPT` (./gpt.ts), which owns the
 * weights, the LoRA-aware projections and the KV cache and hands its Llama configs to `Llama` here.
 *
 * Follows Hugging Face `models/llama/modeling_llama.py` (Touvron et al. 2023, "LLaMA"): RMSNorm
 * (Zhang & Sennrich 2019; weight only, x·rsqrt(mean(x²) + eps)·w), rotary positions (Su et al.
 * 2021, "RoFormer"; HF's rotate_half convention: x·cos + [−x₂, x₁]·sin with inv_freq = θ^(−2i/d)),
 * a SwiGLU MLP (Shazeer 2020: down(silu(gate(x))·up(x))), grouped-query attention (Ainslie et al.
 * 2023: kv head ⌊h / (nHead/nKvHead)⌋ serves query head h), no biases, tied or untied `lm_head`.
 * Names are LlamaForCausalLM's; every projection (`*_proj.weight`, an untied `lm_head.weight`) is
 * held as [in, out] here (x @ W, no transposed matMul) while HF files store nn.Linear's [out, in]:
 * weights.ts converts on import and export. Llama attention uses our kernel where GPT-2's does
 * (kv heads repeated for their query heads), TF.js ops elsewhere (queries grouped per kv head).
 */
import * as tf from '@tensorflow/tfjs-core';
import { archOf, DEFAULT_ROPE_THETA, kvHeads, MASK_VALUE, tiedHead, type GPTConfig } from './config';
import { ModelLoadError } from './errors';
import { cachedAttention, selfAttention } from './kernels/attention-kernel';
import { linearFrozen, matMul } from './ops';
import type { KVCache } from './kv-cache';

/**
 * HF names and shapes of a Llama config's parameters, in a fixed order; projections as held here,
 * [in, out] (HF files hold their transpose; see `isHfTransposed`).
 */
export function llamaParameterShapes(config: GPTConfig): Map<string, number[]> {
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

/** The checks a Llama config needs beyond GPT-2's (kv heads, MLP width, RoPE base, even head size). */
export function validateLlamaConfig(c: GPTConfig): void {
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

/**
 * Llama's additive mask [B|1, 1, t, L] for queries at columns L−t..L−1: causal, plus
 * `padding[b]` masked leading key columns of row b. Built per call in JS (t·L values), so no
 * [context, context] tensor is kept.
 */
function llamaBias(B: number, t: number, L: number, padding?: readonly number[]): tf.Tensor4D {
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

/** What the Llama path uses of its GPT: the config, weights, projections (LoRA included), embeddings. */
export interface LlamaHost {
  readonly config: GPTConfig;
  /** The variable of a parameter by its HF name. */
  param(name: string): tf.Variable;
  /** x @ W of the module `name` plus its LoRA update (`GPT.linear`). */
  linear(x: tf.Tensor2D, name: string): tf.Tensor2D;
  /** Token embeddings of idx [B, T] as [B·T, C]. */
  embedTokens(idx: tf.Tensor2D): tf.Tensor2D;
  /** The embedding `name` transposed to [C, V] for a tied head (kept on `cache` when given). */
  tiedHeadT(name: string, cache?: KVCache): tf.Tensor2D;
  /** Whether attention runs in our wasm kernel (else TF.js ops). */
  useAttentionKernel(): boolean;
  /** Whether the base weights are frozen (LoRA): their products then skip dW (`linearFrozen`). */
  baseFrozen(): boolean;
}

/** Forward passes of a Llama model whose weights its host (a `GPT`) holds. */
export class Llama {
  constructor(private readonly host: LlamaHost) {}

  /**
   * Full forward pass of idx [B, T] (inside the caller's tidy): the hidden state after the final
   * norm [B·T, C] and the logits [B·T, V].
   */
  forward(idx: tf.Tensor2D): { hidden: tf.Tensor2D; logits: tf.Tensor2D } {
    const { x } = this.trunk(idx, 0, undefined, null, [], []);
    return { hidden: x, logits: this.head(x) };
  }

  /** Logits [B·t, V] of hidden [B·t, C] (after the final norm): tied to embed_tokens or lm_head. */
  head(hidden: tf.Tensor2D, cache?: KVCache): tf.Tensor2D {
    if (!tiedHead(this.host.config)) return this.host.linear(hidden, 'lm_head');
    const headT = this.host.tiedHeadT('model.embed_tokens.weight', cache);
    return this.host.baseFrozen() ? linearFrozen(hidden, headT) : matMul(hidden, headT);
  }

  /**
   * Llama blocks over new tokens idx [B, t] after P cached columns; returns x after the final
   * norm, [B·t, C]. With a cache, appends each layer's keys and values to newKeys/newValues
   * (kept): in the 'heads' layout (TF.js ops) kT [B, nkv, hs, L] and values [B, nkv, L, hs],
   * unrepeated; in the 'rows' layout (our kernel) see `kernelAttention`.
   */
  trunk(
    idx: tf.Tensor2D,
    P: number,
    padding: readonly number[] | undefined,
    cache: KVCache | null,
    newKeys: tf.Tensor[],
    newValues: tf.Tensor[],
  ): { x: tf.Tensor2D } {
    const host = this.host;
    const [B, t] = idx.shape;
    const { nEmbd: C, nHead: nh, nLayer } = host.config;
    const nkv = kvHeads(host.config);
    const hs = C / nh;
    const rep = nh / nkv;
    const L = P + t;
    const pad = padding?.some((p) => p > 0) ? padding : undefined;
    const rope = this.rope(B, t, P, pad);
    const kernel = host.useAttentionKernel();
    const bias = kernel ? null : llamaBias(B, t, L, pad);
    let x = host.embedTokens(idx);
    for (let l = 0; l < nLayer; l++) {
      const h = `model.layers.${l}.`;
      const a = this.rmsNorm(x, h + 'input_layernorm');
      const q = applyRope(tf.reshape(host.linear(a, h + 'self_attn.q_proj'), [B, t, nh, hs]), rope);
      const k = applyRope(tf.reshape(host.linear(a, h + 'self_attn.k_proj'), [B, t, nkv, hs]), rope);
      const v = tf.reshape(host.linear(a, h + 'self_attn.v_proj'), [B, t, nkv, hs]) as tf.Tensor4D;
      if (kernel) {
        const y = kernelAttention(q, k, v, l, P, pad, cache, newKeys, newValues);
        x = tf.add(x, host.linear(y, h + 'self_attn.o_proj'));
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
        x = tf.add(x, host.linear(merged, h + 'self_attn.o_proj'));
      }
      const m = this.rmsNorm(x, h + 'post_attention_layernorm');
      const gate = host.linear(m, h + 'mlp.gate_proj');
      const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), host.linear(m, h + 'mlp.up_proj')) as tf.Tensor2D; // SwiGLU
      x = tf.add(x, host.linear(act, h + 'mlp.down_proj'));
    }
    return { x: this.rmsNorm(x, 'model.norm') };
  }

  /** RMSNorm of x [N, C] with weight `name.weight` (HF LlamaRMSNorm). */
  private rmsNorm(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const w = this.host.param(name + '.weight');
    const ms = tf.mean(tf.square(x), -1, true); // [N, 1]
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, this.host.config.layerNormEps))), w);
  }

  /**
   * cos and signed sin of the rotary angles of new columns P..P+t−1 (row b's positions count
   * from its first real token: max(0, j − padding[b])), shaped [B|1, t, 1, hs] to broadcast
   * over [B, t, heads, hs]. The sin table is [−sin, sin] so rotate_half(x)·sin = [x₂, x₁]·sinS.
   */
  private rope(B: number, t: number, P: number, padding?: readonly number[]): Rope {
    const { config } = this.host;
    const hs = config.nEmbd / config.nHead;
    const half = hs / 2;
    const theta = config.ropeTheta ?? DEFAULT_ROPE_THETA;
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
}

/** Rotary tables of `Llama.rope`. */
type Rope = { cos: tf.Tensor4D; sin: tf.Tensor4D };

/** x [B, t, heads, hs] rotated: x·cos + [x₂, x₁]·sinS (HF `apply_rotary_pos_emb`). */
function applyRope(x: tf.Tensor4D, rope: Rope): tf.Tensor4D {
  const [x1, x2] = tf.split(x, 2, 3);
  return tf.add(tf.mul(x, rope.cos), tf.mul(tf.concat([x2, x1], 3), rope.sin));
}

/**
 * Llama attention of rotated q [B, t, nh, hs], k and v [B, t, nkv, hs] through our wasm kernel
 * (as GPT-2's): each kv head is repeated for its rep = nh/nkv query heads (HF `repeat_kv`) and
 * q, k, v are laid side by side as the fused rows [B·t, 3C] the kernel reads. With a cache, the
 * repeated keys and values [B, L, C] are kept (rows layout). Returns y [B·t, C].
 */
function kernelAttention(
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
