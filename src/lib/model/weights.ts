/**
 * Weights on disk: safetensors (https://github.com/huggingface/safetensors, "format" section)
 * and a Hugging Face style `config.json`: GPT-2 (`GPT2Config`) or Llama (`LlamaConfig`, fields
 * as in transformers `models/llama/configuration_llama.py`).
 *
 * Layouts: GPT-2's Conv1D weights are [in, out] in HF files and here. Llama's nn.Linear weights
 * are [out, in] in HF files and [in, out] here (gpt.ts `isHfTransposed`); `hfToModelTensors` and
 * `modelToHfTensors` transpose them on the way in and out.
 *
 * safetensors layout: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { str: str } }`,
 * then the data section; offsets are relative to the start of the data section.
 *
 * We read F32, F16, BF16 and F64 (as float32) and write F32 or F16. float16 conversion is
 * our own (round to nearest, ties to even), so results are the same on every platform.
 */
import * as tf from '@tensorflow/tfjs-core';
import { archOf, DEFAULT_LAYER_NORM_EPS, DEFAULT_ROPE_THETA, type GPTConfig } from './config';
import { ModelLoadError, WeightsFormatError } from './errors';
import { isHfTransposed, kvHeads, parameterShapes, tiedHead, type GPT } from './gpt';

export type FloatDtype = 'F32' | 'F16' | 'BF16' | 'F64';
export type WriteDtype = 'F32' | 'F16';

export const DTYPE_BYTES: Record<FloatDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
/** Dtypes of the spec that we recognise but do not read (weights here are floats). */
const OTHER_SPEC_DTYPES = new Set(['BOOL', 'U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'F8_E4M3', 'F8_E5M2']);
/** Headers larger than this are refused (the reference implementation uses 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor as plain numbers: values always float32 in memory. */
export interface TensorRecord {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorRecord & { dtype: FloatDtype }>;
  metadata: Record<string, string>;
}

// ---------------------------------------------------------------- float16 / bfloat16

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE 754 binary16 bits, round to nearest, ties to even; overflow → ±Inf. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // NaN keeps quiet bit / Inf
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    // Subnormal half (or zero): shift the mantissa with the implicit 1 into place.
    if (e < -10) return sign; // too small: ±0
    mant |= 0x800000;
    const shift = 14 - e; // 14..24
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half; // a carry into the exponent field gives the smallest normal, correctly
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // carry may round up to Inf: correct
  return sign | half;
}

/** IEEE 754 binary16 bits → number. */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function bf16BitsToFloat32(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

// ---------------------------------------------------------------- reading

/** `file` names the file in the message when the caller knows it (`my-model.safetensors is not a valid …`). */
function failWith(msg: string, file?: string): never {
  throw new WeightsFormatError(`${file ? `${file} is not` : 'Not'} a valid safetensors file: ${msg}`);
}

export interface HeaderEntry {
  dtype: FloatDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parse and validate the header strictly (dtypes, shapes, byte ranges within the file, no overlaps)
 * without reading any value; returns entries and the start of the data section.
 */
export function readSafetensorsHeader(bytes: Uint8Array, file?: string): SafetensorsHeader {
  return parseSafetensorsHeader(bytes, bytes.byteLength, file);
}

export interface SafetensorsHeader {
  entries: Map<string, HeaderEntry>;
  metadata: Record<string, string>;
  dataStart: number;
}

/**
 * The header check of `readSafetensorsHeader` on the first bytes of a file of `fileLength` bytes:
 * `prefix` must hold at least the 8-byte length and the JSON (all of it, when shorter), so a
 * file read in slices (./safetensors-blob.ts) is checked exactly as a whole one.
 */
export function parseSafetensorsHeader(prefix: Uint8Array, fileLength: number, file?: string): SafetensorsHeader {
  const fail: (msg: string) => never = (msg) => failWith(msg, file);
  if (fileLength < 8) fail(`the file has ${fileLength} bytes, fewer than the 8-byte header length.`);
  const dv = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > fileLength - 8)
    fail(
      `header length ${n} goes beyond the end of the file (${fileLength} bytes); the file is truncated or not safetensors.`,
    );
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} is larger than ${MAX_HEADER_BYTES} bytes.`);
  const bytes = prefix;
  if (prefix.byteLength < 8 + n) fail(`only ${prefix.byteLength} of the header's ${8 + n} bytes were read.`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`the header is not valid UTF-8 JSON (${(e as Error).message}).`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('the header is not a JSON object.');
  const dataStart = 8 + n;
  const dataLen = fileLength - dataStart;
  const entries = new Map<string, HeaderEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        fail('__metadata__ must be an object of strings.');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} must be a string, got ${typeof v}.`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    if (typeof raw !== 'object' || raw === null) fail(`tensor "${name}" has no {dtype, shape, data_offsets} entry.`);
    const { dtype, shape, data_offsets: offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string') fail(`tensor "${name}" has no dtype.`);
    if (!(dtype in DTYPE_BYTES)) {
      if (OTHER_SPEC_DTYPES.has(dtype))
        fail(`tensor "${name}" has dtype ${dtype}; weights must be F32, F16, BF16 or F64.`);
      fail(`tensor "${name}" has unknown dtype "${dtype}".`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor "${name}" has shape ${JSON.stringify(shape)}; it must be a list of non-negative integers.`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(
        `tensor "${name}" has data_offsets ${JSON.stringify(offsets)}; they must be [begin, end] non-negative integers.`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLen)
      fail(`tensor "${name}" has data_offsets [${begin}, ${end}] outside the data section of ${dataLen} bytes.`);
    const elems = (shape as number[]).reduce((a, b) => a * b, 1);
    const want = elems * DTYPE_BYTES[dtype as FloatDtype];
    if (want !== end - begin)
      fail(
        `tensor "${name}" has shape [${shape}] and dtype ${dtype} (${want} bytes) but data_offsets span ${end - begin} bytes.`,
      );
    entries.set(name, { dtype: dtype as FloatDtype, shape: shape as number[], begin, end });
  }
  const sorted = [...entries.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  for (let i = 1; i < sorted.length; i++) {
    const [pn, p] = sorted[i - 1];
    const [cn, c] = sorted[i];
    if (c.begin < p.end) fail(`tensors "${pn}" [${p.begin}, ${p.end}] and "${cn}" [${c.begin}, ${c.end}] overlap.`);
  }
  return { entries, metadata, dataStart };
}

