/**
 * The model the engine holds: a GPT with its tokenizer and card, loaded from
 * the bundled files or from files the user picked. A load first plans the model
 * from config.json and checks the safetensors header against it (../model/plan.ts),
 * so nothing is allocated for files that cannot fit; then it builds the new model
 * completely before it replaces the old one, so a failed load changes nothing.
 * The files are kept so the model can be rebuilt after the backend under it was lost
 * (a lost GPU device, a wasm trap).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GPT } from '../model/gpt';
import { BpeTokenizer } from '../model/tokenizer';
import { loadSafetensorsIntoModel } from '../model/weights';
import { ModelLoadError } from '../model/errors';
import { checkWeightsHeader, planModel, type BackendLimits } from '../model/plan';
import type { ModelCard, ModelFiles, ModelInfo } from './types';

const MAX_JSON_BYTES = 16 * 1024 * 1024;

function parseJson(text: string, what: string): unknown {
  if (text.length > MAX_JSON_BYTES) throw new ModelLoadError(`${what} is larger than 16 MB; is it the right file?`);
  try {
    return JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
  } catch (e) {
    throw new ModelLoadError(`${what} is not valid JSON (${(e as Error).message}). Pick the ${what} of the model.`);
  }
}

function parseCard(text: string | undefined): ModelCard | undefined {
  if (!text) return undefined;
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return undefined; // a broken card is not worth refusing a model for
  }
  if (!j || typeof j !== 'object') return undefined;
  const o = j as Record<string, unknown>;
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const num = (k: string) => (typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : undefined);
  return {
    description: str('description'),
    corpus: str('corpus'),
    licence: str('licence'),
    valLoss: num('valLoss'),
    trainSteps: num('trainSteps'),
    trainTokens: num('trainTokens'),
  };
}

/** The weights file as messages name it: the bundled model's is model.safetensors. */
function weightsFileName(files: ModelFiles): string {
  return files.source === 'bundled' ? 'model.safetensors' : `${files.name}.safetensors`;
}

export class ModelSlot {
  model: GPT | null = null;
  tokenizer: BpeTokenizer | null = null;
  info: ModelInfo | null = null;
  private files: ModelFiles | null = null;
  /** Test hook ({@link Engine.debugTrapNextLoad}): the next build fails as a wasm trap does, after its tensors exist. */
  trapNextBuild = false;

  /**
   * Build a model from files; replaces the current one only when everything succeeded.
   * `limits` (what the backend can hold) default to none: the config caps still apply.
   */
  load(files: ModelFiles, limits?: BackendLimits): ModelInfo {
    const hfConfig = parseJson(files.config, 'config.json');
    let tokenizer: BpeTokenizer;
    try {
      tokenizer = BpeTokenizer.fromJSON(parseJson(files.tokenizer, 'tokenizer.json'));
    } catch (e) {
      if (e instanceof ModelLoadError) throw e;
      const why = (e as Error).message.trim().replace(/\.+$/, '');
      throw new ModelLoadError(`tokenizer.json could not be read: ${why}.`);
    }
    const plan = planModel(
      hfConfig,
      limits ?? { backend: 'active', maxTotalBytes: null, maxBufferBytes: null, inUseBytes: 0 },
    );
    const { config } = plan;
    if (config.vocabSize !== tokenizer.vocabSize) {
      throw new ModelLoadError(
        `config.json: "vocab_size" is ${config.vocabSize}, but tokenizer.json has ${tokenizer.vocabSize} tokens. Pick files of the same model.`,
      );
    }
    const weightsName = weightsFileName(files);
    const bytes = new Uint8Array(files.weights);
    checkWeightsHeader(bytes, plan, weightsName);
    const model = new GPT(config, { trainable: false, namePrefix: `model-${Date.now()}/`, init: 'zeros' });
    try {
      if (this.trapNextBuild) {
        this.trapNextBuild = false;
        throw new WebAssembly.RuntimeError('memory access out of bounds (simulated by debugTrapNextLoad)');
      }
      loadSafetensorsIntoModel(model, bytes, weightsName);
    } catch (e) {
      try {
        model.dispose();
      } catch {
        /* after a trap the backend may not even free memory; the engine restarts it */
      }
      throw e;
    }
    this.model?.dispose();
    this.model = model;
    this.tokenizer = tokenizer;
    this.files = files;
    this.info = {
      name: files.name,
      source: files.source,
      config,
      numParams: model.numParams(),
      weightsBytes: files.weights.byteLength,
      card: parseCard(files.card),
      memory: { weightsBytes: plan.weightsBytes, kvCacheBytes: plan.kvCacheBytes, trainingBytes: plan.trainingBytes },
    };
    return this.info;
  }

  /** Rebuild from the kept bytes (after the backend under the weights was lost). */
  reload(): void {
    if (this.files) this.load(this.files);
  }

  /**
   * Forget the model whose backend is about to be restarted, keeping its files for `reload`.
   * Its tensors die with the backend; freeing them first is best effort.
   */
  drop(): void {
    try {
      this.model?.dispose();
    } catch {
      /* the backend under it failed */
    }
    this.model = null;
    this.tokenizer = null;
    this.info = null;
  }

  require(): { model: GPT; tokenizer: BpeTokenizer; info: ModelInfo } {
    if (!this.model || !this.tokenizer || !this.info) {
      throw new ModelLoadError('No model is loaded yet. Wait for the bundled model, or load one from files.');
    }
    return { model: this.model, tokenizer: this.tokenizer, info: this.info };
  }

  /**
   * Every token of `ids` with its log-probability under the model (temperature 1) and the five
   * most likely alternatives at that position. The first token has no prediction; a sequence
   * longer than the context is scored over its last `blockSize` tokens.
   */
  async inspect(ids: number[], start: number): Promise<import('./types').TokenInfo[]> {
    const { model, tokenizer } = this.require();
    const T = model.config.blockSize;
    const offset = Math.max(0, ids.length - T);
    const window = ids.slice(offset);
    const K = Math.min(5, model.config.vocabSize);
    const out = tf.tidy(() => {
      const idx = tf.tensor2d([window], [1, window.length], 'int32');
      const { logits } = model.forward(idx);
      const logp = tf.logSoftmax(tf.reshape(logits, [window.length, model.config.vocabSize]));
      const top = tf.topk(logp, K);
      return { logp, values: top.values, indices: top.indices };
    });
    const [lp, vals, inds] = await Promise.all([out.logp.data(), out.values.data(), out.indices.data()]);
    tf.dispose([out.logp, out.values, out.indices]);
    const V = model.config.vocabSize;
    const result: import('./types').TokenInfo[] = [];
    for (let i = start; i < ids.length; i++) {
      const w = i - offset; // position in the window
      const info: import('./types').TokenInfo = {
        id: ids[i],
        text: tokenizer.decodeToken(ids[i]),
        logprob: null,
        top: [],
      };
      if (w >= 1) {
        const p = w - 1; // logits at p predict token p + 1
        info.logprob = lp[p * V + ids[i]];
        for (let k = 0; k < K; k++) {
          const id = inds[p * K + k];
          info.top.push({ id, text: tokenizer.decodeToken(id), logprob: vals[p * K + k] });
        }
      }
      result.push(info);
    }
    return result;
  }
}
