/**
 * The engine's pretraining job: a GPT trained from scratch (a size preset) or continued from the
 * loaded model on the user's documents, with the loaded model's tokenizer. The step is the one
 * `scripts/pretrain.ts` runs (`../pretrain/trainer.ts`); the validation loss is scored on the
 * same windows as the unigram and add-k bigram baselines (`../pretrain/baselines.ts`), and every
 * loss has its bits per byte. The run lives here between jobs: cancelling a `train` job pauses it
 * at a step boundary and the next `train` goes on from there. The loaded model is never touched
 * until the user adopts the result (`files`, then the engine loads them).
 *
 * Also here: a byte-level BPE trained on the user's text (`trainTokenizer`, the app's `trainBpe`
 * yielding between merges so it can be cancelled), checkpoints of a run at a step boundary
 * (`snapshot`: the model as files, Adam's moments, the sampler's RNG; emitted as an event every
 * half minute of training) and a run rebuilt from one (`restore`), and the measured seconds per
 * step of a preset on the active backend (`timeStep`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GPT } from '../model/gpt';
import { evaluateLoss, tokenizeDocs } from '../model/evaluate';
import { Rng } from '../model/rng';
import { generate } from '../model/sampling';
import { countWords, trainBpeAsync, type BpeTokenizer } from '../model/tokenizer';
import type { PretrainOptState } from '../pretrain/checkpoint';
import { configToHF, saveModelSafetensors } from '../model/weights';
import { bitsPerByte, countingBaselines, evalTargets } from '../pretrain/baselines';
import { PRETRAIN_SETTINGS, type PretrainConfig } from '../pretrain/config';
import { PRESET_NAMES, presetConfig, type PresetName } from '../pretrain/presets';
import { textStats } from '../pretrain/text';
import { PretrainOptimiser, lrAt, randomStarts, type Schedule } from '../pretrain/trainer';
import { InvalidInputError, NotReadyError } from './errors';
import type { Checkpoint } from './jobs';
import { ModelSlot } from './model-slot';
import type {
  ModelFiles,
  PretrainData,
  PretrainEvent,
  PretrainRequest,
  PretrainSnapshot,
  PretrainStatus,
  TokenizerProgress,
  TokenizerSummary,
} from './types';

let counter = 0;

/** Most prompts sampled at each sample step. */
const MAX_PROMPTS = 8;
/** Seconds of training between checkpoint events (at the next validation step). */
const CHECKPOINT_SECONDS = 30;
/** Vocabulary sizes a trained tokenizer may have: 256 bytes + merges + `<|endoftext|>`. */
export const MIN_VOCAB = 260;
export const MAX_VOCAB = 32_768;
/** Newest merges reported with the tokenizer's progress. */
const NEWEST_MERGES = 8;

interface Run {
  model: GPT;
  opt: PretrainOptimiser;
  rng: Rng;
  tok: BpeTokenizer;
  config: PretrainConfig;
  schedule: Schedule;
  trainIds: Int32Array;
  valIds: Int32Array;
  prompts: string[];
  status: PretrainStatus;
}

export class PretrainHost {
  private run: Run | null = null;
  private trained: BpeTokenizer | null = null;
  /** Measured seconds per step, by backend, preset, vocabulary and batch. */
  private stepTimes = new Map<string, number>();

  status(): PretrainStatus | null {
    return this.run ? structuredClone(this.run.status) : null;
  }

