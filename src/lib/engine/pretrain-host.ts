/**
 * The engine's pretraining job: a GPT trained from scratch (a size preset) or continued from the
 * loaded model on the user's documents, with the loaded model's tokenizer. The step is the one
 * `scripts/pretrain.ts` runs (`../pretrain/trainer.ts`); the validation loss is scored on the
 * same windows as the unigram and add-k bigram baselines (`../pretrain/baselines.ts`), and every
 * loss has its bits per byte. The run lives here between jobs: cancelling a `train` job pauses it
 * at a step boundary and the next `train` goes on from there. The loaded model is never touched
 * until the user adopts the result (`files`, then the engine loads them).
 */
import { GPT } from '../model/gpt';
import { evaluateLoss, tokenizeDocs } from '../model/evaluate';
import { Rng } from '../model/rng';
import { generate } from '../model/sampling';
import type { BpeTokenizer } from '../model/tokenizer';
import { configToHF, saveModelSafetensors } from '../model/weights';
import { bitsPerByte, countingBaselines, evalTargets } from '../pretrain/baselines';
import { PRETRAIN_SETTINGS, type PretrainConfig } from '../pretrain/config';
import { presetConfig } from '../pretrain/presets';
import { textStats } from '../pretrain/text';
import { PretrainOptimiser, lrAt, randomStarts, type Schedule } from '../pretrain/trainer';
import { InvalidInputError, NotReadyError } from './errors';
import type { Checkpoint } from './jobs';
import type { ModelFiles, PretrainEvent, PretrainRequest, PretrainStatus } from './types';

let counter = 0;

/** Most prompts sampled at each sample step. */
const MAX_PROMPTS = 8;

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

  status(): PretrainStatus | null {
    return this.run ? structuredClone(this.run.status) : null;
  }

  /** Tokenise the documents, count the baselines and build the model (replacing any earlier run). */
  prepare(tok: BpeTokenizer, loaded: { model: GPT; name: string }, req: PretrainRequest): PretrainStatus {
    const config = PRETRAIN_SETTINGS.validate(req.config ?? {});
    const docsOk = (d: unknown) => Array.isArray(d) && d.every((x) => typeof x === 'string');
    if (!docsOk(req.train) || !docsOk(req.val)) throw new InvalidInputError('Give the documents as lists of text.');
    if (req.train.length === 0 || req.val.length === 0)
      throw new InvalidInputError('Pretraining needs training and validation documents; add more text.');
    if (req.init !== 'scratch' && req.init !== 'continue')
      throw new InvalidInputError(`Start from 'scratch' or 'continue', not ${JSON.stringify(req.init)}.`);
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
      if (r.status.step % config.evalEvery === 0 || last) await this.evaluate(r, onEvent);
      if (r.status.step % config.sampleEvery === 0 || last) await this.sample(r, onEvent);
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
    return {
      name: status.name,
      source: 'files',
      config: JSON.stringify(configToHF(model.config, tok.eotId, 'F32')),
      tokenizer: JSON.stringify(tok.toJSON()),
      weights: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      card: JSON.stringify({
        description: `${from} in the tab: ${status.step} steps of ${status.config.batchSize}×${model.config.blockSize} tokens, ${status.params.toLocaleString('en')} parameters, the ${status.baseName} tokenizer. Validation loss ${status.lastValLoss?.toFixed(3) ?? '–'} nats/token (${status.lastValBpb?.toFixed(3) ?? '–'} bits/byte); unigram ${status.baselines.unigram.toFixed(3)}, bigram ${status.baselines.bigram.toFixed(3)}.`,
        corpus: status.corpus || undefined,
        valLoss: status.lastValLoss ?? undefined,
        trainSteps: status.step,
        trainTokens: status.step * status.config.batchSize * model.config.blockSize,
      }),
    };
  }

  dispose(): void {
    if (!this.run) return;
    this.run.opt.dispose();
    this.run.model.dispose();
    this.run = null;
  }
}
