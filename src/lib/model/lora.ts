/**
 * LoRA: low-rank adapters on the GPT's projections, with the base weights frozen.
 *
 * Follows:
 *  - Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models": a frozen W gains
 *    ΔW = B·A of rank r, scaled by α/r; A random, B zero, so training starts from the base model.
 *  - Hugging Face PEFT (`peft/tuners/lora/layer.py`, `config.py`, `utils/save_and_load.py`),
 *    whose behaviour a user will compare against: `lora_A` initialised as nn.Linear's default
 *    (kaiming-uniform with a = √5, i.e. U(±1/√in)), `lora_B` zeros, scaling `lora_alpha / r`,
 *    dropout on the adapter's input only while training, `target_modules` matched against module
 *    names (a name equal to the target or ending in `.<target>`), per-architecture defaults
 *    (GPT-2 `c_attn`; Llama `q_proj`, `v_proj`), and its files: `adapter_config.json` and
 *    `adapter_model.safetensors` with `base_model.model.<module>.lora_A.weight` [r, in] and
 *    `lora_B.weight` [out, r]. GPT-2's Conv1D stores W as [in, out] (`fan_in_fan_out: true`).
 *
 * Here A is kept as [in, r] and B as [r, out] so the forward is x·A·B with plain matMuls
 * (transposed matMuls are slow on wasm); the PEFT layouts are made on export and read on import.
 * PEFT's files and merging: ./lora-peft.ts.
 * The adapters hook into `GPT.linear(x, name)` by module name, so every architecture whose
 * projections go through that one method gets LoRA without changes to its forward code.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LoraConfig } from './lora-config';
import { ModelLoadError } from './errors';
import { Rng } from './rng';

/** What the adapters need of a model: its named weights (GPT fits; no import of gpt.ts, which imports this). */
export interface HasParams {
  readonly params: ReadonlyMap<string, tf.Variable>;
}

export { LORA_ROWS, LORA_SETTINGS, loraOf, targetsProblem, type LoraConfig } from './lora-config';

// ------------------------------------------------------------------------------ modules

/** One projection of the model that an adapter can sit on. */
export interface LinearModule {
  /** HF module name, e.g. `transformer.h.0.attn.c_attn` or `model.layers.0.self_attn.q_proj`. */
  name: string;
  in: number;
  out: number;
  /** The weight's HF file stores it [in, out] (GPT-2's Conv1D, PEFT `fan_in_fan_out`) rather than [out, in]. */
  fanInFanOut: boolean;
}

/** Embeddings and heads: rank-2 weights that are not projections. */
const NOT_PROJECTIONS = /(^|\.)(wte|wpe|embed_tokens|lm_head)$/;

/**
 * The model's projections, from its parameter names and shapes: every `<module>.weight` of rank 2
 * that is not an embedding or head, held [in, out] in the model whatever the architecture. GPT-2
 * names (`transformer.…`) are Conv1D, [in, out] in their files too; other architectures' files use
 * nn.Linear's [out, in].
 */
export function linearModules(model: HasParams): LinearModule[] {
  const out: LinearModule[] = [];
  for (const [name, v] of model.params) {
    if (!name.endsWith('.weight') || v.shape.length !== 2) continue;
    const module = name.slice(0, -'.weight'.length);
    if (NOT_PROJECTIONS.test(module)) continue;
    // Every projection is held [in, out] in the model (Llama's are transposed on load, ./weights.ts);
    // only GPT-2's Conv1D files store them that way too (PEFT's `fan_in_fan_out`).
    const [a, b] = v.shape;
    out.push({ name: module, in: a, out: b, fanInFanOut: module.startsWith('transformer.') });
  }
  return out;
}

/** The model's architecture as PEFT's defaults know it. */
export function architectureOf(model: HasParams): 'gpt2' | 'llama' {
  for (const name of model.params.keys()) if (name.startsWith('model.layers.')) return 'llama';
  return 'gpt2';
}

/** PEFT's default target modules (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`). */
export const DEFAULT_TARGET_MODULES: Record<'gpt2' | 'llama', string[]> = {
  gpt2: ['c_attn'],
  llama: ['q_proj', 'v_proj'],
};

/** Whether module `name` is targeted by `target` (PEFT: equal, or ends with `.target`). */
export function matchesTarget(name: string, target: string): boolean {
  return name === target || name.endsWith('.' + target);
}

/** The modules that `targets` (null = the default) select; refuses targets that match nothing. */
export function targetedModules(model: HasParams, targets: string[] | null): LinearModule[] {
  const t = targets ?? DEFAULT_TARGET_MODULES[architectureOf(model)];
  const all = linearModules(model);
  const chosen = all.filter((m) => t.some((x) => matchesTarget(m.name, x)));
  const unmatched = t.filter((x) => !all.some((m) => matchesTarget(m.name, x)));
  if (unmatched.length || chosen.length === 0) {
    const kinds = [...new Set(all.map((m) => m.name.split('.').pop()))];
    throw new ModelLoadError(
      `LoRA target module${unmatched.length > 1 ? 's' : ''} ${unmatched.join(', ')} match${unmatched.length > 1 ? '' : 'es'} no projection of this model. Its projections are ${kinds.join(', ')}.`,
    );
  }
  return chosen;
}