  /** Tokenise the documents, count the baselines and build the model (replacing any earlier run). */
  prepare(loadedTok: BpeTokenizer, loaded: { model: GPT; name: string }, req: PretrainRequest): PretrainStatus {
    const config = PRETRAIN_SETTINGS.validate(req.config ?? {});
    const docsOk = (d: unknown) => Array.isArray(d) && d.every((x) => typeof x === 'string');
    if (!docsOk(req.train) || !docsOk(req.val)) throw new InvalidInputError('Give the documents as lists of text.');
    if (req.train.length === 0 || req.val.length === 0)
      throw new InvalidInputError('Pretraining needs training and validation documents; add more text.');
    if (req.init !== 'scratch' && req.init !== 'continue')
      throw new InvalidInputError(`Start from 'scratch' or 'continue', not ${JSON.stringify(req.init)}.`);
    const useTrained = req.init === 'scratch' && req.tokenizer === 'trained';
    if (useTrained && !this.trained)
      throw new InvalidInputError('Train the tokenizer on this text first, or keep the loaded model’s tokenizer.');
    const tok = useTrained ? this.trained! : loadedTok;
    const prompts = (Array.isArray(req.prompts) ? req.prompts : [])
      .filter((p) => typeof p === 'string')
      .slice(0, MAX_PROMPTS);

    const modelConfig = req.init === 'continue' ? loaded.model.config : presetConfig(config.preset, tok.vocabSize);
    const T = modelConfig.blockSize;
    const trainIds = tokenizeDocs(tok, req.train);
    const valIds = tokenizeDocs(tok, req.val);
    if (trainIds.length < T + 2)
      throw new InvalidInputError(
        `The training text is ${trainIds.length.toLocaleString('en')} tokens long; one window of this model needs ${T + 2}. Add more text.`,
      );
    if (valIds.length < T + 1)
      throw new InvalidInputError(
        `The validation documents (5 % of the text) are ${valIds.length.toLocaleString('en')} tokens long; one window needs ${T + 1}. Add more text or longer documents.`,
      );
    const range = evalTargets(valIds.length, T, config.evalWindows);
    const base = countingBaselines(trainIds, valIds, tok.vocabSize, config.bigramK, range);
    const valBytes = textStats(req.val).bytes;
    const bpb = (nats: number) => bitsPerByte(nats, valIds.length, valBytes);

    const id = counter++;
    const model =
      req.init === 'continue'
        ? loaded.model.clone({ trainable: true, namePrefix: `pretrain${id}/` })
        : new GPT(modelConfig, { seed: config.seed, namePrefix: `pretrain${id}/` });
    let opt: PretrainOptimiser;
    try {
      opt = new PretrainOptimiser(model, config, `pretrain${id}-adam`);
    } catch (e) {
      model.dispose();
      throw e;
    }
    this.dispose();
    this.run = {
      model,
      opt,
      rng: new Rng(config.seed + 1),
      tok,
      config,
      schedule: { lr: config.lr, minLr: config.lr * config.minLrRatio, warmup: config.warmup, steps: config.steps },
      trainIds,
      valIds,
      prompts,
      status: {
        init: req.init,
        baseName: loaded.name,
        name: req.name || (req.init === 'continue' ? `${loaded.name} + pretraining` : `pretrained ${config.preset}`),
        corpus: req.corpus ?? '',
        config,
        modelConfig,
        params: model.numParams(),
        step: 0,
        trainTokens: trainIds.length,
        valTokens: valIds.length,
        valBytes,
        evalTokens: base.tokens,
        baselines: {
          unigram: base.unigram,
          bigram: base.bigram,
          unigramBpb: bpb(base.unigram),
          bigramBpb: bpb(base.bigram),
        },
        lastLoss: null,
        lastValLoss: null,
        lastValBpb: null,
        seconds: 0,
        tokenizer: { kind: useTrained ? 'trained' : 'loaded', vocabSize: tok.vocabSize },
      },
    };
    return this.status()!;
  }

  private require(): Run {
    if (!this.run) throw new NotReadyError('No pretraining run yet: add text and start one on the Pretrain page.');
    return this.run;
  }

