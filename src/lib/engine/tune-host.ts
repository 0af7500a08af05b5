/**
 * The engine's offline fine-tuning: SFT on demonstrations and DPO on preference pairs
 * (`src/lib/rlhf/sft.ts`, `dpo-train.ts`). Each run trains a trainable copy of the loaded
 * model, so the loaded model (DPO's frozen reference) never changes while it runs and a failed
 * or cancelled run leaves everything as it was. A finished run's model is held here until the
 * user adopts it — it then becomes the loaded model, i.e. the starting point and the reference
 * of the next PPO or DPO run — or discards it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingPair } from '../data/records';
import { GPT, parameterShapes } from '../model/gpt';
import { generate } from '../model/sampling';
import type { BpeTokenizer } from '../model/tokenizer';
import { configToHF, saveModelSafetensors, writeSafetensors } from '../model/weights';
import { mergedHfTensors } from '../model/lora-peft';
import { resolveDpoConfig, trainDpo, type DpoConfig } from '../rlhf/dpo-train';
import type { TuneEvent, TuneResult } from '../rlhf/offline-train';
import { resolveSftConfig, trainSft, type SftConfig, type SftExample } from '../rlhf/sft';
import { InvalidInputError, NotReadyError } from './errors';
import { ModelLoadError } from '../model/errors';
import { loraSpecOf } from '../model/lora';
import type { LoraConfig } from '../model/lora-config';
import type { Checkpoint } from './jobs';
import { ModelSlot } from './model-slot';
import type { ModelFiles, ModelInfo, SampleWeights, SampleWithRequest, TuneSample, TuneSummary } from './types';

let counter = 0;

export class TuneHost {
  private tuned: { model: GPT; summary: TuneSummary } | null = null;

  status(): TuneSummary | null {
    return this.tuned?.summary ?? null;
  }

  async sft(
    base: GPT,
    tok: BpeTokenizer,
    baseName: string,
    examples: SftExample[],
    partial: Partial<SftConfig>,
    onEvent: ((e: TuneEvent) => void) | undefined,
    checkpoint: () => Promise<void>,
  ): Promise<TuneSummary> {
    const config = resolveSftConfig(partial);
    return this.run(base, baseName, config, (policy) =>
      trainSft(policy, examples, { tokenizer: tok, config }, onEvent, checkpoint),
    );
  }

  async dpo(
    base: GPT,
    tok: BpeTokenizer,
    baseName: string,
    pairs: TrainingPair[],
    partial: Partial<DpoConfig>,
    onEvent: ((e: TuneEvent) => void) | undefined,
    checkpoint: () => Promise<void>,
  ): Promise<TuneSummary> {
    const config = resolveDpoConfig(partial);
    // The loaded model is frozen and untouched by the run: it is the reference.
    return this.run(base, baseName, config, (policy) =>
      trainDpo(policy, pairs, { tokenizer: tok, config, reference: base }, onEvent, checkpoint),
    );
  }

  private async run(
    base: GPT,
    baseName: string,
    config: SftConfig | DpoConfig,
    train: (policy: GPT) => Promise<TuneResult>,
  ): Promise<TuneSummary> {
    // With LoRA the copy's base stays frozen and the trainer adds adapters to it.
    const policy = base.clone({ trainable: !config.lora, namePrefix: `tune${counter++}/` });
    let r: TuneResult;
    try {
      r = await train(policy);
    } catch (e) {
      policy.dispose(); // the previous tuned model (if any) stays
      throw e;
    }
    const summary: TuneSummary = {
      method: r.method,
      baseName,
      createdAt: Date.now(),
      config,
      steps: r.steps,
      epochs: r.epochs,
      train: r.train,
      val: r.val,
      valPrompts: r.valPrompts,
      final: r.final,
      seconds: r.seconds,
    };
    this.tuned?.model.dispose();
    this.tuned = { model: policy, summary };
    return summary;
  }

  private require(): { model: GPT; summary: TuneSummary } {
    if (!this.tuned) throw new NotReadyError('No fine-tuned model yet: run SFT or DPO first.');
    return this.tuned;
  }

  /** The same prompts sampled from the loaded model and the tuned one, with one seed. */
  async samples(base: GPT, tok: BpeTokenizer, prompts: string[], maxNewTokens: number): Promise<TuneSample[]> {
    const { model } = this.require();
    const ids = prompts.map((p) => [tok.eotId, ...tok.encodePrompt(p).ids]);
    const opts = { maxNewTokens, temperature: 0.7, topK: 40, seed: 4242, decode: (x: number[]) => tok.decode(x) };
    const a = await generate(base, ids, opts, tok.eotId);
    const b = await generate(model, ids, opts, tok.eotId);
    return prompts.map((prompt, i) => ({ prompt, base: a[i].text, tuned: b[i].text }));
  }

  /** The tuned model as files, to load in place of the current model. */
  async files(tok: BpeTokenizer, info: ModelInfo): Promise<ModelFiles> {
    const { model, summary } = this.require();
    const what = summary.method === 'sft' ? 'SFT' : 'DPO';
    const source = `rlhf-playground ${what} of ${info.name}`;
    // A LoRA run's model is its adapters merged into the base: a plain checkpoint.
    const bytes = model.lora
      ? writeSafetensors(await mergedHfTensors(model), 'F32', { format: 'pt', source })
      : await saveModelSafetensors(model, 'F32', { source });
    const unit = summary.method === 'sft' ? 'demonstrations' : 'preference pairs';
    return {
      name: `${info.name} + ${what}`,
      source: 'files',
      config: JSON.stringify(configToHF(model.config, tok.eotId, 'F32')),
      tokenizer: JSON.stringify(tok.toJSON()),
      weights: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      card: JSON.stringify({
        description: `${info.name} after ${what}: ${summary.steps} steps on ${summary.train} ${unit}.`,
        corpus: info.card?.corpus,
        licence: info.card?.licence,
      }),
    };
  }

  discard(): void {
    this.tuned?.model.dispose();
    this.tuned = null;
  }
}

