/**
 * The hand-off bundle from the real engine and the shipped model: every file is there and valid,
 * the JSONL rows carry exactly TRL's keys, the weights are the model's, and (when Debian's
 * PyTorch is there) scripts/golden/check_handoff.py loads them by GPT2LMHeadModel names and
 * reproduces the app's log-probabilities.
 */
import { describe, expect, it } from 'vitest';
import { BUNDLED_MODEL, engineWithBundledModel } from './bundled-engine';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { InvalidInputError, NotReadyError } from '../../src/lib/engine/errors';
import type { ExportedModel } from '../../src/lib/engine/types';
import {
  buildHandoffZip,
  HANDOFF_FILES,
  handoffFileName,
  handoffFiles,
  HandoffError,
} from '../../src/lib/data/handoff';
import type { TrainingPair } from '../../src/lib/data/records';
import { readZip } from '../../src/lib/data/zip';
import { BpeTokenizer } from '../../src/lib/model/tokenizer';
import { parameterShapes } from '../../src/lib/model/gpt';
import { configFromHF, readSafetensors } from '../../src/lib/model/weights';
import { defaultLabellerConfig } from '../../src/lib/rlhf/labellers';

const MODEL = BUNDLED_MODEL;
const PYTHON = '/usr/bin/python3';
const dec = new TextDecoder();

const PAIRS: TrainingPair[] = [
  { prompt: 'The movie was', chosen: ' great, I loved it.', rejected: ' awful.' },
  { prompt: 'Say "hi"\nthen stop', chosen: ' hi', rejected: ' <script>alert(1)</script>', margin: 2 },
  { prompt: 'Unicode: café ☕', chosen: ' line\u2028separator', rejected: ' 😀 emoji' },
];

