/**
 * The hand-off bundle of a Llama-family model (issue #19): the real engine loads a small
 * SmolLM2-shaped Llama (grouped-query attention, tied or untied head) with the shipped tokenizer,
 * exports it, and the bundle carries it as a Hugging Face LlamaForCausalLM folder: LlamaConfig
 * `config.json`, `model.safetensors` in HF names and layouts ([out, in] projections) that read back
 * into an equal model; with Debian's PyTorch, scripts/golden/check_handoff.py's independent Llama
 * forward reproduces the app's log-probabilities, and catches weights in the wrong layout.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { BUNDLED_MODEL } from './bundled-engine';
import { createEngine } from '../../src/lib/engine/engine';
import { buildHandoffZip, HANDOFF_FILES, HANDOFF_REWARD_FILES, handoffFiles } from '../../src/lib/data/handoff';
import { seqClsShapes } from '../../src/lib/data/handoff-reward';
import type { TrainingPair } from '../../src/lib/data/records';
import { readZip } from '../../src/lib/data/zip';
import type { GPTConfig } from '../../src/lib/model/config';
import { GPT } from '../../src/lib/model/gpt';
import { BpeTokenizer } from '../../src/lib/model/tokenizer';
import { rewardInputIds } from '../../src/lib/rlhf/reward-model';
import {
  configFromHF,
  configToHF,
  hfParameterShapes,
  hfToModelTensors,
  modelTensors,
  modelToHfTensors,
  readSafetensors,
  saveModelSafetensors,
  writeSafetensors,
} from '../../src/lib/model/weights';

const PYTHON = '/usr/bin/python3';
const dec = new TextDecoder();
const wasmPath = fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));

function hasTorch(): boolean {
  if (!existsSync(PYTHON)) return false;
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** SmolLM2's shape, small: GQA (4 query heads, 2 kv heads), SwiGLU, rope_theta 1e5; the shipped vocabulary. */
function llamaConfig(tied: boolean): GPTConfig {
  return {
    arch: 'llama',
    vocabSize: 1281,
    blockSize: 64,
    nLayer: 2,
    nHead: 4,
    nKvHead: 2,
    nEmbd: 32,
    intermediateSize: 64,
    ropeTheta: 100000,
    tieWordEmbeddings: tied,
    layerNormEps: 1e-5,
  };
}

let made = 0;

/** An engine with a random Llama model loaded through its HF files, as the file picker loads one. */
async function engineWithLlama(tied: boolean) {
  const engine = createEngine();
  await engine.init({ backend: 'cpu', wasmPath });
  const config = llamaConfig(tied);
  const model = new GPT(config, { seed: 11, namePrefix: `llama-handoff-${made++}/` });
  const bytes = await saveModelSafetensors(model, 'F32');
  const tokenizer = readFileSync(`${BUNDLED_MODEL}/tokenizer.json`, 'utf8');
  await engine.loadModel({
    name: 'llama-small',
    source: 'files',
    config: JSON.stringify(configToHF(config, 1280, 'F32')),
    tokenizer,
    weights: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
  });
  return { engine, model, config, tokenizer };
}

const PROMPTS = ['The movie was', 'The food was', 'The book was', 'The show was', 'My day was'];
const PAIRS: TrainingPair[] = PROMPTS.flatMap((prompt) =>
  [0, 1, 2].map((i) => ({ prompt, chosen: ` great great${' !'.repeat(i)}`, rejected: ` awful${' .'.repeat(i)}` })),
);
/** Texts of different lengths, so the batch is right-padded. */
const SAMPLES = [
  { prompt: 'The movie was', response: ' great great' },
  { prompt: 'The movie was', response: ' awful, slow and far too long for me.' },
  { prompt: 'Once upon a time,', response: ' a fox' },
  { prompt: 'The food at this restaurant', response: ' was lovely' },
];

/**
 * A reward model trained by the engine on a Llama model (untied head, so the state also holds an
 * lm_head the export must leave out): 'last' pooling in full mode with LoRA (stored merged), 'mean'
 * pooling in head mode.
 */