/** Decode and validate a safetensors file; every value is converted to float32 and checked finite. */
export function readSafetensors(bytes: Uint8Array, file?: string): SafetensorsFile {
  const { entries, metadata, dataStart } = readSafetensorsHeader(bytes, file);
  const fail: (msg: string) => never = (msg) => failWith(msg, file);
  const tensors: SafetensorsFile['tensors'] = new Map();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const [name, e] of entries) {
    const n = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
    const data = new Float32Array(n);
    const off = dataStart + e.begin;
    if (e.dtype === 'F32') for (let i = 0; i < n; i++) data[i] = dv.getFloat32(off + 4 * i, true);
    else if (e.dtype === 'F64') for (let i = 0; i < n; i++) data[i] = dv.getFloat64(off + 8 * i, true);
    else if (e.dtype === 'F16')
      for (let i = 0; i < n; i++) data[i] = float16BitsToFloat32(dv.getUint16(off + 2 * i, true));
    else for (let i = 0; i < n; i++) data[i] = bf16BitsToFloat32(dv.getUint16(off + 2 * i, true));
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(data[i])) {
        fail(
          `tensor "${name}" holds ${data[i]} at flat index ${i}; weights must be finite (the model diverged or the file is corrupt).`,
        );
      }
    }
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

// ---------------------------------------------------------------- writing

/**
 * Encode tensors as safetensors, in the given order, each in `dtype`.
 * The header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
 */
export function writeSafetensors(
  tensors: Map<string, TensorRecord>,
  dtype: WriteDtype = 'F32',
  metadata?: Record<string, string>,
): Uint8Array {
  const size = DTYPE_BYTES[dtype];
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length)
      throw new WeightsFormatError(
        `Cannot write "${name}": shape [${t.shape}] has ${n} elements but ${t.data.length} values were given.`,
      );
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + n * size] };
    offset += n * size;
  }
  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  if (padded !== headerBytes.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(headerBytes);
    headerBytes = p;
  }
  const out = new Uint8Array(8 + padded + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(padded), true);
  out.set(headerBytes, 8);
  let pos = 8 + padded;
  for (const t of tensors.values()) {
    if (dtype === 'F32') {
      for (let i = 0; i < t.data.length; i++) dv.setFloat32(pos + 4 * i, t.data[i], true);
    } else {
      for (let i = 0; i < t.data.length; i++) dv.setUint16(pos + 2 * i, float32ToFloat16Bits(t.data[i]), true);
    }
    pos += t.data.length * size;
  }
  return out;
}

// ---------------------------------------------------------------- models

