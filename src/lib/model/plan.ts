/**
 * A memory and shape plan of a model, made from its `config.json` (and the safetensors header)
 * before a single tensor is allocated.
 *
 * Why: a config such as `"n_layer": 10000` used to be built first and checked later. On the wasm
 * backend the build ran the heap out of its 4 GiB ceiling: TF.js wasm's `_malloc` then returns 0,
 * the tensor is written over address 0 and every later op traps ("memory access out of bounds")
 * until the page reloads. Here the sizes are computed in closed form and compared with what the
 * backend can hold, and every refusal names the file and the field.
 *
 * Counts follow the GPT-2 layout of `parameterShapes` (./gpt.ts): per block two LayerNorms (4C),
 * c_attn (3C² + 3C), attn c_proj (C² + C), c_fc (4C² + 4C), mlp c_proj (4C² + C), so 12C² + 13C;
 * plus wte (V·C, tied with the head), wpe (T·C) and ln_f (2C). GPT-2 small: 124,439,808.
 * Llama (`parameterShapes`' llama layout): per block two RMSNorms (2C), q and o (2C²), k and v
 * (2·C·kv with kv = nKvHead·C/nHead), gate, up and down (3·C·I); plus embed_tokens (V·C), an
 * untied lm_head (V·C) and the final norm (C). SmolLM2-135M: 134,515,008. Llama has no learned
 * positions and no kept mask, so its context is capped only by what its KV cache needs.
 * The limits: TF.js wasm grows its heap up to `getHeapMax()` = 4 GiB − 64 KiB (wasm32 address space);
 * WebGPU buffers are bounded by the device's `maxBufferSize` and `maxStorageBufferBindingSize`
 * (https://www.w3.org/TR/webgpu/#limits).
 */
import { archOf, type GPTConfig } from './config';
import { ModelLoadError } from './errors';
import { kvHeads, tiedHead } from './gpt';
import { configFromHF, hfParameterShapes, normalizeHfNames, readSafetensorsHeader } from './weights';

/** Bytes of one float32: every weight lives as float32 on every backend, whatever the file's dtype. */
const F32 = 4;

/** The largest config this app handles, field by field (GPT-2 XL: 48 layers, width 1600, 1024 positions). */
export const CONFIG_CAPS = {
  n_layer: 256,
  n_embd: 8192,
  n_head: 256,
  /** Positions: the causal mask alone is T² floats (64 MB at 4,096). */
  n_positions: 4096,
  /** Llama positions (`max_position_embeddings`): no weights or kept mask grow with them. */
  max_position_embeddings: 131_072,
  /** Gemma's 262,144 is the largest vocabulary in common use. */
  vocab_size: 262_144,
} as const;

/** TF.js wasm's heap ceiling (`getHeapMax()` in its Emscripten glue): 65,535 pages of 64 KiB. */
export const WASM_HEAP_MAX_BYTES = 4_294_901_760;

/** What the active backend can hold; `null` where the platform does not say. */
export interface BackendLimits {
  /** The backend's name, for messages ('wasm', 'webgpu', …). */
  backend: string;
  /** All tensors together (wasm: the heap ceiling). */
  maxTotalBytes: number | null;
  /** One tensor (WebGPU: min of maxBufferSize and maxStorageBufferBindingSize). */
  maxBufferBytes: number | null;
  /** Bytes held already (the model loaded now stays until the new one is built). */
  inUseBytes: number;
}

export interface ModelPlan {
  config: GPTConfig;
  /** The HF name the context length was read from ('n_positions' or 'n_ctx'; Llama: 'max_position_embeddings'). */
  contextField: string;
  params: number;
  /** float32 weights. */
  weightsBytes: number;
  /** The causal mask, [T, T] float32 (GPT-2; Llama builds its mask per call: 0). */
  maskBytes: number;
  /** Keys and values of every layer for one sequence at the full context. */
  kvCacheBytes: number;
  /** Training state: Adam's two moments and the gradients, three copies of the weights. */
  trainingBytes: number;
  /** Peak while loading: the model built aside (weights + mask) plus the file's tensors before they are assigned. */
  loadBytes: number;
  /** The largest single tensor the model keeps, with its name. */
  largestTensor: { name: string; bytes: number };
}

/** Parameters of a config in closed form (GPT-2: tied head; Llama: tied or untied). */
export function countParams(c: GPTConfig): number {
  const C = c.nEmbd;
  if (archOf(c) === 'llama') {
    const kv = (C / c.nHead) * kvHeads(c);
    const I = c.intermediateSize ?? 0;
    const block = 2 * C + 2 * C * C + 2 * C * kv + 3 * C * I;
    return c.vocabSize * C * (tiedHead(c) ? 1 : 2) + c.nLayer * block + C;
  }
  return c.vocabSize * C + c.blockSize * C + c.nLayer * (12 * C * C + 13 * C) + 2 * C;
}

