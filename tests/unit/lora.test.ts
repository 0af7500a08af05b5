/**
 * LoRA (src/lib/model/lora.ts) against an independent PyTorch implementation
 * (scripts/golden/lora_reference.py → tests/golden/lora.json): logits, loss, gradients of every
 * lora_A and lora_B, one step of the project's Adam; plus what must hold by construction: the
 * adapters-off forward is the base model exactly, the merged checkpoint's forward equals the
 * adapter forward, a PEFT export loads back to the same forward, bad adapters are refused and the
 * model keeps its state, and the base weights never train.
 */
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { tf, useBackend, type TestBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import type { GPTConfig } from '../../src/lib/model/config';
import { ModelLoadError } from '../../src/lib/model/errors';
import { Adam } from '../../src/lib/rlhf/adam';
import { LORA_SETTINGS, linearModules, targetedModules } from '../../src/lib/model/lora';
import { loraParamCount } from '../../src/lib/model/lora-config';
import { exportPeftAdapter, importPeftAdapter, mergedHfTensors, mergedTensors } from '../../src/lib/model/lora-peft';
import {
  loadSafetensorsIntoModel,
  readSafetensors,
  writeSafetensors,
  type TensorRecord,
} from '../../src/lib/model/weights';

interface Case {
  name: string;
  r: number;
  alpha: number;
  targets: string[];
  adapters: Record<
    string,
    { A: number[]; B: number[]; gradA: number[]; gradB: number[]; stepA: number[]; stepB: number[] }
  >;
  logits: number[];
  baseLogits: number[];
  loss: number;
  gradNorm: number;
}
interface Golden {
  adam: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; maxGradNorm: number };
  idx: number[][];
  targets: number[][];
  mask: number[][];
  cases: Case[];
}
interface Base {
  config: GPTConfig;
  weights: Record<string, { shape: number[]; data: number[] }>;
}

const read = <T>(f: string) => JSON.parse(readFileSync(new URL(`../golden/${f}`, import.meta.url), 'utf8')) as T;
const golden = read<Golden>('lora.json');
const base = read<Base>('gpt-tiny.json');
const TOL = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function baseModel(): GPT {
  const model = new GPT(base.config, { seed: 0, init: 'zeros' });
  const map = new Map<string, tf.Tensor>();
  for (const [name, w] of Object.entries(base.weights)) map.set(name, tf.tensor(w.data, w.shape));
  model.setWeights(map);
  tf.dispose([...map.values()]);
  return model;
}

/** The base with the case's adapters, set from the fixture's PEFT-layout A [r, in] and B [out, r]. */
function caseModel(c: Case): GPT {
  const model = baseModel();
  const lora = model.addAdapters({ r: c.r, alpha: c.alpha, dropout: 0, targetModules: c.targets }, 1);
  expect([...lora.adapters.keys()].sort()).toEqual(Object.keys(c.adapters).sort());
  for (const [name, ad] of lora.adapters) {
    const w = c.adapters[name];
    const m = ad.module;
    tf.tidy(() => {
      ad.a.assign(tf.transpose(tf.tensor2d(w.A, [c.r, m.in])));
      ad.b.assign(tf.transpose(tf.tensor2d(w.B, [m.out, c.r])));
    });
  }
  return model;
}

const idxOf = () => tf.tensor2d(golden.idx, undefined, 'int32');

async function logitsOf(model: GPT, fn?: (f: () => tf.Tensor) => tf.Tensor): Promise<Float32Array> {
  const idx = idxOf();
  const run = () => model.forward(idx).logits;
  const t = fn ? fn(run) : run();
  const d = (await t.data()) as Float32Array;
  tf.dispose([t, idx]);
  return d;
}