// ------------------------------------------------------------------------------ adapters

export interface LoraSpec {
  r: number;
  alpha: number;
  dropout: number;
  /** Target module names as the user gave them (null = the architecture's default). */
  targetModules: string[] | null;
}

export function loraSpecOf(c: LoraConfig): LoraSpec {
  return { r: c.loraR, alpha: c.loraAlpha, dropout: c.loraDropout, targetModules: c.loraTargetModules };
}

interface Adapter {
  module: LinearModule;
  /** [in, r] (PEFT's lora_A.weight transposed). */
  a: tf.Variable;
  /** [r, out] (PEFT's lora_B.weight transposed). */
  b: tf.Variable;
}

let adapterCounter = 0;

/**
 * The adapters of one model: one (A, B) pair per targeted module, switched on and off as a whole.
 * `GPT.linear` calls {@link apply} for every projection.
 */
export class LoraAdapters {
  readonly adapters = new Map<string, Adapter>();
  readonly scaling: number;
  /** The target modules as written to adapter_config.json (the user's, or the default). */
  readonly targetModules: string[];
  /** Off: every projection is the base's alone (the reference model). */
  enabled = true;
  /** On while a trainer computes gradients: dropout applies to the adapters' input. */
  training = false;
  private dropoutCalls = 0;
  private dropoutSeed: number;

  constructor(
    model: HasParams,
    readonly spec: LoraSpec,
    seed = 0,
  ) {
    if (!Number.isInteger(spec.r) || spec.r < 1)
      throw new RangeError(`LoRA: r must be a whole number ≥ 1, got ${spec.r}`);
    if (!(spec.alpha > 0)) throw new RangeError(`LoRA: alpha must be > 0, got ${spec.alpha}`);
    if (!(spec.dropout >= 0 && spec.dropout < 1))
      throw new RangeError(`LoRA: dropout must be in [0, 1), got ${spec.dropout}`);
    this.scaling = spec.alpha / spec.r;
    this.targetModules = spec.targetModules ?? DEFAULT_TARGET_MODULES[architectureOf(model)];
    const modules = targetedModules(model, this.targetModules);
    const rng = new Rng(seed);
    this.dropoutSeed = seed;
    const prefix = `lora${adapterCounter++}/`;
    for (const m of modules) {
      // nn.Linear(in, r)'s default init: kaiming_uniform(a=√5) → U(−1/√in, 1/√in) on A [r, in].
      const bound = 1 / Math.sqrt(m.in);
      const aPeft = new Float32Array(spec.r * m.in);
      for (let i = 0; i < aPeft.length; i++) aPeft[i] = (2 * rng.next() - 1) * bound;
      const a = tf.tidy(() => tf.transpose(tf.tensor2d(aPeft, [spec.r, m.in])));
      const b = tf.zeros([spec.r, m.out]);
      this.adapters.set(m.name, {
        module: m,
        a: tf.variable(a, true, `${prefix}${m.name}.lora_A`),
        b: tf.variable(b, true, `${prefix}${m.name}.lora_B`),
      });
      tf.dispose([a, b]);
    }
  }

  /**
   * Restart the dropout masks' stream from `seed`: a trainer calls this before each step with a
   * seed derived from its own state (e.g. its Adam step), so a resumed run draws the same masks.
   */
  reseedDropout(seed: number): void {
    this.dropoutSeed = seed >>> 0;
    this.dropoutCalls = 0;
  }

  /** y [N, out] of module `name` on x [N, in], plus the adapter's scaled update when one is on. */
  apply(name: string, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D {
    const ad = this.enabled ? this.adapters.get(name) : undefined;
    if (!ad) return y;
    let h: tf.Tensor2D = x;
    if (this.training && this.spec.dropout > 0)
      h = tf.dropout(
        x,
        this.spec.dropout,
        undefined,
        (this.dropoutSeed + 7919 * ++this.dropoutCalls) >>> 0,
      ) as tf.Tensor2D;
    const delta = tf.matMul(tf.matMul(h, ad.a), ad.b);
    return tf.add(y, this.scaling === 1 ? delta : tf.mul(delta, this.scaling));
  }

  /** Adapter variables in a fixed order (A then B per module, modules in model order). */
  variables(): tf.Variable[] {
    const out: tf.Variable[] = [];
    for (const ad of this.adapters.values()) out.push(ad.a, ad.b);
    return out;
  }

  numParams(): number {
    let n = 0;
    for (const v of this.variables()) n += v.size;
    return n;
  }

  /** Scaled ΔW of one module, [in, out] like the model's weight. */
  delta(name: string): tf.Tensor2D {
    const ad = this.adapters.get(name);
    if (!ad) throw new Error(`LoRA: no adapter on ${name}`);
    return tf.tidy(() => tf.mul(tf.matMul(ad.a, ad.b), this.scaling) as tf.Tensor2D);
  }

  dispose(): void {
    tf.dispose(this.variables());
    this.adapters.clear();
  }
}
