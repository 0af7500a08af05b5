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
import { loadSafetensorsIntoModel, normalizeHfNames } from '../model/weights';
import { ModelLoadError } from '../model/errors';
import { checkWeightsEntries, checkWeightsHeader, planModel, type BackendLimits, type ModelPlan } from '../model/plan';
import { checkVocabSizes, readTokenizer, sortPickedFiles, tokenizerLabel, type HubFiles } from '../model/hub-files';
import { loadCheckpointIntoModel, openCheckpoint, type CheckpointHeaders } from '../model/safetensors-blob';
import { budgets, fits, memoryUses } from '../model/memory';
import type { ModelCard, ModelFiles, ModelInfo, ModelPlanView, PickedModelFile } from './types';

const NO_LIMITS: BackendLimits = { backend: 'active', maxTotalBytes: null, maxBufferBytes: null, inUseBytes: 0 };

/** A Hub model read as far as its headers: everything checked, nothing allocated. */
interface PreparedHub {
  hub: HubFiles;
  name: string;
  architecture: string;
  plan: ModelPlan;
  /** Read only when the model fits (a refused model is not read beyond config.json). */
  tokenizer: BpeTokenizer | null;
  checkpoint: CheckpointHeaders | null;
  /** Our parameter name → the checkpoint's tensor name. */
  names: Map<string, string>;
  refusal: string | null;
}

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
  private files: ModelFiles | HubFiles | null = null;
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

  /**
   * Read picked files as far as their headers (config.json, the tokenizer, every shard's header)
   * and plan the model. Refusals of the files themselves throw; a model that is well formed but
   * would not fit the backend comes back with `refusal` set, so its plan can still be shown.
   */
  private async prepareHub(picked: PickedModelFile[] | HubFiles, limits: BackendLimits): Promise<PreparedHub> {
    const hub = Array.isArray(picked) ? sortPickedFiles(picked) : picked;
    if (hub.config.blob.size > MAX_JSON_BYTES)
      throw new ModelLoadError('config.json is larger than 16 MB; is it the right file?');
    const hfConfig = parseJson(await hub.config.blob.text(), 'config.json');
    const plan = planModel(hfConfig, NO_LIMITS); // unreadable or over the caps: thrown
    let refusal: string | null = null;
    try {
      planModel(hfConfig, limits);
    } catch (e) {
      if (!(e instanceof ModelLoadError)) throw e;
      refusal = e.message;
    }
    const j = hfConfig as Record<string, unknown>;
    const nameOrPath = typeof j._name_or_path === 'string' ? j._name_or_path.split('/').pop() : '';
    const architecture = typeof j.model_type === 'string' ? j.model_type : 'gpt2';
    const name = hub.name || nameOrPath || architecture;
    const names = new Map<string, string>();
    if (refusal) return { hub, name, architecture, plan, tokenizer: null, checkpoint: null, names, refusal };
    const eos = typeof j.eos_token_id === 'number' ? j.eos_token_id : undefined;
    const label = tokenizerLabel(hub.tokenizer);
    const tokenizer = checkVocabSizes(plan.config.vocabSize, await readTokenizer(hub.tokenizer, eos), label);
    const checkpoint = await openCheckpoint(hub.weights, hub.index);
    const raw = new Map([...checkpoint.tensors.keys()].map((n) => [n, n]));
    for (const [ours, theirs] of normalizeHfNames(plan.config, raw)) names.set(ours, theirs);
    checkWeightsEntries(new Map([...checkpoint.tensors].map(([n, src]) => [n, src.entry])), plan, checkpoint.label);
    return { hub, name, architecture, plan, tokenizer, checkpoint, names, refusal };
  }

  /** The plan of picked files, as the page shows it before loading. */
  async planPicked(picked: PickedModelFile[], limits?: BackendLimits): Promise<ModelPlanView> {
    const p = await this.prepareHub(picked, limits ?? NO_LIMITS);
    const uses = memoryUses(p.plan);
    const bs = budgets(limits ?? NO_LIMITS);
    const used = [
      p.hub.config.name,
      ...(p.hub.index ? [p.hub.index.name] : []),
      ...p.hub.weights.map((w) => w.name),
      ...tokenizerLabel(p.hub.tokenizer).split(' and '),
      ...(p.hub.card ? [p.hub.card.name] : []),
    ];
    return {
      name: p.name,
      architecture: p.architecture,
      config: p.plan.config,
      params: p.plan.params,
      used,
      ignored: p.hub.ignored,
      fileBytes: p.hub.weights.reduce((a, w) => a + w.blob.size, 0),
      dtypes: [...new Set([...p.names.values()].map((n) => p.checkpoint!.tensors.get(n)!.entry.dtype))].sort(),
      tokenizer: { files: tokenizerLabel(p.hub.tokenizer), vocabSize: p.tokenizer?.vocabSize ?? null },
      uses,
      budgets: bs,
      fits: uses.map((u) => bs.map((b) => fits(u.bytes + (u.key === 'sample' ? (limits?.inUseBytes ?? 0) : 0), b))),
      refusal: p.refusal,
    };
  }

  /**
   * Load picked files (a Hub folder): planned and checked first, then built aside, each tensor
   * read from its file's slice; replaces the current model only when everything succeeded.
   */
  async loadPicked(picked: PickedModelFile[] | HubFiles, limits?: BackendLimits): Promise<ModelInfo> {
    const p = await this.prepareHub(picked, limits ?? NO_LIMITS);
    if (p.refusal || !p.checkpoint || !p.tokenizer) throw new ModelLoadError(p.refusal ?? 'The model was not read.');
    const { config } = p.plan;
    const model = new GPT(config, { trainable: false, namePrefix: `model-${Date.now()}/`, init: 'zeros' });
    try {
      if (this.trapNextBuild) {
        this.trapNextBuild = false;
        throw new WebAssembly.RuntimeError('memory access out of bounds (simulated by debugTrapNextLoad)');
      }
      await loadCheckpointIntoModel(model, p.checkpoint!, p.names);
    } catch (e) {
      try {
        model.dispose();
      } catch {
        /* after a trap the backend may not even free memory; the engine restarts it */
      }
      throw e;
    }
    const card = p.hub.card ? parseCard(await p.hub.card.blob.text()) : undefined;
    this.model?.dispose();
    this.model = model;
    this.tokenizer = p.tokenizer!;
    this.files = p.hub;
    this.info = {
      name: p.name,
      source: 'files',
      config,
      numParams: model.numParams(),
      weightsBytes: p.checkpoint!.bytes,
      card,
      memory: {
        weightsBytes: p.plan.weightsBytes,
        kvCacheBytes: p.plan.kvCacheBytes,
        trainingBytes: p.plan.trainingBytes,
      },
    };
    return this.info;
  }

  /** Rebuild from the kept files (after the backend under the weights was lost). */
  async reload(): Promise<void> {
    const files = this.files;
    if (!files) return;
    if ('source' in files) this.load(files);
    else await this.loadPicked(files);
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