/** Read every parameter of a model back to JS. */
export async function modelTensors(model: GPT): Promise<Map<string, TensorRecord>> {
  const out = new Map<string, TensorRecord>();
  for (const [name, v] of model.params) out.set(name, { shape: [...v.shape], data: (await v.data()) as Float32Array });
  return out;
}

/** Model weights as a safetensors file in HF names and layouts (F16 halves the download; F32 is exact). */
export async function saveModelSafetensors(
  model: GPT,
  dtype: WriteDtype = 'F16',
  metadata: Record<string, string> = {},
): Promise<Uint8Array> {
  return writeSafetensors(modelToHfTensors(model.config, await modelTensors(model)), dtype, {
    format: 'pt',
    ...metadata,
  });
}

/** The transpose of a 2-D record. */
export function transposeRecord(t: TensorRecord): TensorRecord {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { shape: [c, r], data: out };
}

/** Tensors as held by the model → HF names and layouts (Llama projections transposed to [out, in]). */
export function modelToHfTensors(config: GPTConfig, tensors: Map<string, TensorRecord>): Map<string, TensorRecord> {
  if (archOf(config) === 'gpt2') return tensors;
  const out = new Map<string, TensorRecord>();
  for (const [name, t] of tensors) out.set(name, isHfTransposed(config, name) ? transposeRecord(t) : t);
  return out;
}

/**
 * Shapes of a config's parameters as HF files store them (Llama projections [out, in]);
 * the names and order of `parameterShapes`.
 */
export function hfParameterShapes(config: GPTConfig): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [name, shape] of parameterShapes(config))
    out.set(name, isHfTransposed(config, name) ? [shape[1], shape[0]] : shape);
  return out;
}

/**
 * Map names of a Llama checkpoint to LlamaForCausalLM's: files written from `LlamaModel` lack
 * the `model.` prefix; a tied head's `lm_head.weight` (a copy of embed_tokens) is dropped;
 * `rotary_emb.inv_freq` is a buffer of older transformers versions, not a parameter.
 */
export function normalizeLlamaNames<T>(tensors: Map<string, T>, tied: boolean): Map<string, T> {
  const out = new Map<string, T>();
  for (const [name, t] of tensors) {
    if (name.endsWith('rotary_emb.inv_freq') || (tied && name === 'lm_head.weight')) continue;
    out.set(name.startsWith('model.') || name === 'lm_head.weight' ? name : `model.${name}`, t);
  }
  return out;
}

/** Map a checkpoint's tensor names to this app's for the config's architecture. */
export function normalizeHfNames<T>(config: GPTConfig, tensors: Map<string, T>): Map<string, T> {
  return archOf(config) === 'llama' ? normalizeLlamaNames(tensors, tiedHead(config)) : normalizeGpt2Names(tensors);
}

/** A checkpoint's tensors (HF names and layouts) → the model's names and layouts. */
export function hfToModelTensors<T extends TensorRecord>(
  config: GPTConfig,
  tensors: Map<string, T>,
): Map<string, TensorRecord> {
  const out = new Map<string, TensorRecord>();
  for (const [name, t] of normalizeHfNames(config, tensors))
    out.set(name, isHfTransposed(config, name) && t.shape.length === 2 ? transposeRecord(t) : t);
  return out;
}

/**
 * Map names of other GPT-2 checkpoints to ours: HF files written from `GPT2Model` lack the
 * `transformer.` prefix; `lm_head.weight` is tied to wte; `attn.bias` / `attn.masked_bias`
 * are causal-mask buffers of old transformers versions, not parameters.
 */
export function normalizeGpt2Names<T>(tensors: Map<string, T>): Map<string, T> {
  const out = new Map<string, T>();
  for (const [name, t] of tensors) {
    if (name === 'lm_head.weight' || /\.attn\.(masked_)?bias$/.test(name)) continue;
    out.set(name.startsWith('transformer.') ? name : `transformer.${name}`, t);
  }
  return out;
}

/**
 * Load a safetensors file into a model. The whole file is parsed and checked (format, finite
 * values, names, shapes) before any weight changes, so a failed load leaves the model untouched.
 */
export function loadSafetensorsIntoModel(model: GPT, bytes: Uint8Array, fileName?: string): SafetensorsFile {
  const file = readSafetensors(bytes, fileName);
  const named = hfToModelTensors(model.config, file.tensors);
  const map = new Map<string, tf.Tensor>();
  try {
    for (const [name, t] of named) map.set(name, tf.tensor(t.data, t.shape, 'float32'));
    model.setWeights(map);
  } finally {
    for (const t of map.values()) t.dispose();
  }
  return file;
}

