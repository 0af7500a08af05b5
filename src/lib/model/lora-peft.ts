/**
 * LoRA adapters as PEFT stores them, and merging them into the base weights.
 *
 * Follows Hugging Face PEFT (`peft/utils/save_and_load.py`, `peft/tuners/lora/config.py`,
 * `peft/tuners/lora/layer.py` `get_delta_weight` / `merge`): `adapter_config.json` and
 * `adapter_model.safetensors` with `base_model.model.<module>.lora_A.weight` [r, in] and
 * `lora_B.weight` [out, r] (the adapter name "default" is left out of saved keys); a merged
 * weight is W + (α/r)·B·A, transposed for GPT-2's Conv1D (`fan_in_fan_out`). See ./lora.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ModelLoadError } from './errors';
import type { GPT } from './gpt';
import { LoraAdapters, linearModules, targetedModules, targetsProblem, type LoraSpec } from './lora';
import { modelToHfTensors, readSafetensors, writeSafetensors, type TensorRecord } from './weights';

/** PEFT's `adapter_config.json`, the fields it writes for LoRA. */
export interface PeftAdapterConfig {
  peft_type: 'LORA';
  task_type: 'CAUSAL_LM';
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[];
  bias: 'none';
  fan_in_fan_out: boolean;
  base_model_name_or_path: string | null;
  inference_mode: boolean;
  init_lora_weights: boolean;
  modules_to_save: null;
  use_rslora: boolean;
  use_dora: boolean;
}

const PEFT_PREFIX = 'base_model.model.';

/** The adapter as PEFT writes it: `adapter_config.json` and `adapter_model.safetensors`. */
export async function exportPeftAdapter(
  model: GPT,
  baseName: string | null,
): Promise<{ config: PeftAdapterConfig; safetensors: Uint8Array }> {
  const lora = model.lora;
  if (!lora) throw new ModelLoadError('This model has no LoRA adapters to export.');
  const tensors = new Map<string, TensorRecord>();
  for (const [name, ad] of lora.adapters) {
    const aT = tf.transpose(ad.a); // [r, in]
    const bT = tf.transpose(ad.b); // [out, r]
    const [a, b] = await Promise.all([aT.data(), bT.data()]);
    tf.dispose([aT, bT]);
    tensors.set(`${PEFT_PREFIX}${name}.lora_A.weight`, { shape: [...aT.shape], data: a as Float32Array });
    tensors.set(`${PEFT_PREFIX}${name}.lora_B.weight`, { shape: [...bT.shape], data: b as Float32Array });
  }
  const fanInFanOut = [...lora.adapters.values()].some((a) => a.module.fanInFanOut);
  const config: PeftAdapterConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: lora.spec.r,
    lora_alpha: lora.spec.alpha,
    lora_dropout: lora.spec.dropout,
    target_modules: [...lora.targetModules],
    bias: 'none',
    fan_in_fan_out: fanInFanOut,
    base_model_name_or_path: baseName,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    use_rslora: false,
    use_dora: false,
  };
  return { config, safetensors: writeSafetensors(tensors, 'F32', { format: 'pt' }) };
}

/** Reads `adapter_config.json`'s fields we use; refuses what PEFT would build differently. */
export function parsePeftConfig(text: string): LoraSpec {
  let j: unknown;
  try {
    j = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new ModelLoadError(`adapter_config.json is not valid JSON (${(e as Error).message}).`);
  }
  if (!j || typeof j !== 'object' || Array.isArray(j))
    throw new ModelLoadError('adapter_config.json must be an object.');
  const o = j as Record<string, unknown>;
  if (o.peft_type !== 'LORA')
    throw new ModelLoadError(
      `adapter_config.json: peft_type is ${JSON.stringify(o.peft_type)}; only LORA adapters load here.`,
    );
  if (o.task_type !== undefined && o.task_type !== null && o.task_type !== 'CAUSAL_LM')
    throw new ModelLoadError(
      `adapter_config.json: task_type is ${JSON.stringify(o.task_type)}; only CAUSAL_LM adapters load here.`,
    );
  if (o.bias !== undefined && o.bias !== 'none')
    throw new ModelLoadError(`adapter_config.json: bias is ${JSON.stringify(o.bias)}; only "none" is supported.`);
  if (o.use_rslora === true || o.use_dora === true)
    throw new ModelLoadError('adapter_config.json: rsLoRA and DoRA adapters are not supported.');
  if (o.modules_to_save != null && !(Array.isArray(o.modules_to_save) && o.modules_to_save.length === 0))
    throw new ModelLoadError('adapter_config.json: modules_to_save is not supported (only LoRA matrices load).');
  const r = o.r;
  const alpha = o.lora_alpha ?? 8;
  const dropout = o.lora_dropout ?? 0;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1)
    throw new ModelLoadError(`adapter_config.json: r must be a whole number ≥ 1, got ${JSON.stringify(r)}.`);
  if (typeof alpha !== 'number' || !(alpha > 0))
    throw new ModelLoadError(`adapter_config.json: lora_alpha must be a number > 0, got ${JSON.stringify(alpha)}.`);
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1))
    throw new ModelLoadError(`adapter_config.json: lora_dropout must be in [0, 1), got ${JSON.stringify(dropout)}.`);
  let targets = o.target_modules;
  if (typeof targets === 'string') targets = [targets];
  const tp = targetsProblem(targets);
  if (tp || targets === null) throw new ModelLoadError(`adapter_config.json: target_modules ${tp ?? 'is missing'}.`);
  return { r, alpha, dropout, targetModules: targets as string[] };
}