describe.each<TestBackend>(['cpu', 'wasm'])('LoRA on %s', (backend) => {
  test.each(golden.cases.map((c) => [c.name, c] as const))(
    'matches the PyTorch reference (%s): logits, loss, gradients, one Adam step',
    async (_name, c) => {
      await useBackend(backend);
      const model = caseModel(c);
      const idx = idxOf();
      const targets = tf.tensor2d(golden.targets, undefined, 'int32');
      const mask = tf.tensor2d(golden.mask);
      expect(maxAbsDiff(await logitsOf(model), c.logits)).toBeLessThan(TOL);
      expect(maxAbsDiff(await logitsOf(model, (f) => model.withoutAdapters(f)), c.baseLogits)).toBeLessThan(TOL);

      const vars = model.trainableVariables();
      expect(vars.length).toBe(2 * Object.keys(c.adapters).length);
      const baseBefore = new Map([...model.params].map(([n, v]) => [n, v.dataSync().slice()]));
      const { value, grads } = tf.variableGrads(() => model.loss(idx, targets, mask), vars);
      expect(Math.abs((await value.data())[0] - c.loss)).toBeLessThan(TOL);
      for (const [name, ad] of model.lora!.adapters) {
        const want = c.adapters[name];
        const gA = tf.transpose(grads[ad.a.name]);
        const gB = tf.transpose(grads[ad.b.name]);
        expect(maxAbsDiff(await gA.data(), want.gradA), `${name} grad A`).toBeLessThan(TOL);
        expect(maxAbsDiff(await gB.data(), want.gradB), `${name} grad B`).toBeLessThan(TOL);
        tf.dispose([gA, gB]);
      }
      const a = golden.adam;
      const adam = new Adam(vars, { beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weightDecay });
      const norm = adam.gradNorm(grads);
      const n = (await norm.data())[0];
      expect(Math.abs(n - c.gradNorm) / c.gradNorm).toBeLessThan(1e-4);
      adam.apply(grads, n, { lr: a.lr, maxGradNorm: a.maxGradNorm });
      for (const [name, ad] of model.lora!.adapters) {
        const want = c.adapters[name];
        const sA = tf.transpose(ad.a);
        const sB = tf.transpose(ad.b);
        expect(maxAbsDiff(await sA.data(), want.stepA), `${name} A after Adam`).toBeLessThan(TOL);
        expect(maxAbsDiff(await sB.data(), want.stepB), `${name} B after Adam`).toBeLessThan(TOL);
        tf.dispose([sA, sB]);
      }
      // The base never moved.
      for (const [name, v] of model.params) expect(v.dataSync(), name).toEqual(baseBefore.get(name));
      tf.dispose([value, norm, ...Object.values(grads), idx, targets, mask]);
      adam.dispose();
      model.dispose();
    },
  );

  test('adapters off is the base model exactly; a fresh adapter (B = 0) changes nothing', async () => {
    await useBackend(backend);
    const plain = baseModel();
    const want = await logitsOf(plain);
    const model = caseModel(golden.cases[1]);
    expect(await logitsOf(model, (f) => model.withoutAdapters(f))).toEqual(want);
    expect(model.lora!.enabled).toBe(true); // switched back on after
    model.removeAdapters();
    expect(await logitsOf(model)).toEqual(want);
    model.addAdapters({ r: 8, alpha: 16, dropout: 0.05, targetModules: null }, 3);
    expect(maxAbsDiff(await logitsOf(model), want)).toBe(0);
    tf.dispose([...plain.params.values()]);
    model.dispose();
  });

  test('the merged checkpoint forwards as the adapters do', async () => {
    await useBackend(backend);
    for (const c of golden.cases) {
      const model = caseModel(c);
      const merged = await mergedTensors(model);
      const other = new GPT(base.config, { init: 'zeros' });
      const map = new Map([...merged].map(([n, t]) => [n, tf.tensor(t.data, t.shape)]));
      other.setWeights(map);
      tf.dispose([...map.values()]);
      expect(maxAbsDiff(await logitsOf(other), c.logits)).toBeLessThan(TOL);
      // The adapter weights changed only the targeted modules' weights.
      for (const [n, t] of merged) {
        const changed = maxAbsDiff(t.data, model.params.get(n)!.dataSync()) > 0;
        expect(changed, n).toBe(n.endsWith('.weight') && model.lora!.adapters.has(n.slice(0, -7)));
      }
      model.dispose();
      other.dispose();
    }
  });
});