/** "1.2 GiB", "3.4 MiB": binary units, as memory limits are stated. */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${Math.ceil(n / 2 ** 10)} KiB`;
}

const fmt = (n: number) => n.toLocaleString('en');

/** HF field names of a config's architecture, keyed by GPT-2's. */
function hfNames(c: GPTConfig): Record<string, string> {
  return archOf(c) === 'llama'
    ? { n_layer: 'num_hidden_layers', n_embd: 'hidden_size', n_head: 'num_attention_heads', vocab_size: 'vocab_size' }
    : { n_layer: 'n_layer', n_embd: 'n_embd', n_head: 'n_head', vocab_size: 'vocab_size' };
}

/** The HF fields behind a config's values, as `"field" value` pairs for messages (fields in GPT-2's names). */
function fieldText(plan: { config: GPTConfig; contextField: string }, fields: string[]): string {
  const c = plan.config;
  const value: Record<string, number> = {
    n_layer: c.nLayer,
    n_embd: c.nEmbd,
    n_head: c.nHead,
    vocab_size: c.vocabSize,
    [plan.contextField]: c.blockSize,
  };
  const names = hfNames(c);
  return fields.map((f) => `"${names[f] ?? f}" is ${fmt(value[f])}`).join(' and ');
}

/**
 * Read `config.json` and plan the model on the given backend; throws `ModelLoadError` (or
 * `WeightsFormatError` for a malformed field) naming config.json and the field when it cannot fit.
 */
export function planModel(json: unknown, limits: BackendLimits): ModelPlan {
  const config = configFromHF(json);
  const j = json as Record<string, unknown>;
  const llama = archOf(config) === 'llama';
  const contextField = llama ? 'max_position_embeddings' : j.n_positions !== undefined ? 'n_positions' : 'n_ctx';
  const names = hfNames(config);
  const caps: [string, number, number, string][] = [
    [names.n_layer, config.nLayer, CONFIG_CAPS.n_layer, 'blocks'],
    [names.n_embd, config.nEmbd, CONFIG_CAPS.n_embd, 'as the width'],
    [names.n_head, config.nHead, CONFIG_CAPS.n_head, 'heads'],
    [
      contextField,
      config.blockSize,
      llama ? CONFIG_CAPS.max_position_embeddings : CONFIG_CAPS.n_positions,
      'positions',
    ],
    ['vocab_size', config.vocabSize, CONFIG_CAPS.vocab_size, 'tokens'],
  ];
  for (const [field, value, cap, unit] of caps) {
    if (value > cap)
      throw new ModelLoadError(
        `config.json: "${field}" is ${fmt(value)}; this app handles models of at most ${fmt(cap)} ${unit}.`,
      );
  }

  const { vocabSize: V, blockSize: T, nLayer: L, nEmbd: C } = config;
  const params = countParams(config);
  const weightsBytes = params * F32;
  const maskBytes = llama ? 0 : T * T * F32;
  const kvWidth = llama ? (C / config.nHead) * kvHeads(config) : C;
  const kvCacheBytes = 2 * L * T * kvWidth * F32;
  const plan: ModelPlan = {
    config,
    contextField,
    params,
    weightsBytes,
    maskBytes,
    kvCacheBytes,
    trainingBytes: 3 * weightsBytes,
    loadBytes: 2 * weightsBytes + maskBytes,
    largestTensor: largestTensor(config),
  };

  if (limits.maxTotalBytes !== null) {
    const need = plan.loadBytes + kvCacheBytes;
    const free = limits.maxTotalBytes - limits.inUseBytes;
    if (need > free) {
      // Name the fields of the term that needs the most memory.
      const blockParams = llama ? (params - V * C * (tiedHead(config) ? 1 : 2)) / L : 12 * C * C + 13 * C;
      const terms: [number, string[]][] = [
        [2 * L * blockParams * F32, ['n_layer', 'n_embd']],
        [2 * V * C * F32 * (tiedHead(config) ? 1 : 2), ['vocab_size', 'n_embd']],
        [2 * T * C * F32 + maskBytes + kvCacheBytes, [contextField, 'n_embd']],
      ];
      const [, fields] = terms.reduce((a, b) => (b[0] > a[0] ? b : a));
      const held = limits.inUseBytes > 0 ? `, beside the ${formatBytes(limits.inUseBytes)} in use now` : '';
      throw new ModelLoadError(
        `config.json: ${fieldText(plan, fields)}; the model would have ${fmt(params)} parameters and need ` +
          `${formatBytes(need)} to load and sample, more than the ${limits.backend} backend can hold ` +
          `(${formatBytes(limits.maxTotalBytes)}${held}).`,
      );
    }
  }
  if (limits.maxBufferBytes !== null && plan.largestTensor.bytes > limits.maxBufferBytes) {
    const { name, bytes } = plan.largestTensor;
    const fields = /wte|embed_tokens|lm_head/.test(name)
      ? ['vocab_size', 'n_embd']
      : name.includes('mask')
        ? [contextField]
        : ['n_embd'];
    throw new ModelLoadError(
      `config.json: ${fieldText(plan, fields)}; ${name} would take ${formatBytes(bytes)}, more than the ` +
        `${limits.backend} backend's largest buffer (${formatBytes(limits.maxBufferBytes)}).`,
    );
  }
  return plan;
}