async function llamaRewardModel(pooling: 'last' | 'mean') {
  const { engine, model, config, tokenizer } = await engineWithLlama(false);
  const { summary, state } = await engine.trainRewardModel('rm', {
    id: `rm-llama-${pooling}`,
    name: `RM llama ${pooling}`,
    pairs: PAIRS,
    recordIds: [],
    pooling,
    valFraction: 0.4,
    seed: 1,
    ...(pooling === 'last'
      ? { mode: 'full' as const, lora: true, epochs: 2, linearProbe: false }
      : { mode: 'head' as const, epochs: 20 }),
  });
  const exported = await engine.exportModel('base');
  return { engine, model, config, tokenizer, summary, state, exported };
}

function unzip(model: Parameters<typeof buildHandoffZip>[0]['model']) {
  return readZip(buildHandoffZip({ pairs: [], recordCount: 0, model, createdAt: new Date(2026, 11, 3) }));
}

describe('hand-off bundle of a Llama model', () => {
  for (const tied of [true, false]) {
    it(`${tied ? 'tied' : 'untied'} head: a LlamaForCausalLM folder whose safetensors read back into an equal model`, async () => {
      const { engine, model, config } = await engineWithLlama(tied);
      const exported = await engine.exportModel('base');
      const files = unzip(exported);
      expect([...files.keys()]).toEqual([...HANDOFF_FILES]);

      const hf = JSON.parse(dec.decode(files.get('model/config.json'))) as Record<string, unknown>;
      expect(hf).toMatchObject({
        model_type: 'llama',
        architectures: ['LlamaForCausalLM'],
        num_key_value_heads: 2,
        rope_theta: 100000,
        tie_word_embeddings: tied,
        pad_token_id: 1280,
      });
      const back = configFromHF(hf);
      expect(back).toMatchObject(config);

      // HF names and layouts: exactly LlamaForCausalLM's tensors ([out, in] projections), then back.
      const st = readSafetensors(files.get('model/model.safetensors')!);
      const want = hfParameterShapes(config);
      expect([...st.tensors.keys()].sort()).toEqual([...want.keys()].sort());
      expect(st.tensors.has('lm_head.weight')).toBe(!tied);
      for (const [name, t] of st.tensors) expect(t.shape, name).toEqual(want.get(name));
      expect(st.tensors.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([16, 32]);
      const reloaded = new GPT(back, { init: 'zeros', namePrefix: `llama-handoff-back-${made++}/` });
      const records = new Map(
        [...st.tensors].map(([n, t]) => [n, { shape: t.shape, data: Float32Array.from(t.data) }]),
      );
      const asModel = hfToModelTensors(back, records);
      const map = new Map([...asModel].map(([n, t]) => [n, tf.tensor(t.data, t.shape)]));
      reloaded.setWeights(map);
      tf.dispose([...map.values()]);
      const a = await modelTensors(model);
      const b = await modelTensors(reloaded);
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [name, t] of a) {
        expect(b.get(name)!.shape, name).toEqual(t.shape);
        expect(b.get(name)!.data, name).toEqual(t.data);
      }
      // The same model: same logits.
      const ids = tf.tensor2d([[1280, 5, 300, 77, 1200]], undefined, 'int32');
      const la = model.forward(ids).logits;
      const lb = reloaded.forward(ids).logits;
      expect(await lb.data()).toEqual(await la.data());
      tf.dispose([ids, la, lb]);

      const readme = dec.decode(files.get('README.md'));
      expect(readme).toContain('## Is it Llama?');
      expect(readme).toContain('LlamaForCausalLM.from_pretrained("./model")');
      expect(readme).toContain('2 key/value heads');
      expect(readme).not.toContain('## Is it GPT-2?');
      expect(readme).toContain('`LlamaConfig`: `model_type: "llama"`');
      reloaded.dispose();
      model.dispose();
    });
  }

  it('a Llama reward model goes into the bundle as LlamaForSequenceClassification, its constant as score_offset', async () => {
    const { engine, model, config, state, summary, exported } = await llamaRewardModel('last');
    const files = new Map(
      handoffFiles({
        pairs: PAIRS,
        recordCount: PAIRS.length,
        model: exported,
        rewardModel: { name: summary.name, state },
        prompts: PROMPTS,
      }).map((e) => [e.name, typeof e.data === 'string' ? new TextEncoder().encode(e.data) : e.data]),
    );
    expect([...files.keys()]).toEqual([...HANDOFF_FILES, ...HANDOFF_REWARD_FILES]);
    const cfg = JSON.parse(dec.decode(files.get('reward_model/config.json'))) as Record<string, unknown>;
    const { gain, bias } = state.normalisation;
    const b = state.weights.get('score.bias')![0];
    expect(gain).not.toBe(1); // the normalisation is real, so folding it is tested
    expect(cfg).toMatchObject({
      model_type: 'llama',
      architectures: ['LlamaForSequenceClassification'],
      num_labels: 1,
      pad_token_id: 1280,
      hidden_size: 32,
      num_key_value_heads: 2,
      intermediate_size: 64,
      rope_theta: 100000,
      rlhf_playground: { pooling: 'last', exact: false, normalisation: { gain, bias }, score_bias: b },
    });
    const offset = (cfg.rlhf_playground as { score_offset: number }).score_offset;
    expect(offset).toBeCloseTo(gain * b + bias, 10);

    // Names and layouts: LlamaModel's [out, in] projections, no LM head, score.weight = gain · w.
    const st = readSafetensors(files.get('reward_model/model.safetensors')!);
    const want = seqClsShapes(config);
    expect([...st.tensors.keys()].sort()).toEqual([...want.keys()].sort());
    expect(st.tensors.has('lm_head.weight')).toBe(false);
    expect(st.tensors.has('score.bias')).toBe(false);
    for (const [name, t] of st.tensors) expect(t.shape, name).toEqual(want.get(name));
    const kHeld = state.weights.get('model.layers.1.self_attn.k_proj.weight')!; // [32, 16] here
    const kHf = st.tensors.get('model.layers.1.self_attn.k_proj.weight')!; // [16, 32] in HF
    expect(kHf.shape).toEqual([16, 32]);
    for (const [i, j] of [
      [0, 0],
      [3, 7],
      [31, 15],
    ])
      expect(kHf.data[j * 32 + i]).toBe(kHeld[i * 16 + j]);
    expect(st.tensors.get('model.norm.weight')!.data).toEqual(state.weights.get('model.norm.weight'));
    const w = state.weights.get('score.weight')!;
    st.tensors.get('score.weight')!.data.forEach((x, i) => expect(x).toBeCloseTo(gain * w[i], 6));

    // The GRPO / RLOO configs score with rlhf_reward.py, which adds the offset; README and panel text say so.
    expect(dec.decode(files.get('configs/trl_grpo.yaml'))).toMatch(/^reward_funcs:\n {2}- rlhf_reward\.reward_model$/m);
    const readme = dec.decode(files.get('README.md'));
    expect(readme).toContain('as `LlamaForSequenceClassification` in `reward_model/`');
    expect(readme).toContain('**Exact up to a constant.**');
    expect(readme).toContain(`HF's logit **+ ${offset.toPrecision(6)}**`);
    expect(readme).toContain("Llama's final RMSNorm (`model.norm`) has none");
    expect(readme).not.toContain('GPT2ForSequenceClassification');
    for (const f of ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json'])
      expect(files.get(`reward_model/${f}`)).toEqual(files.get(`model/${f}`));
    void engine;
    model.dispose();
  });

  it.runIf(hasTorch())('check_handoff.py runs its own Llama forward on the bundle and matches the app', async () => {
    for (const tied of [true, false]) {
      const { engine, model, config, tokenizer } = await engineWithLlama(tied);
      const exported = await engine.exportModel('base');
      const dir = mkdtempSync(join(tmpdir(), 'handoff-llama-'));
      try {
        for (const [name, data] of unzip(exported)) {
          mkdirSync(dirname(join(dir, name)), { recursive: true });
          writeFileSync(join(dir, name), data);
        }
        const tok = BpeTokenizer.fromJSON(JSON.parse(tokenizer));
        const expected = { ids: [] as number[][], logprobs: [] as number[][] };
        for (const text of ['The movie was great and I loved it.', 'Once upon a time, a fox']) {
          const ids = tok.encode(text);
          const info = await engine.inspectTokens([], ids);
          expected.ids.push([tok.eotId, ...ids]);
          expected.logprobs.push(info.map((t) => t.logprob!));
        }
        writeFileSync(join(dir, 'expected.json'), JSON.stringify(expected));
        const run = () =>
          execFileSync(PYTHON, ['scripts/golden/check_handoff.py', dir, '--expect', join(dir, 'expected.json')], {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'pipe'],
          });
        expect(run()).toMatch(
          new RegExp(`^ok: ${tied ? 20 : 21} tensors .* under LlamaForCausalLM names; log-probs match the app`, 'm'),
        );

        // The check can fail: the square q_proj weights left in the app's [in, out] layout.
        const hfTensors = modelToHfTensors(config, await modelTensors(model));
        const wrong = new Map(hfTensors);
        for (const [name, t] of await modelTensors(model)) if (name.endsWith('q_proj.weight')) wrong.set(name, t);
        writeFileSync(join(dir, 'model/model.safetensors'), writeSafetensors(wrong, 'F32', { format: 'pt' }));
        expect(run).toThrow(/log-probs differ from the app's/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        model.dispose();
      }
    }
  });
  it.runIf(hasTorch())(
    "check_handoff.py: LlamaForSequenceClassification's forward and pooling + score_offset give the tab's rewards within 1e-4",
    async () => {
      for (const pooling of ['last', 'mean'] as const) {
        const { engine, model, summary, state, exported } = await llamaRewardModel(pooling);
        const dir = mkdtempSync(join(tmpdir(), 'handoff-llama-rm-'));
        try {
          const zip = buildHandoffZip({
            pairs: PAIRS,
            recordCount: PAIRS.length,
            model: exported,
            rewardModel: { name: summary.name, state },
            prompts: PROMPTS,
          });
          for (const [name, data] of readZip(zip)) {
            mkdirSync(dirname(join(dir, name)), { recursive: true });
            writeFileSync(join(dir, name), data);
          }
          const tok = BpeTokenizer.fromJSON(JSON.parse(exported.tokenizer));
          const ids = SAMPLES.map((x) => rewardInputIds(tok, x.prompt, x.response));
          const scores = await engine.scoreResponses(SAMPLES);
          writeFileSync(join(dir, 'reward.json'), JSON.stringify({ ids, scores }));
          const run = () =>
            execFileSync(
              PYTHON,
              ['scripts/golden/check_handoff.py', dir, '--expect-reward', join(dir, 'reward.json'), '--tol', '1e-4'],
              { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
            );
          const out = run();
          const cfgPath = join(dir, 'reward_model/config.json');
          const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as { rlhf_playground: Record<string, unknown> };
          if (pooling === 'last') {
            expect(out).toMatch(
              /^ok: reward model: 21 tensors; LlamaForSequenceClassification scores \+ score_offset \S+ match the app within/m,
            );
            expect(out).toMatch(/^ok: rlhf_reward\.py \(last pooling\) reproduces the app within/m);
            // It can fail: without the offset HF's scores are not the tab's.
            writeFileSync(
              cfgPath,
              JSON.stringify({ ...cfg, rlhf_playground: { ...cfg.rlhf_playground, score_offset: 0 } }),
            );
            expect(run).toThrow(/LlamaForSequenceClassification scores differ from the app's/);
          } else {
            expect(out).toMatch(/^ok: reward model: 21 tensors; mean pooling reproduces the app within/m);
            expect(out).toMatch(/^ok: rlhf_reward\.py \(mean pooling\) reproduces the app within/m);
            // It can fail: a projection left in the app's [in, out] layout is caught.
            const st = readSafetensors(readFileSync(join(dir, 'reward_model/model.safetensors')));
            const wrong = new Map(
              [...st.tensors].map(([n, t]) => [n, { shape: t.shape, data: Float32Array.from(t.data) }]),
            );
            const q = wrong.get('model.layers.0.self_attn.q_proj.weight')!;
            wrong.set('model.layers.0.self_attn.q_proj.weight', {
              shape: q.shape,
              data: Float32Array.from(state.weights.get('model.layers.0.self_attn.q_proj.weight')!),
            });
            writeFileSync(
              join(dir, 'reward_model/model.safetensors'),
              writeSafetensors(wrong, 'F32', { format: 'pt' }),
            );
            expect(run).toThrow(/mean of the per-token scores differs from the app's/);
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
          model.dispose();
        }
      }
    },
    180_000,
  );
});