function hasTorch(): boolean {
  if (!existsSync(PYTHON)) return false;
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function unzip(model: ExportedModel, pairs: TrainingPair[], recordCount = pairs.length) {
  const zip = buildHandoffZip({ pairs, recordCount, model, createdAt: new Date(2024, 4, 17, 12, 0, 0) });
  return readZip(zip);
}

describe('hand-off bundle', () => {
  it('base model: every file valid, exactly TRL keys, weights equal to the shipped model', async () => {
    const engine = await engineWithBundledModel();
    await expect(engine.exportModel('policy')).rejects.toBeInstanceOf(NotReadyError);
    await expect(engine.exportModel('other' as never)).rejects.toBeInstanceOf(InvalidInputError);
    const model = await engine.exportModel('base');
    expect(model).toMatchObject({ name: 'tiny-gpt', which: 'base', iteration: null });
    const files = unzip(model, PAIRS);
    expect([...files.keys()]).toEqual([...HANDOFF_FILES]);

    // JSONL: one line per pair, each exactly {prompt, chosen, rejected}, texts unchanged.
    const lines = dec.decode(files.get('data/preferences.jsonl')).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(PAIRS.length);
    lines.forEach((l, i) => {
      const row = JSON.parse(l) as Record<string, unknown>;
      expect(Object.keys(row)).toEqual(['prompt', 'chosen', 'rejected']);
      expect(row).toEqual({ prompt: PAIRS[i].prompt, chosen: PAIRS[i].chosen, rejected: PAIRS[i].rejected });
    });

    // config.json: GPT2Config, and our reader agrees with the shipped config.
    const config = JSON.parse(dec.decode(files.get('model/config.json'))) as Record<string, unknown>;
    expect(config).toMatchObject({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      tie_word_embeddings: true,
      torch_dtype: 'float32',
      pad_token_id: 1280,
      eos_token_id: 1280,
    });
    const shipped = configFromHF(JSON.parse(readFileSync(`${MODEL}/config.json`, 'utf8')));
    expect(configFromHF(config)).toEqual(shipped);

    // Weights: float32, GPT2LMHeadModel names and shapes, values equal to the shipped F16 file's.
    const st = readSafetensors(files.get('model/model.safetensors')!);
    const want = parameterShapes(shipped);
    expect([...st.tensors.keys()].sort()).toEqual([...want.keys()].sort());
    expect(st.metadata.format).toBe('pt');
    const orig = readSafetensors(new Uint8Array(readFileSync(`${MODEL}/model.safetensors`))).tensors;
    for (const [name, t] of st.tensors) {
      expect(t.dtype).toBe('F32');
      expect(t.shape).toEqual(want.get(name));
      expect(t.data).toEqual(orig.get(name)!.data);
    }

    // Tokenizer: tokenizer.json encodes as the shipped one; vocab.json and merges.txt are the same BPE.
    const tj = JSON.parse(dec.decode(files.get('model/tokenizer.json'))) as {
      model: { vocab: object; merges: string[] };
    };
    const shippedTok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(`${MODEL}/tokenizer.json`, 'utf8')));
    const text = 'The movie was great, café ☕ <|endoftext|> 12345!';
    expect(BpeTokenizer.fromJSON(tj).encode(text)).toEqual(shippedTok.encode(text));
    expect(JSON.parse(dec.decode(files.get('model/vocab.json')))).toEqual(tj.model.vocab);
    const merges = dec.decode(files.get('model/merges.txt')).split('\n');
    expect(merges[0]).toBe('#version: 0.2');
    expect(merges.slice(1, -1)).toEqual(tj.model.merges);
    const tc = JSON.parse(dec.decode(files.get('model/tokenizer_config.json'))) as Record<string, unknown>;
    expect(tc).toMatchObject({
      tokenizer_class: 'GPT2TokenizerFast',
      eos_token: '<|endoftext|>',
      model_max_length: 64,
    });

    // Configs and README: the commands and keys a user copies.
    const rewardYaml = dec.decode(files.get('configs/trl_reward.yaml'));
    expect(rewardYaml).toMatch(/^model_name_or_path: \.\/model$/m);
    expect(rewardYaml).toMatch(/^dataset_name: \.\/data$/m);
    expect(rewardYaml).toMatch(/^max_length: 64$/m);
    expect(dec.decode(files.get('configs/trl_dpo.yaml'))).toMatch(/^beta: 0\.1$/m);
    const readme = dec.decode(files.get('README.md'));
    for (const s of [
      'trl reward --config configs/trl_reward.yaml',
      'trl dpo    --config configs/trl_dpo.yaml',
      'openrlhf.cli.train_rm',
      'openrlhf.cli.train_dpo',
      '--prompt_key prompt --chosen_key chosen --rejected_key rejected',
      'GPT2LMHeadModel',
    ])
      expect(readme).toContain(s);
    expect(readme).not.toMatch(/No preference pairs yet/);
    expect(readme).toContain('3 preference pair(s)');
  });

  it('no pairs: the bundle still builds, with an empty JSONL and a README that says so first', async () => {
    const engine = await engineWithBundledModel();
    const files = unzip(await engine.exportModel('base'), [], 0);
    expect(files.get('data/preferences.jsonl')!.length).toBe(0);
    const readme = dec.decode(files.get('README.md'));
    expect(readme.indexOf('No preference pairs yet')).toBeGreaterThan(0);
    expect(readme.indexOf('No preference pairs yet')).toBeLessThan(readme.indexOf('## Files'));
  });

  it('policy: the PPO policy after training, not the base weights; eval reports diversity', async () => {
    const engine = await engineWithBundledModel();
    await engine.ppoCreate({
      prompts: ['The movie was', 'The food was', 'This book'],
      evalPrompts: ['The movie was', 'This book'],
      config: { batchSize: 2, maxNewTokens: 4, miniBatches: 1, ppoEpochs: 1, lr: 1e-3, seed: 1 },
      reward: { kind: 'labeller', labeller: defaultLabellerConfig('length') },
    });
    const evals: Record<string, number>[] = [];
    await engine.ppoRun('p', { iterations: 1, evalEvery: 1 }, (e) => {
      if (e.kind === 'eval') evals.push(e.metrics ?? {});
    });
    expect(evals).toHaveLength(1);
    for (const k of ['eval/distinct_1', 'eval/distinct_2', 'eval/distinct_3', 'eval/self_bleu']) {
      expect(evals[0][k]).toBeGreaterThanOrEqual(0);
      expect(evals[0][k]).toBeLessThanOrEqual(1);
    }
    const policy = await engine.exportModel('policy');
    expect(policy).toMatchObject({ which: 'policy', iteration: 1 });
    expect(handoffFileName(policy, new Date('2024-05-17T00:00:00Z'))).toBe(
      'rlhf-handoff-tiny-gpt-policy-it1-2024-05-17.zip',
    );
    const base = readSafetensors(new Uint8Array((await engine.exportModel('base')).weights)).tensors;
    const pol = readSafetensors(new Uint8Array(policy.weights)).tensors;
    const w = 'transformer.h.0.mlp.c_fc.weight';
    expect(pol.get(w)!.data).not.toEqual(base.get(w)!.data);
    await engine.ppoDispose();
  });

  it('a LoRA policy: merged by default; or its base plus PEFT adapter files in adapter/', async () => {
    const engine = await engineWithBundledModel();
    await engine.ppoCreate({
      prompts: ['The movie was', 'The food was', 'This book'],
      evalPrompts: ['The movie was'],
      config: { batchSize: 2, maxNewTokens: 4, miniBatches: 1, ppoEpochs: 1, lr: 1e-2, seed: 1, lora: true, loraR: 2 },
      reward: { kind: 'labeller', labeller: defaultLabellerConfig('length') },
    });
    await engine.ppoRun('p', { iterations: 2, evalEvery: 0 }, () => {});
    const base = readSafetensors(new Uint8Array((await engine.exportModel('base')).weights)).tensors;
    const merged = await engine.exportModel('policy');
    expect(merged.adapter).toBeUndefined();
    const mw = readSafetensors(new Uint8Array(merged.weights)).tensors;
    const w = 'transformer.h.0.attn.c_attn.weight';
    expect(mw.get(w)!.data).not.toEqual(base.get(w)!.data); // the adapters are merged in
    expect(mw.get('transformer.h.0.mlp.c_fc.weight')!.data).toEqual(base.get('transformer.h.0.mlp.c_fc.weight')!.data);

    const split = await engine.exportModel('policy', 'adapter');
    const sw = readSafetensors(new Uint8Array(split.weights)).tensors;
    expect(sw.get(w)!.data).toEqual(base.get(w)!.data); // the base, unchanged by LoRA training
    const files = unzip(split, PAIRS);
    const cfg = JSON.parse(dec.decode(files.get('adapter/adapter_config.json'))) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 2, target_modules: ['c_attn'], fan_in_fan_out: true });
    const ad = readSafetensors(files.get('adapter/adapter_model.safetensors')!).tensors;
    expect([...ad.keys()]).toContain('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight');
    expect(dec.decode(files.get('README.md'))).toContain('PeftModel.from_pretrained');
    await engine.ppoDispose();

    // The exported adapter loads back (merged into the loaded base) and matches the merged export.
    const bad = JSON.stringify({ ...JSON.parse(split.adapter!.config), r: 4 });
    await expect(engine.loadAdapter({ config: bad, weights: split.adapter!.weights })).rejects.toThrow(
      /this model with r = 4 needs/,
    );
    expect((await engine.modelInfo())?.name).toBe('tiny-gpt'); // unchanged after the refusal
    const info = await engine.loadAdapter({ ...split.adapter!, name: 'ppo-lora' });
    expect(info.name).toBe('tiny-gpt + ppo-lora');
    const back = readSafetensors(new Uint8Array((await engine.exportModel('base')).weights)).tensors;
    for (const [name, t] of mw) {
      const b = back.get(name)!.data;
      let worst = 0;
      t.data.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - b[i]))));
      expect(worst, name).toBeLessThan(1e-6);
    }
  });

  it('unusable model files are a HandoffError', () => {
    const bad: ExportedModel = {
      name: 'x',
      which: 'base',
      iteration: null,
      config: '[]',
      tokenizer: '{}',
      weights: new ArrayBuffer(8),
    };
    expect(() => handoffFiles({ pairs: [], recordCount: 0, model: bad })).toThrow(HandoffError);
    const wrongType = { ...bad, config: JSON.stringify({ model_type: 'mistral' }) };
    expect(() => handoffFiles({ pairs: [], recordCount: 0, model: wrongType })).toThrow(
      /"mistral", not "gpt2" or "llama"/,
    );
    // A Llama config without its sizes is refused by name (a full Llama bundle: handoff-llama.test.ts).
    const llamaNoSizes = { ...bad, config: JSON.stringify({ model_type: 'llama' }) };
    expect(() => handoffFiles({ pairs: [], recordCount: 0, model: llamaNoSizes })).toThrow(
      /"num_attention_heads" must be a positive integer/,
    );
  });

  it.runIf(hasTorch())('check_handoff.py loads the weights by GPT2LMHeadModel names and matches the app', async () => {
    const engine = await engineWithBundledModel();
    const model = await engine.exportModel('base');
    const dir = mkdtempSync(join(tmpdir(), 'handoff-'));
    try {
      for (const [name, data] of unzip(model, PAIRS)) {
        mkdirSync(dirname(join(dir, name)), { recursive: true });
        writeFileSync(join(dir, name), data);
      }
      // The app's log-probabilities of two texts (the engine prepends <|endoftext|>).
      const tok = BpeTokenizer.fromJSON(JSON.parse(model.tokenizer));
      const expected = { ids: [] as number[][], logprobs: [] as number[][] };
      for (const text of ['The movie was great and I loved it.', 'Once upon a time, a fox']) {
        const ids = tok.encode(text);
        const info = await engine.inspectTokens([], ids);
        expected.ids.push([tok.eotId, ...ids]);
        expected.logprobs.push(info.map((t) => t.logprob!));
      }
      writeFileSync(join(dir, 'expected.json'), JSON.stringify(expected));
      const out = execFileSync(
        PYTHON,
        ['scripts/golden/check_handoff.py', dir, '--expect', join(dir, 'expected.json')],
        { encoding: 'utf8' },
      );
      expect(out).toMatch(/^ok: 52 tensors .* log-probs match the app/m);

      // The check can fail: a renamed tensor is caught.
      const st = readFileSync(join(dir, 'model/model.safetensors'));
      const renamed = Buffer.from(
        st.toString('latin1').replace('transformer.ln_f.bias', 'transformer.ln_f.beta'),
        'latin1',
      );
      writeFileSync(join(dir, 'model/model.safetensors'), renamed);
      expect(() => execFileSync(PYTHON, ['scripts/golden/check_handoff.py', dir], { encoding: 'utf8' })).toThrow(
        /ln_f\.beta/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