/** Puts a LoRA run's saved adapters (`<module>.lora_A` [in, r], `.lora_B` [r, out]) on `model`. */
function setAdapterParams(model: GPT, params: Record<string, Float32Array>, lora: LoraConfig): void {
  const adapters = model.addAdapters(loraSpecOf(lora));
  for (const [name, ad] of adapters.adapters)
    for (const [v, key] of [
      [ad.a, `${name}.lora_A`],
      [ad.b, `${name}.lora_B`],
    ] as const) {
      const arr = params[key];
      if (!(arr instanceof Float32Array) || arr.length !== v.size)
        throw new ModelLoadError(
          `The run's LoRA adapter ${key} is missing or of another size: was it trained on another model?`,
        );
      const t = tf.tensor(arr, v.shape, 'float32');
      v.assign(t);
      t.dispose();
    }
}

/**
 * Sample prompts from other weights (a saved run's) in a temporary model, disposed after, so
 * the loaded model and a running PPO job are untouched. Files bring their own tokenizer;
 * PPO parameters use the loaded model's architecture and tokenizer (the run started from it).
 */
export async function sampleWithWeights(
  loaded: ModelSlot,
  weights: SampleWeights,
  req: SampleWithRequest,
  checkpoint: Checkpoint,
): Promise<string[]> {
  if (!Array.isArray(req.prompts) || req.prompts.length < 1 || req.prompts.length > 16)
    throw new InvalidInputError('Ask for 1 to 16 prompts at a time.');
  if (req.prompts.some((p) => typeof p !== 'string' || p.length > 2000))
    throw new InvalidInputError('Each prompt must be text of at most 2,000 characters.');
  if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1 || req.maxNewTokens > 256)
    throw new InvalidInputError('Max new tokens must be a whole number from 1 to 256.');
  if (!Number.isSafeInteger(req.seed)) throw new InvalidInputError('The seed must be a whole number.');
  let model: GPT;
  let tok: BpeTokenizer;
  if (weights?.kind === 'files') {
    const slot = new ModelSlot();
    slot.load(weights.files); // throws ModelLoadError on bad files; nothing else changes
    model = slot.model!;
    tok = slot.tokenizer!;
  } else if (weights?.kind === 'params') {
    const base = loaded.require();
    tok = base.tokenizer;
    const shapes = parameterShapes(base.model.config);
    if (weights.lora) {
      // A LoRA run: its adapters on a copy of the loaded model (the run's base).
      model = base.model.clone({ trainable: false, namePrefix: `sample${counter++}/` });
      try {
        setAdapterParams(model, weights.params, weights.lora);
      } catch (e) {
        model.dispose();
        throw e;
      }
    } else {
      model = new GPT(base.model.config, { trainable: false, namePrefix: `sample${counter++}/`, init: 'zeros' });
      const map = new Map<string, tf.Tensor>();
      try {
        for (const [name, arr] of Object.entries(weights.params)) {
          const shape = shapes.get(name);
          if (shape && arr instanceof Float32Array && arr.length === shape.reduce((a, b) => a * b, 1))
            map.set(name, tf.tensor(arr, shape, 'float32'));
        }
        model.setWeights(map); // names and shapes checked: ModelLoadError when the run used another model
      } catch (e) {
        model.dispose();
        throw e;
      } finally {
        for (const t of map.values()) t.dispose();
      }
    }
  } else {
    throw new InvalidInputError('Give the weights as model files or PPO policy parameters.');
  }
  try {
    const ids = req.prompts.map((p) => [tok.eotId, ...tok.encodePrompt(p).ids]);
    const rows = await generate(
      model,
      ids,
      {
        maxNewTokens: Math.max(
          1,
          Math.min(req.maxNewTokens, model.config.blockSize - Math.max(...ids.map((x) => x.length))),
        ),
        temperature: req.temperature,
        topK: req.topK,
        seed: req.seed,
        decode: (x: number[]) => tok.decode(x),
        onStep: async () => {
          await checkpoint();
        },
      },
      tok.eotId,
    );
    return rows.map((r) => r.text);
  } finally {
    model.dispose();
  }
}