  /** Train until the last step (or until the job is cancelled: a pause at a step boundary). */
  async train(onEvent: ((e: PretrainEvent) => void) | undefined, checkpoint: Checkpoint): Promise<PretrainStatus> {
    const r = this.require();
    const { config, model } = r;
    const T = model.config.blockSize;
    let windowStart = performance.now();
    let windowSteps = 0;
    let lastCheckpoint = r.status.step === 0 ? -Infinity : performance.now();
    if (r.status.step === 0) {
      await this.evaluate(r, onEvent);
      await this.sample(r, onEvent);
    }
    while (r.status.step < config.steps) {
      await checkpoint();
      const t0 = performance.now();
      const lr = lrAt(r.schedule, r.status.step);
      const starts = randomStarts(r.rng, r.trainIds.length, T, config.batchSize);
      const { loss, gradNorm } = await r.opt.step(r.trainIds, starts, r.status.step + 1, lr);
      if (!Number.isFinite(loss))
        throw new InvalidInputError(`The loss became ${loss} at step ${r.status.step + 1}; lower the learning rate.`);
      r.status.step++;
      r.status.lastLoss = loss;
      r.status.seconds += (performance.now() - t0) / 1000;
      windowSteps++;
      const secs = (performance.now() - windowStart) / 1000;
      onEvent?.({
        kind: 'step',
        step: r.status.step,
        loss,
        lr,
        gradNorm,
        tokensPerSec: Math.round((windowSteps * config.batchSize * T) / secs),
      });
      if (secs > 2) {
        windowStart = performance.now();
        windowSteps = 0;
      }
      const last = r.status.step === config.steps;
      const evalStep = r.status.step % config.evalEvery === 0 || last;
      if (evalStep) await this.evaluate(r, onEvent);
      if (r.status.step % config.sampleEvery === 0 || last) await this.sample(r, onEvent);
      if (evalStep && !last && onEvent && performance.now() - lastCheckpoint > CHECKPOINT_SECONDS * 1000) {
        onEvent({ kind: 'checkpoint', snapshot: await this.snapshot() });
        lastCheckpoint = performance.now();
      }
    }
    return this.status()!;
  }

  private async evaluate(r: Run, onEvent: ((e: PretrainEvent) => void) | undefined): Promise<void> {
    const ev = await evaluateLoss(r.model, r.valIds, r.config.evalWindows);
    r.status.lastValLoss = ev.loss;
    r.status.lastValBpb = bitsPerByte(ev.loss, r.valIds.length, r.status.valBytes);
    onEvent?.({ kind: 'eval', step: r.status.step, valLoss: ev.loss, valBpb: r.status.lastValBpb });
  }

  private async sample(r: Run, onEvent: ((e: PretrainEvent) => void) | undefined): Promise<void> {
    if (r.prompts.length === 0) return;
    const texts = await this.samples(r.prompts);
    onEvent?.({
      kind: 'samples',
      step: r.status.step,
      samples: r.prompts.map((prompt, i) => ({ prompt, text: texts[i] })),
    });
  }

  /** Prompts sampled from the model being trained (one seed, so steps compare). */
  async samples(prompts: string[]): Promise<string[]> {
    const { model, tok } = this.require();
    const ids = prompts.map((p) => [tok.eotId, ...tok.encodePrompt(p).ids].slice(-(model.config.blockSize - 1)));
    const room = model.config.blockSize - Math.max(...ids.map((x) => x.length));
    const rows = await generate(
      model,
      ids,
      {
        maxNewTokens: Math.max(1, Math.min(32, room)),
        temperature: 0.8,
        topK: 40,
        seed: 4242,
        decode: (x) => tok.decode(x),
      },
      tok.eotId,
    );
    return rows.map((row) => row.text);
  }