describe('PEFT files', () => {
  test('export writes PEFT names, layouts and config; import restores the same forward', async () => {
    await useBackend('cpu');
    const c = golden.cases[1];
    const model = caseModel(c);
    const { config, safetensors } = await exportPeftAdapter(model, 'gpt-tiny');
    expect(config).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: c.r,
      lora_alpha: c.alpha,
      lora_dropout: 0,
      target_modules: c.targets,
      bias: 'none',
      fan_in_fan_out: true,
      base_model_name_or_path: 'gpt-tiny',
    });
    const file = readSafetensors(safetensors);
    const C = base.config.nEmbd;
    expect(file.tensors.get('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')!.shape).toEqual([c.r, C]);
    expect(file.tensors.get('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight')!.shape).toEqual([3 * C, c.r]);
    expect(file.tensors.get('base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight')!.shape).toEqual([c.r, 4 * C]);
    expect([...file.tensors.values()][0].data).toEqual(Float32Array.from(c.adapters['transformer.h.0.attn.c_attn'].A));
    expect(file.tensors.size).toBe(2 * Object.keys(c.adapters).length);

    const other = baseModel();
    const names = importPeftAdapter(other, JSON.stringify(config), safetensors);
    expect(names.sort()).toEqual(Object.keys(c.adapters).sort());
    expect(other.lora!.scaling).toBe(c.alpha / c.r);
    expect(maxAbsDiff(await logitsOf(other), c.logits)).toBeLessThan(TOL);
    model.dispose();
    other.dispose();
  });

  test('bad adapters are refused with a clear message and the model keeps its adapters', async () => {
    await useBackend('cpu');
    const c = golden.cases[0];
    const model = caseModel(c);
    const { config, safetensors } = await exportPeftAdapter(model, null);
    const before = await logitsOf(model);
    const file = readSafetensors(safetensors);
    const without = (drop: string) => writeSafetensors(new Map([...file.tensors].filter(([n]) => n !== drop)));
    const cfg = (o: object) => JSON.stringify({ ...config, ...o });
    const cases: [string, Uint8Array, RegExp][] = [
      [cfg({ r: 8 }), safetensors, /lora_A\.weight has shape \[4,32\], this model with r = 8 needs \[8,32\]/],
      [cfg({ peft_type: 'IA3' }), safetensors, /only LORA/],
      [cfg({ target_modules: ['q_proj'] }), safetensors, /q_proj matches no projection of this model/],
      [cfg({ target_modules: ['c_fc'] }), safetensors, /target_modules \(c_fc\) does not name/],
      [
        cfg({}),
        without('base_model.model.transformer.h.1.attn.c_attn.lora_B.weight'),
        /lacks lora_B of transformer\.h\.1\.attn\.c_attn/,
      ],
      ['{not json', safetensors, /not valid JSON/],
      [
        cfg({}),
        writeSafetensors(
          new Map<string, TensorRecord>([
            ...file.tensors,
            [
              'base_model.model.transformer.h.9.attn.c_attn.lora_A.weight',
              { shape: [4, 32], data: new Float32Array(128) },
            ],
          ]),
        ),
        /this model does not have/,
      ],
    ];
    for (const [text, bytes, msg] of cases) {
      let err: unknown;
      try {
        importPeftAdapter(model, text, bytes);
      } catch (e) {
        err = e;
      }
      expect(err, String(msg)).toBeInstanceOf(ModelLoadError);
      expect((err as Error).message).toMatch(msg);
      expect(await logitsOf(model)).toEqual(before);
      expect(model.lora!.spec.r).toBe(c.r);
    }
    model.dispose();
  });
});

describe('targets and settings', () => {
  test('targets match as PEFT: by full name or last parts; the default for GPT-2 is c_attn', async () => {
    await useBackend('cpu');
    const model = baseModel();
    expect(linearModules(model).length).toBe(4 * base.config.nLayer);
    expect(targetedModules(model, null).map((m) => m.name)).toEqual([
      'transformer.h.0.attn.c_attn',
      'transformer.h.1.attn.c_attn',
    ]);
    expect(targetedModules(model, ['mlp.c_proj']).map((m) => m.name)).toEqual([
      'transformer.h.0.mlp.c_proj',
      'transformer.h.1.mlp.c_proj',
    ]);
    expect(targetedModules(model, ['c_proj']).length).toBe(4);
    expect(() => targetedModules(model, ['wte'])).toThrow(/wte matches no projection.*c_attn, c_proj, c_fc/);
    // Base frozen while adapters are on; trainable again after.
    model.addAdapters({ r: 2, alpha: 4, dropout: 0, targetModules: null });
    expect(model.trainableVariables().length).toBe(4);
    expect([...model.params.values()].every((v) => !v.trainable)).toBe(true);
    expect(model.numTrainableParams()).toBe(2 * (2 * 32 + 2 * 96));
    model.removeAdapters();
    expect(model.trainableVariables().length).toBe(model.params.size);
    model.dispose();
  });

  test('the LoRA rows: PEFT defaults, off by default, target modules from URL text', () => {
    expect(LORA_SETTINGS.defaults).toEqual({
      lora: false,
      loraR: 8,
      loraAlpha: 16,
      loraDropout: 0.05,
      loraTargetModules: null,
    });
    expect(LORA_SETTINGS.parse('loraTargetModules', 'q_proj, v_proj')).toEqual({
      ok: true,
      value: ['q_proj', 'v_proj'],
    });
    expect(LORA_SETTINGS.parse('loraTargetModules', 'auto')).toEqual({ ok: true, value: null });
    expect(LORA_SETTINGS.parse('loraTargetModules', 'q proj').ok).toBe(false);
    expect(() => LORA_SETTINGS.validate({ loraR: 0 })).toThrow(/loraR: must be a whole number ≥ 1/);
  });

  test('dropout applies only in training mode, seeded', async () => {
    await useBackend('cpu');
    const model = caseModel(golden.cases[0]);
    model.lora!.spec.dropout = 0.5;
    const evalA = await logitsOf(model);
    expect(maxAbsDiff(evalA, golden.cases[0].logits)).toBeLessThan(TOL);
    const trainA = await logitsOf(model, (f) => model.inTraining(f));
    expect(maxAbsDiff(trainA, evalA)).toBeGreaterThan(1e-3);
    expect(model.lora!.training).toBe(false);
    model.dispose();
  });
});

