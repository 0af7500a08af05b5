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
import { buildHandoffZip, HANDOFF_FILES, HandoffError, handoffFiles } from '../../src/lib/data/handoff';
import type { HandoffRewardModel } from '../../src/lib/data/handoff-reward';
import { readZip } from '../../src/lib/data/zip';
import type { GPTConfig } from '../../src/lib/model/config';
import { GPT } from '../../src/lib/model/gpt';
import { BpeTokenizer } from '../../src/lib/model/tokenizer';
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

  it('a Llama model with a reward model is a clear HandoffError (the reward model is GPT-2 only)', async () => {
    const { engine, model } = await engineWithLlama(true);
    const exported = await engine.exportModel('base');
    const rewardModel = { name: 'rm' } as HandoffRewardModel;
    expect(() => handoffFiles({ pairs: [], recordCount: 0, model: exported, rewardModel, prompts: ['Hi'] })).toThrow(
      /Llama-family model.*untick "with the reward model"/,
    );
    expect(() => handoffFiles({ pairs: [], recordCount: 0, model: exported, rewardModel })).toThrow(HandoffError);
    // Without it, the bundle builds.
    expect(handoffFiles({ pairs: [], recordCount: 0, model: exported }).length).toBe(HANDOFF_FILES.length);
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
});
