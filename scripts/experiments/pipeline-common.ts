/**
 * Shared pieces of the Node experiments (reward model, PPO, DPO, the whole pipeline): backend
 * set-up, loading the bundled model, sampling pairs labelled by a scripted labeller, and the
 * gold evaluation of a policy on held-out prompts. Same library code as the app.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Registers every gradient (tfjs-core alone has none); tsx cannot resolve the deep import.
import '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrainingPair } from '../../src/lib/data/records';
import type { GPTConfig } from '../../src/lib/model/config';
import { GPT } from '../../src/lib/model/gpt';
import { Rng } from '../../src/lib/model/rng';
import { generate } from '../../src/lib/model/sampling';
import { BpeTokenizer } from '../../src/lib/model/tokenizer';
import { configFromHF, loadSafetensorsIntoModel, readSafetensors } from '../../src/lib/model/weights';
import { logprobsOfTokens } from '../../src/lib/rlhf/entropy';
import { labellerFromConfig, type Choice, type LabellerConfig } from '../../src/lib/rlhf/labellers';

export async function setBackend(name: string): Promise<void> {
  if (name === 'wasm') {
    // Threaded wasm is not used in Node here; one thread, as in the browser without isolation.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setWasmPaths(fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url)));
  }
  if (!(await tf.setBackend(name))) throw new Error(`TF.js backend ${name} did not initialise`);
  await tf.ready();
}

export interface LoadedModel {
  model: GPT;
  tok: BpeTokenizer;
  config: GPTConfig;
  /** Where the weights came from, for the log. */
  source: string;
}

/**
 * The model in `dir` (HF `config.json`, `tokenizer.json`, `model.safetensors`), or the weights of a
 * pretraining checkpoint (model weights plus `adam.*` moments, which are skipped).
 */
export function loadModel(dir: string, opts: { checkpoint?: string; namePrefix?: string } = {}): LoadedModel {
  const d = resolve(dir);
  const config = configFromHF(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')));
  const tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(join(d, 'tokenizer.json'), 'utf8')));
  const model = new GPT(config, { trainable: false, namePrefix: opts.namePrefix ?? 'base/' });
  let source = join(d, 'model.safetensors');
  if (opts.checkpoint) {
    const file = readSafetensors(readFileSync(resolve(opts.checkpoint)));
    const map = new Map<string, tf.Tensor>();
    for (const [name, t] of file.tensors) if (!name.startsWith('adam.')) map.set(name, tf.tensor(t.data, t.shape));
    model.setWeights(map);
    tf.dispose([...map.values()]);
    source = `${opts.checkpoint} (step ${file.metadata.step})`;
  } else loadSafetensorsIntoModel(model, readFileSync(source));
  return { model, tok, config, source };
}

export function readPrompts(path: string): string[] {
  return (JSON.parse(readFileSync(resolve(path), 'utf8')) as { prompts: string[] }).prompts;
}

/** Every 4th prompt (indices 3, 7, …) held out for evaluation; the rest for training. */
export function splitPrompts(all: string[]): { train: string[]; heldOut: string[] } {
  return { heldOut: all.filter((_, i) => i % 4 === 3), train: all.filter((_, i) => i % 4 !== 3) };
}

/** A labelled pair of two samples for one prompt: the noisy label and the noise-free one. */
export interface Candidate {
  prompt: string;
  a: string;
  b: string;
  choice: Choice;
  clean: Choice;
}

export function toPair(c: Candidate): TrainingPair | null {
  if (c.choice === 'tie') return null;
  return c.choice === 'A'
    ? { prompt: c.prompt, chosen: c.a, rejected: c.b }
    : { prompt: c.prompt, chosen: c.b, rejected: c.a };
}

export interface SamplePairsOptions {
  labeller: LabellerConfig;
  maxNewTokens: number;
  temperature: number;
  seed: number;
  /** Which candidates to keep (default: those with a non-tie noisy label). */
  keep?: (c: Candidate) => boolean;
}

/**
 * Sample pairs until `want` candidates pass `keep` (giving up after 10·want tries): two responses
 * per prompt, prompts in shuffled rounds, 32 pairs (64 rows) per batch; prompt ids as the engine
 * samples them, `[eot, ...encodePrompt(prompt).ids]`. Identical responses are skipped.
 */