describe('LoRA on a Llama model (projections held [in, out], files [out, in])', () => {
  const LLAMA: GPTConfig = {
    arch: 'llama',
    vocabSize: 29,
    blockSize: 16,
    nLayer: 2,
    nHead: 4,
    nEmbd: 16,
    layerNormEps: 1e-5,
    nKvHead: 2,
    intermediateSize: 24,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
  };
  const idx = [
    [3, 7, 1, 28, 5, 9],
    [0, 2, 4, 6, 8, 10],
  ];
  const logits = async (m: GPT) => {
    const x = tf.tensor2d(idx, [2, 6], 'int32');
    const { logits: l } = m.forward(x);
    const d = await l.data();
    tf.dispose([x, l]);
    return d;
  };
  /** A Llama with PEFT's default targets (q_proj, v_proj) and non-zero B, so the adapters matter. */
  async function adapted(): Promise<GPT> {
    const m = new GPT(LLAMA, { seed: 5 });
    m.addAdapters({ r: 4, alpha: 8, dropout: 0, targetModules: null }, 1);
    for (const ad of m.lora!.adapters.values()) ad.b.assign(tf.randomNormal(ad.b.shape, 0, 0.2, 'float32', 9));
    return m;
  }

  test('default targets, module shapes, and the merged HF checkpoint loads as the adapters forward', async () => {
    await useBackend('cpu');
    const model = await adapted();
    expect([...model.lora!.adapters.keys()].sort()).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ]);
    // The page's count (no TF.js) agrees with the adapters made, for the defaults and for all seven projections.
    expect(loraParamCount(LLAMA, { loraR: 4, loraTargetModules: null })).toBe(model.lora!.numParams());
    const all = new GPT(LLAMA, { seed: 2 });
    const seven = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
    all.addAdapters({ r: 2, alpha: 4, dropout: 0, targetModules: seven }, 1);
    expect(loraParamCount(LLAMA, { loraR: 2, loraTargetModules: seven })).toBe(all.lora!.numParams());
    all.dispose();
    const v = linearModules(model).find((m) => m.name === 'model.layers.0.self_attn.v_proj')!;
    expect(v).toMatchObject({ in: 16, out: 8, fanInFanOut: false }); // 2 kv heads × 4
    const want = await logits(model);
    const other = new GPT(LLAMA, { init: 'zeros' });
    loadSafetensorsIntoModel(other, writeSafetensors(await mergedHfTensors(model), 'F32'));
    expect(maxAbsDiff(await logits(other), want)).toBeLessThan(1e-5);
    // The file holds HF's nn.Linear layout: v_proj.weight [out, in].
    const file = readSafetensors(writeSafetensors(await mergedHfTensors(model), 'F32'));
    expect(file.tensors.get('model.layers.0.self_attn.v_proj.weight')!.shape).toEqual([8, 16]);
    model.dispose();
    other.dispose();
  });

  test('PEFT export → import restores the same forward; fan_in_fan_out is false', async () => {
    await useBackend('cpu');
    const model = await adapted();
    const want = await logits(model);
    const { config, safetensors } = await exportPeftAdapter(model, 'llama-small');
    expect(config).toMatchObject({ fan_in_fan_out: false, target_modules: ['q_proj', 'v_proj'] });
    const file = readSafetensors(safetensors);
    expect(file.tensors.get('base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight')!.shape).toEqual([4, 16]);
    expect(file.tensors.get('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight')!.shape).toEqual([8, 4]);
    const other = new GPT(LLAMA, { seed: 5 });
    importPeftAdapter(other, JSON.stringify(config), safetensors);
    expect(maxAbsDiff(await logits(other), want)).toBeLessThan(1e-5);
    model.dispose();
    other.dispose();
  });
});