  /** The trained model as files, with its card, to load as the base model. */
  async files(): Promise<ModelFiles> {
    const { model, tok, status } = this.require();
    const bytes = await saveModelSafetensors(model, 'F32', {
      source: `rlhf-playground pretraining, ${status.step} steps`,
    });
    const from =
      status.init === 'continue'
        ? `${status.baseName} continued`
        : `A ${status.config.preset} GPT pretrained from scratch`;
    const tokenizer =
      status.tokenizer.kind === 'trained'
        ? `a byte-level BPE of ${status.tokenizer.vocabSize.toLocaleString('en')} tokens trained on its text`
        : `the ${status.baseName} tokenizer (${status.tokenizer.vocabSize.toLocaleString('en')} tokens)`;
    return {
      name: status.name,
      source: 'files',
      config: JSON.stringify(configToHF(model.config, tok.eotId, 'F32')),
      tokenizer: JSON.stringify(tok.toJSON()),
      weights: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      card: JSON.stringify({
        description: `${from} in the tab: ${status.step} steps of ${status.config.batchSize}×${model.config.blockSize} tokens, ${status.params.toLocaleString('en')} parameters, ${tokenizer}. Final train loss ${status.lastLoss?.toFixed(3) ?? '–'}, validation loss ${status.lastValLoss?.toFixed(3) ?? '–'} nats/token (${status.lastValBpb?.toFixed(3) ?? '–'} bits/byte); counting baselines on the same text: unigram ${status.baselines.unigram.toFixed(3)}, bigram ${status.baselines.bigram.toFixed(3)}.`,
        corpus: status.corpus || undefined,
        valLoss: status.lastValLoss ?? undefined,
        trainSteps: status.step,
        trainTokens: status.step * status.config.batchSize * model.config.blockSize,
      }),
    };
  }

  /** The run at its current step: the model as files, Adam's moments and the sampler's state. */
  async snapshot(): Promise<PretrainSnapshot> {
    const r = this.require();
    const read = async (vars: Map<string, tf.Variable>) => {
      const out: Record<string, Float32Array> = {};
      for (const [name, t] of vars) out[name] = (await t.data()) as Float32Array;
      return out;
    };
    const opt: PretrainOptState = {
      step: r.status.step,
      rng: r.rng.getState(),
      m: await read(r.opt.m),
      v: await read(r.opt.v),
    };
    return { status: this.status()!, files: await this.files(), opt };
  }

  /** The token streams and prompts of the run (they never change during it). */
  data(): PretrainData {
    const r = this.require();
    return { trainIds: r.trainIds, valIds: r.valIds, prompts: [...r.prompts] };
  }

  /** Rebuild a run from a checkpoint (replacing any run here); the next `train` goes on from its step. */
  restore(snap: PretrainSnapshot, data: PretrainData): PretrainStatus {
    const bad = (why: string) => new InvalidInputError(`This pretraining checkpoint cannot be resumed: ${why}.`);
    if (!snap?.status || !snap.files || !snap.opt) throw bad('it is incomplete');
    if (!(data?.trainIds instanceof Int32Array) || !(data.valIds instanceof Int32Array))
      throw bad('its text is missing');
    const config = PRETRAIN_SETTINGS.validate(snap.status.config);
    if (snap.opt.step !== snap.status.step) throw bad('its optimiser state belongs to another step');
    const slot = new ModelSlot();
    slot.load(snap.files);
    const id = counter++;
    const model = slot.model!.clone({ trainable: true, namePrefix: `pretrain${id}/` });
    const tok = slot.tokenizer!;
    slot.drop();
    if (data.trainIds.length < model.config.blockSize + 2 || data.valIds.length < model.config.blockSize + 1) {
      model.dispose();
      throw bad('its token streams are shorter than one window');
    }
    let opt: PretrainOptimiser | undefined;
    try {
      const o = (opt = new PretrainOptimiser(model, config, `pretrain${id}-adam`));
      for (const [name, p] of model.params) {
        const m = snap.opt.m[name];
        const v = snap.opt.v[name];
        if (!(m instanceof Float32Array) || !(v instanceof Float32Array) || m.length !== p.size || v.length !== p.size)
          throw bad(`the optimiser state of ${name} does not fit the model`);
        tf.tidy(() => {
          o.m.get(name)!.assign(tf.tensor(m, p.shape));
          o.v.get(name)!.assign(tf.tensor(v, p.shape));
        });
      }
    } catch (e) {
      opt?.dispose();
      model.dispose();
      throw e;
    }
    this.dispose();
    this.run = {
      model,
      opt: opt!,
      rng: Rng.fromState(snap.opt.rng),
      tok,
      config,
      schedule: { lr: config.lr, minLr: config.lr * config.minLrRatio, warmup: config.warmup, steps: config.steps },
      trainIds: data.trainIds,
      valIds: data.valIds,
      prompts: (data.prompts ?? []).filter((p) => typeof p === 'string').slice(0, MAX_PROMPTS),
      status: { ...structuredClone(snap.status), config },
    };
    return this.status()!;
  }