/** The largest tensor the model keeps: a weight or the causal mask. */
function largestTensor(c: GPTConfig): { name: string; bytes: number } {
  const { vocabSize: V, blockSize: T, nEmbd: C } = c;
  // Activations grow with the batch and are not planned here; the weights and the mask are fixed.
  const candidates: [string, number][] =
    archOf(c) === 'llama'
      ? [
          ['model.embed_tokens.weight', V * C],
          ['model.layers.0.mlp.gate_proj.weight', C * (c.intermediateSize ?? 0)],
          ['model.layers.0.self_attn.q_proj.weight', C * C],
        ]
      : [
          ['transformer.wte.weight', V * C],
          ['transformer.h.0.mlp.c_fc.weight', 4 * C * C],
          ['the causal mask', T * T],
        ];
  const [name, n] = candidates.reduce((a, b) => (b[1] > a[1] ? b : a));
  return { name, bytes: n * F32 };
}

/** The config.json fields a tensor's shape comes from. */
function fieldsOfTensor(name: string, contextField: string): string[] {
  if (/wte\.weight$|embed_tokens\.weight$|^lm_head\.weight$/.test(name)) return ['vocab_size', 'n_embd'];
  if (name.endsWith('wpe.weight')) return [contextField, 'n_embd'];
  return ['n_embd'];
}

function listNames(names: string[]): string {
  const shown = names.slice(0, 3).map((n) => `"${n}"`);
  return names.length > 3 ? `${shown.join(', ')} and ${fmt(names.length - 3)} more` : shown.join(', ');
}

/**
 * Check the safetensors header against the plan before the model is built: the file is read only
 * as far as its header (names, shapes, dtypes, byte ranges within the file). Throws `ModelLoadError`
 * or `WeightsFormatError` naming `fileName` and the tensor.
 */
export function checkWeightsHeader(bytes: Uint8Array, plan: ModelPlan, fileName: string): void {
  checkWeightsEntries(readSafetensorsHeader(bytes, fileName).entries, plan, fileName);
}

/**
 * `checkWeightsHeader` on header entries already read (a file read in slices, or the shards of
 * one checkpoint), under the checkpoint's own tensor names.
 */
export function checkWeightsEntries(
  entries: Map<string, { shape: number[] }>,
  plan: ModelPlan,
  fileName: string,
): void {
  const found = normalizeHfNames(plan.config, entries);
  const expected = hfParameterShapes(plan.config);
  const missing = [...expected.keys()].filter((n) => !found.has(n));
  const unknown = [...found.keys()].filter((n) => !expected.has(n));
  const layerOf = (n: string) => /\.(?:h|layers)\.(\d+)\./.exec(n)?.[1];
  if (unknown.length) {
    const extraLayer = unknown.find((n) => layerOf(n) !== undefined);
    const why = extraLayer
      ? `; config.json says ${fieldText(plan, ['n_layer'])}, so there is no block ${layerOf(extraLayer)}`
      : '';
    throw new ModelLoadError(
      `${fileName} holds ${listNames(unknown)}, which config.json has no place for${why}. Pick the config.json of these weights.`,
    );
  }
  if (missing.length) {
    const why = missing.some((n) => layerOf(n) !== undefined)
      ? ` (config.json says ${fieldText(plan, ['n_layer'])})`
      : '';
    throw new ModelLoadError(
      `${fileName} has no tensor ${listNames(missing)}, which config.json needs${why}. Pick the config.json of these weights.`,
    );
  }
  for (const [name, shape] of expected) {
    const e = found.get(name)!;
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      throw new ModelLoadError(
        `${fileName}: tensor "${name}" has shape [${e.shape.join(', ')}], but config.json (${fieldText(plan, fieldsOfTensor(name, plan.contextField))}) needs [${shape.join(', ')}]. Pick the config.json of these weights.`,
      );
    }
  }
}