/**
 * Puts a PEFT adapter on `model` (replacing any adapters it has). Every name, shape and the rank
 * are checked against the model and the config before anything changes, so on failure the model
 * keeps its state. Returns the adapters' module names.
 */
export function importPeftAdapter(model: GPT, configText: string, bytes: Uint8Array): string[] {
  const spec = parsePeftConfig(configText);
  const file = readSafetensors(bytes, 'adapter_model.safetensors');
  const modules = new Map(targetedModules(model, spec.targetModules).map((m) => [m.name, m]));
  const seen = new Map<string, { a?: TensorRecord; b?: TensorRecord }>();
  const bad: string[] = [];
  for (const [key, t] of file.tensors) {
    const m = /^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.default)?\.weight$/.exec(key);
    if (!m) {
      bad.push(key);
      continue;
    }
    const [, name, which] = m;
    if (!modules.has(name)) {
      const known = linearModules(model).some((x) => x.name === name);
      throw new ModelLoadError(
        known
          ? `adapter_model.safetensors has an adapter on ${name}, which target_modules (${spec.targetModules!.join(', ')}) does not name.`
          : `adapter_model.safetensors has an adapter on ${name}, which this model does not have. Was the adapter trained on another base model?`,
      );
    }
    const e = seen.get(name) ?? {};
    e[which === 'A' ? 'a' : 'b'] = t;
    seen.set(name, e);
  }
  if (bad.length)
    throw new ModelLoadError(
      `adapter_model.safetensors holds tensors that are not LoRA matrices: ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ` and ${bad.length - 3} more` : ''}.`,
    );
  for (const [name, mod] of modules) {
    const e = seen.get(name);
    if (!e?.a || !e.b)
      throw new ModelLoadError(
        `adapter_model.safetensors lacks lora_${e?.a ? 'B' : 'A'} of ${name}, which target_modules selects.`,
      );
    const want = (w: number[], t: TensorRecord, which: string) => {
      if (t.shape.length !== 2 || t.shape[0] !== w[0] || t.shape[1] !== w[1])
        throw new ModelLoadError(
          `adapter_model.safetensors: ${name}.lora_${which}.weight has shape [${t.shape}], this model with r = ${spec.r} needs [${w}].`,
        );
    };
    want([spec.r, mod.in], e.a, 'A');
    want([mod.out, spec.r], e.b, 'B');
  }
  // Everything checked: build the new adapters, then swap them in.
  const lora = new LoraAdapters(model, spec, 0);
  for (const [name, ad] of lora.adapters) {
    const e = seen.get(name)!;
    tf.tidy(() => {
      ad.a.assign(tf.transpose(tf.tensor2d(e.a!.data, e.a!.shape as [number, number])));
      ad.b.assign(tf.transpose(tf.tensor2d(e.b!.data, e.b!.shape as [number, number])));
    });
  }
  model.setAdapters(lora);
  return [...lora.adapters.keys()];
}

/**
 * The base weights with every adapter merged in (W + α/r·ΔW), in the model's own names and
 * layouts (as `modelTensors`). For a checkpoint file use `mergedHfTensors`.
 */
export async function mergedTensors(model: GPT): Promise<Map<string, TensorRecord>> {
  const out = new Map<string, TensorRecord>();
  const lora = model.lora;
  for (const [name, v] of model.params) {
    const module = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : null;
    let t: tf.Tensor = v;
    if (lora && module && lora.adapters.has(module)) {
      const d = lora.delta(module);
      t = tf.add(v, d);
      d.dispose();
    }
    const data = (await t.data()) as Float32Array;
    if (t !== v) t.dispose();
    out.set(name, { shape: [...v.shape], data });
  }
  return out;
}

/**
 * The merged weights in HF names and layouts (Llama projections [out, in]), as plain records for
 * `writeSafetensors`: a full checkpoint that needs no PEFT to load.
 */
export async function mergedHfTensors(model: GPT): Promise<Map<string, TensorRecord>> {
  return modelToHfTensors(model.config, await mergedTensors(model));
}