// ---------------------------------------------------------------- config.json

/** Hugging Face GPT-2 `config.json`, plus our nanoGPT names so both kinds of tool read it. */
export interface HFGpt2Config {
  model_type: 'gpt2';
  architectures: string[];
  vocab_size: number;
  n_positions: number;
  n_ctx: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner: null;
  activation_function: 'gelu_new';
  layer_norm_epsilon: number;
  initializer_range: number;
  resid_pdrop: number;
  embd_pdrop: number;
  attn_pdrop: number;
  bos_token_id: number;
  eos_token_id: number;
  tie_word_embeddings: true;
  torch_dtype: 'float16' | 'float32';
  nanogpt: GPTConfig;
  [extra: string]: unknown;
}

/** Hugging Face Llama `config.json` (LlamaForCausalLM), plus our nanoGPT names. */
export interface HFLlamaConfig {
  model_type: 'llama';
  architectures: string[];
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  hidden_act: 'silu';
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: null;
  attention_bias: false;
  attention_dropout: number;
  mlp_bias: false;
  pretraining_tp: 1;
  tie_word_embeddings: boolean;
  initializer_range: number;
  bos_token_id: number;
  eos_token_id: number;
  use_cache: true;
  torch_dtype: 'float16' | 'float32';
  nanogpt: GPTConfig;
  [extra: string]: unknown;
}

/** The `config.json` of a model: GPT2Config or LlamaConfig by the config's architecture. */
export function configToHF(config: GPTConfig, eotId: number, dtype: WriteDtype = 'F16'): HFGpt2Config | HFLlamaConfig {
  if (archOf(config) === 'llama') return llamaConfigToHF(config, eotId, dtype);
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: config.vocabSize,
    n_positions: config.blockSize,
    n_ctx: config.blockSize,
    n_embd: config.nEmbd,
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: config.layerNormEps,
    initializer_range: 0.02,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    bos_token_id: eotId,
    eos_token_id: eotId,
    tie_word_embeddings: true,
    torch_dtype: dtype === 'F16' ? 'float16' : 'float32',
    nanogpt: { ...config },
  };
}

function llamaConfigToHF(config: GPTConfig, eotId: number, dtype: WriteDtype): HFLlamaConfig {
  return {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: config.vocabSize,
    hidden_size: config.nEmbd,
    intermediate_size: config.intermediateSize!,
    num_hidden_layers: config.nLayer,
    num_attention_heads: config.nHead,
    num_key_value_heads: kvHeads(config),
    head_dim: config.nEmbd / config.nHead,
    hidden_act: 'silu',
    max_position_embeddings: config.blockSize,
    rms_norm_eps: config.layerNormEps,
    rope_theta: config.ropeTheta ?? DEFAULT_ROPE_THETA,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    tie_word_embeddings: tiedHead(config),
    initializer_range: 0.02,
    bos_token_id: eotId,
    eos_token_id: eotId,
    use_cache: true,
    torch_dtype: dtype === 'F16' ? 'float16' : 'float32',
    nanogpt: { ...config },
  };
}

/** Architectures `configFromHF` reads, by `model_type`. */
export const SUPPORTED_MODEL_TYPES = ['gpt2', 'llama'] as const;

/** A positive integer field of config.json (or `fallback` when absent); WeightsFormatError otherwise. */
function intField(j: Record<string, unknown>, key: string, fallback?: unknown): number {
  const v = j[key] ?? fallback;
  // String() for numbers: JSON.stringify writes Infinity (1e400 in the file) as null.
  if (!Number.isInteger(v) || (v as number) <= 0)
    throw new WeightsFormatError(
      `config.json: "${key}" must be a positive integer, got ${typeof v === 'number' ? String(v) : JSON.stringify(v)}.`,
    );
  return v as number;
}

/** A positive number field of config.json (or `fallback` when absent). */
function positiveField(j: Record<string, unknown>, key: string, fallback: number): number {
  const v = j[key] ?? fallback;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))
    throw new WeightsFormatError(`config.json: "${key}" must be a positive number, got ${JSON.stringify(v)}.`);
  return v;
}

/**
 * Read a Llama `config.json` (LlamaConfig's fields and defaults). Refuses with ModelLoadError what
 * this model does not implement: rope_scaling, biases, an activation other than SiLU, a head_dim
 * other than hidden_size / num_attention_heads.
 */