export async function samplePairs(
  model: GPT,
  tok: BpeTokenizer,
  prompts: string[],
  want: number,
  o: SamplePairsOptions,
): Promise<{ candidates: Candidate[]; ties: number; samples: number; seconds: number }> {
  const labeller = labellerFromConfig(o.labeller);
  const keep = o.keep ?? ((c: Candidate) => c.choice !== 'tie');
  const rng = new Rng(o.seed + 100);
  const t0 = performance.now();
  const out: Candidate[] = [];
  let ties = 0;
  let samples = 0;
  let batchSeed = o.seed * 1000;
  const queue: string[] = [];
  const refill = () => {
    const order = [...prompts];
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    queue.push(...order);
  };
  const maxPairs = 10 * want + 64;
  let tried = 0;
  while (out.length < want && tried < maxPairs) {
    while (queue.length < 32) refill();
    const chunk = queue.splice(0, 32);
    tried += chunk.length;
    const ids = chunk.flatMap((p) => {
      const row = [tok.eotId, ...tok.encodePrompt(p).ids];
      return [row, row];
    });
    const rows = await generate(
      model,
      ids,
      { maxNewTokens: o.maxNewTokens, temperature: o.temperature, seed: batchSeed++, decode: (x) => tok.decode(x) },
      tok.eotId,
    );
    samples += rows.length;
    chunk.forEach((prompt, k) => {
      if (out.length >= want) return;
      const ra = rows[2 * k].text;
      const rb = rows[2 * k + 1].text;
      if (ra === rb) return;
      const j = labeller.judge(ra, rb, prompt, rng);
      const c: Candidate = { prompt, a: ra, b: rb, choice: j.choice, clean: j.clean };
      if (c.choice === 'tie') ties++;
      if (keep(c)) out.push(c);
    });
  }
  return { candidates: out, ties, samples, seconds: (performance.now() - t0) / 1000 };
}

export function stats(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const v = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, xs.length - 1);
  return { mean, std: Math.sqrt(v) };
}

export interface PolicyEvalOptions {
  /** Samples per prompt. */
  samples: number;
  seed: number;
  maxNewTokens: number;
  temperature: number;
  /** Prompt ids → query ids as the trainer builds them (PPO: `trainer.queryFor(encodePrompt(p))`). */
  query: (prompt: string) => number[];
}

export interface PolicyEval {
  scores: number[];
  /** Per sample Σ_t log π − log π_ref over the response (k1 on the model's own samples). */
  kl: number[];
  texts: string[];
  examples: string[];
}

/**
 * `opts.samples` samples per prompt from `model` (fixed seeds, so two models are compared on
 * the same random numbers), their `score`, and per-sample KL(model ‖ ref) at the temperature.
 */
export async function evaluatePolicy(
  model: GPT,
  ref: GPT,
  tok: BpeTokenizer,
  prompts: string[],
  score: (text: string, prompt: string) => number,
  opts: PolicyEvalOptions,
): Promise<PolicyEval> {
  const flat = prompts.flatMap((p) => Array.from({ length: opts.samples }, () => p));
  const queries = flat.map((p) => opts.query(p));
  const out: PolicyEval = { scores: [], kl: [], texts: [], examples: [] };
  const CHUNK = 32;
  for (let c0 = 0; c0 < flat.length; c0 += CHUNK) {
    const qs = queries.slice(c0, c0 + CHUNK);
    const rows = await generate(
      model,
      qs,
      {
        maxNewTokens: opts.maxNewTokens,
        temperature: opts.temperature,
        seed: opts.seed + c0,
        decode: (ids) => tok.decode(ids),
      },
      tok.eotId,
    );
    // Reference log-probs of the sampled tokens: one forward pass over right-padded rows.
    const L = Math.max(...qs.map((q, i) => q.length + rows[i].ids.length));
    const seq = new Int32Array(qs.length * L).fill(tok.eotId);
    qs.forEach((q, i) => seq.set([...q, ...rows[i].ids], i * L));
    const lpT = tf.tidy(() => {
      const x = tf.tensor2d(seq, [qs.length, L], 'int32');
      const targets = tf.concat(
        [tf.slice(x, [0, 1], [qs.length, L - 1]), tf.fill([qs.length, 1], tok.eotId, 'int32')],
        1,
      );
      return logprobsOfTokens(ref.forward(x).logits, targets as tf.Tensor2D, opts.temperature);
    });
    const lp = (await lpT.data()) as Float32Array;
    lpT.dispose();
    rows.forEach((r, i) => {
      const prompt = flat[c0 + i];
      out.scores.push(score(r.text, prompt));
      out.texts.push(r.text);
      let k = 0;
      r.ids.forEach((_, j) => (k += r.logprobs[j] - lp[i * L + qs[i].length - 1 + j]));
      out.kl.push(k);
      if (out.examples.length < 6 && (c0 + i) % opts.samples === 0) out.examples.push(`${prompt}|${r.text}`);
    });
  }
  return out;
}
