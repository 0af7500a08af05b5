/**
 * The engine's offline fine-tuning: SFT on demonstrations and DPO on preference pairs
 * (`src/lib/rlhf/sft.ts`, `dpo-train.ts`). Each run trains a trainable copy of the loaded
 * model, so the loaded model (DPO's frozen reference) never changes while it runs and a failed
 * or cancelled run leaves everything as it was. A finished run's model is held here until the
 * user adopts it — it then becomes the loaded model, i.e. the starting point and the reference
 * of the next PPO or DPO run — or discards it.
 */
import type { TrainingPair } from '../data/records';
import type { GPT } from '../model/gpt';
import { generate } from '../model/sampling';
import type { BpeTokenizer } from '../model/tokenizer';
import { configToHF, saveModelSafetensors } from '../model/weights';
import { resolveDpoConfig, trainDpo, type DpoConfig } from '../rlhf/dpo-train';
import type { TuneEvent, TuneResult } from '../rlhf/offline-train';
import { resolveSftConfig, trainSft, type SftConfig, type SftExample } from '../rlhf/sft';
import { NotReadyError } from './errors';
import type { ModelFiles, ModelInfo } from './types';

/** What a finished SFT or DPO run produced (plain data). */
export interface TuneSummary {
  method: 'sft' | 'dpo';
  /** The model it started from (and, for DPO, its reference). */
  baseName: string;
  createdAt: number;
  config: SftConfig | DpoConfig;
  steps: number;
  epochs: number;
  /** Training and held-out examples (SFT) or pairs (DPO). */
  train: number;
  val: number;
  valPrompts: string[];
  final: Record<string, number>;
  seconds: number;
}

/** One prompt sampled from the loaded model and from the tuned one (same seed). */
export interface TuneSample {
  prompt: string;
  base: string;
  tuned: string;
}

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
    const policy = base.clone({ trainable: true, namePrefix: `tune${counter++}/` });
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
    const bytes = await saveModelSafetensors(model, 'F32', { source: `rlhf-playground ${what} of ${info.name}` });
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