  /** Train a byte-level BPE of `vocabSize` tokens on the documents; kept for runs from scratch. */
  async trainTokenizer(
    docs: string[],
    vocabSize: number,
    onProgress: ((p: TokenizerProgress) => void) | undefined,
    checkpoint: Checkpoint,
  ): Promise<TokenizerSummary> {
    if (!Array.isArray(docs) || !docs.every((d) => typeof d === 'string'))
      throw new InvalidInputError('Give the documents as lists of text.');
    if (!docs.some((d) => d.trim()))
      throw new InvalidInputError('There is no text to train a tokenizer on; add some first.');
    if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB || vocabSize > MAX_VOCAB)
      throw new InvalidInputError(`The vocabulary size must be a whole number from ${MIN_VOCAB} to ${MAX_VOCAB}.`);
    const numMerges = vocabSize - 257;
    const counts = new Map<string, number>();
    for (let i = 0; i < docs.length; i += 2000) {
      countWords(docs.slice(i, i + 2000), counts);
      await checkpoint();
    }
    const newest: string[] = [];
    const tok = await trainBpeAsync(counts, numMerges, {
      progressEvery: 16,
      pause: checkpoint,
      onProgress: (p) => {
        newest.push(p.lastPair);
        if (newest.length > NEWEST_MERGES) newest.shift();
        onProgress?.({ merges: p.merges, numMerges, newest: [...newest] });
      },
    });
    this.trained = tok;
    return { vocabSize: tok.vocabSize, merges: tok.vocabSize - 257, newest };
  }

  clearTokenizer(): void {
    this.trained = null;
  }

  /**
   * Seconds per step of `preset` on `backend`: one warm-up step (kernels compile, memory is
   * allocated), then the mean of two timed ones, on random tokens. Cached: a preset is timed once.
   */
  async timeStep(backend: string, preset: PresetName, batchSize: number, vocabSize: number): Promise<number> {
    if (!PRESET_NAMES.includes(preset)) throw new InvalidInputError(`Unknown model size "${String(preset)}".`);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 512)
      throw new InvalidInputError('The batch size must be a whole number from 1 to 512.');
    if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB || vocabSize > MAX_VOCAB)
      throw new InvalidInputError(`The vocabulary size must be a whole number from ${MIN_VOCAB} to ${MAX_VOCAB}.`);
    const key = `${backend}|${preset}|${vocabSize}|${batchSize}`;
    const cached = this.stepTimes.get(key);
    if (cached !== undefined) return cached;
    const config = presetConfig(preset, vocabSize);
    const T = config.blockSize;
    const id = counter++;
    const model = new GPT(config, { seed: 1, namePrefix: `pretrain-probe${id}/` });
    const opt = new PretrainOptimiser(model, PRETRAIN_SETTINGS.defaults, `pretrain-probe${id}-adam`);
    try {
      const rng = new Rng(7);
      const ids = new Int32Array(T * (batchSize + 2) + 2).map(() => rng.int(vocabSize));
      const step = (t: number) => opt.step(ids, randomStarts(rng, ids.length, T, batchSize), t, 1e-4);
      await step(1); // warm-up
      const t0 = performance.now();
      await step(2);
      await step(3);
      const secs = (performance.now() - t0) / 2000;
      this.stepTimes.set(key, secs);
      return secs;
    } finally {
      opt.dispose();
      model.dispose();
    }
  }

  dispose(): void {
    if (!this.run) return;
    this.run.opt.dispose();
    this.run.model.dispose();
    this.run = null;
  }
}