function llamaConfigFromHF(j: Record<string, unknown>): GPTConfig {
  const act = j.hidden_act ?? 'silu';
  if (act !== 'silu')
    throw new ModelLoadError(
      `config.json has hidden_act "${String(act)}"; this Llama implementation supports "silu" only.`,
    );
  if (j.rope_scaling !== undefined && j.rope_scaling !== null)
    throw new ModelLoadError(
      `config.json has rope_scaling ${JSON.stringify(j.rope_scaling)}; this Llama implementation supports plain RoPE only (rope_scaling null).`,
    );
  for (const key of ['attention_bias', 'mlp_bias'])
    if (j[key] === true)
      throw new ModelLoadError(`config.json has ${key} true; this Llama implementation has no biases.`);
  const nEmbd = intField(j, 'hidden_size');
  const nHead = intField(j, 'num_attention_heads');
  const nKvHead = intField(j, 'num_key_value_heads', nHead);
  if (nEmbd % nHead !== 0)
    throw new WeightsFormatError(`config.json: hidden_size ${nEmbd} is not divisible by num_attention_heads ${nHead}.`);
  if (j.head_dim !== undefined && j.head_dim !== null && j.head_dim !== nEmbd / nHead)
    throw new ModelLoadError(
      `config.json has head_dim ${JSON.stringify(j.head_dim)}; this Llama implementation needs hidden_size / num_attention_heads = ${nEmbd / nHead}.`,
    );
  if ((nEmbd / nHead) % 2 !== 0)
    throw new ModelLoadError(`config.json: the head size ${nEmbd / nHead} must be even for rotary positions.`);
  if (nHead % nKvHead !== 0)
    throw new ModelLoadError(
      `config.json: num_attention_heads ${nHead} is not a multiple of num_key_value_heads ${nKvHead}.`,
    );
  const tie = j.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean')
    throw new WeightsFormatError(
      `config.json: "tie_word_embeddings" must be true or false, got ${JSON.stringify(tie)}.`,
    );
  return {
    arch: 'llama',
    vocabSize: intField(j, 'vocab_size'),
    blockSize: intField(j, 'max_position_embeddings', 2048),
    nLayer: intField(j, 'num_hidden_layers'),
    nHead,
    nEmbd,
    layerNormEps: positiveField(j, 'rms_norm_eps', 1e-6),
    nKvHead,
    intermediateSize: intField(j, 'intermediate_size'),
    ropeTheta: positiveField(j, 'rope_theta', DEFAULT_ROPE_THETA),
    tieWordEmbeddings: tie,
  };
}

/**
 * Read a `config.json` (ours or Hugging Face's): GPT-2 (`model_type` "gpt2" or absent) or Llama
 * ("llama"). Throws WeightsFormatError for a malformed field, ModelLoadError for what this app does
 * not implement.
 */
export function configFromHF(json: unknown): GPTConfig {
  if (typeof json !== 'object' || json === null) throw new WeightsFormatError('config.json is not a JSON object.');
  const j = json as Record<string, unknown>;
  if (j.model_type === 'llama') return llamaConfigFromHF(j);
  if (j.model_type !== undefined && j.model_type !== 'gpt2') {
    throw new ModelLoadError(
      `config.json has model_type ${JSON.stringify(j.model_type)}; only "gpt2" and "llama" models can be loaded (GPT2LMHeadModel, LlamaForCausalLM).`,
    );
  }
  if (j.activation_function !== undefined && j.activation_function !== 'gelu_new') {
    throw new WeightsFormatError(
      `config.json has activation_function "${String(j.activation_function)}"; this model implements "gelu_new" only.`,
    );
  }
  if (j.n_inner !== undefined && j.n_inner !== null && j.n_inner !== 4 * Number(j.n_embd)) {
    throw new WeightsFormatError(`config.json has n_inner ${String(j.n_inner)}; this model needs 4·n_embd.`);
  }
  const int = (key: string, fallback?: unknown): number => intField(j, key, fallback);
  const eps = j.layer_norm_epsilon ?? DEFAULT_LAYER_NORM_EPS;
  if (typeof eps !== 'number' || !(eps > 0))
    throw new WeightsFormatError(
      `config.json: "layer_norm_epsilon" must be a positive number, got ${JSON.stringify(eps)}.`,
    );
  const config: GPTConfig = {
    vocabSize: int('vocab_size'),
    blockSize: int('n_positions', j.n_ctx),
    nLayer: int('n_layer'),
    nHead: int('n_head'),
    nEmbd: int('n_embd'),
    layerNormEps: eps,
  };
  if (config.nEmbd % config.nHead !== 0)
    throw new WeightsFormatError(`config.json: n_embd ${config.nEmbd} is not divisible by n_head ${config.nHead}.`);
  return config;
}
