/**
 * SFT on a tiny random GPT (V = 16, C = 16, one layer, context 16) and a character tokenizer
 * ('a'…'o' = 0…14, end-of-text = 15): completion-only log-probs against PyTorch fixtures, the
 * prompt mask, learning (completion NLL falls), no tensor growth, the named input errors and
 * the divergence guard (weights restored).
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { tf, useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import {
  completionLogprobsT,
  disposeRows,
  encodeCompletion,
  packRows,
  type TuneEvent,
} from '../../src/lib/rlhf/offline-train';
import { evaluateSft, trainSft, type SftExample } from '../../src/lib/rlhf/sft';
import { TuneDivergedError, TuneInputError } from '../../src/lib/rlhf/errors';

const V = 16;
const EOT = 15;
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
};

function tinyModel(seed = 1, trainable = true): GPT {
  return new GPT(
    { vocabSize: V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 },
    { seed, trainable },
  );
}

const EXAMPLES: SftExample[] = [
  { prompt: 'ab', completion: 'cde' },
  { prompt: 'hij', completion: 'cde' },
  { prompt: 'kl', completion: 'mno' },
  { prompt: 'g', completion: 'mno' },
  { prompt: 'bca', completion: 'fff' },
  { prompt: 'nn', completion: 'fff' },
];

async function weights(m: GPT): Promise<Float32Array[]> {
  return Promise.all([...m.params.values()].map(async (v) => new Float32Array((await v.data()) as Float32Array)));
}

interface SeqFixture {
  logits: number[][][];
  targets: number[][];
  mask: number[][];
  ids: number[][];
  starts: number[];
  lengths: number[];
  sums: number[];
  means: number[];
  weights: number[];
  sumsGrad: number[][][];
  sftLoss: number;
  sftGrad: number[][][];
}
const G = (JSON.parse(readFileSync('tests/golden/rlhf-math.json', 'utf8')) as { sequence: SeqFixture }).sequence;

function worstRel(a: ArrayLike<number>, e: number[]): number {
  let w = 0;
  for (let i = 0; i < e.length; i++) w = Math.max(w, Math.abs(a[i] - e[i]) / Math.max(1, Math.abs(e[i])));
  return w;
}

beforeAll(async () => {
  await useBackend('cpu');
});

describe('completion-only log-probs (golden, PyTorch)', () => {
  test('packRows puts the mask on the positions that predict completion tokens', () => {
    const rows = G.ids.map((ids, b) => ({ ids: ids.slice(0, G.lengths[b]), start: G.starts[b] }));
    const p = packRows(rows, 0);
    expect(p.mask.arraySync()).toEqual(G.mask);
    const t = p.targets.arraySync();
    // Targets agree with the fixture wherever the mask is on (elsewhere padding differs).
    G.mask.forEach((row, b) => row.forEach((m, j) => m && expect(t[b][j]).toBe(G.targets[b][j])));
    disposeRows(p);
  });

  test.each(['wasm', 'cpu'] as const)('sums, means, SFT loss and gradients match (%s)', async (backend) => {
    await useBackend(backend);
    const logits = tf.tensor3d(G.logits);
    const targets = tf.tensor2d(G.targets, undefined, 'int32');
    const mask = tf.tensor2d(G.mask);
    const sums = completionLogprobsT(logits, targets, mask);
    const means = completionLogprobsT(logits, targets, mask, true);
    expect(worstRel(sums.dataSync(), G.sums)).toBeLessThan(1e-5);
    expect(worstRel(means.dataSync(), G.means)).toBeLessThan(1e-5);
    const w = tf.tensor1d(G.weights);
    const g1 = tf.grad((l: tf.Tensor) => tf.sum(tf.mul(completionLogprobsT(l as tf.Tensor3D, targets, mask), w)))(
      logits,
    );
    expect(worstRel(g1.dataSync(), G.sumsGrad.flat(2))).toBeLessThan(1e-5);
    const sft = (l: tf.Tensor) =>
      tf.div(tf.neg(tf.sum(completionLogprobsT(l as tf.Tensor3D, targets, mask))), tf.sum(mask)) as tf.Scalar;
    expect(Math.abs(sft(logits).dataSync()[0] - G.sftLoss)).toBeLessThan(1e-5);
    const g2 = tf.grad(sft)(logits);
    expect(worstRel(g2.dataSync(), G.sftGrad.flat(2))).toBeLessThan(1e-5);
    tf.dispose([logits, targets, mask, sums, means, w, g1, g2]);
  });
});

describe('encodeCompletion', () => {
  test('[eot] + prompt + completion + eot; the completion starts after the query', () => {
    expect(encodeCompletion(tokenizer, 'ab', 'cd', 16)).toEqual({ ids: [EOT, 0, 1, 2, 3, EOT], start: 3 });
    expect(encodeCompletion(tokenizer, 'ab', 'cd', 16, false)).toEqual({ ids: [EOT, 0, 1, 2, 3], start: 3 });
  });
  test('too long: the query is cropped from the left, then the completion from the right', () => {
    const e = encodeCompletion(tokenizer, 'abcdefgh', 'ijklm', 8);
    expect(e.ids).toEqual([6, 7, 8, 9, 10, 11, 12, EOT]);
    expect(e.start).toBe(2);
    const f = encodeCompletion(tokenizer, 'ab', 'cdefghijklmn', 8);
    expect(f.ids.length).toBe(8);
    expect(f.start).toBe(1);
    expect(f.ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
  test('spaces the prompt held back go to the completion', () => {
    const tok = {
      eotId: 9,
      encode: (t: string) => [...t].map((c) => (c === ' ' ? 8 : c.charCodeAt(0) - 97)),
      encodePrompt: (t: string) => ({ ids: [...t.trimEnd()].map((c) => c.charCodeAt(0) - 97), heldBack: ' ' }),
    };
    expect(encodeCompletion(tok, 'ab ', 'c', 16).ids).toEqual([9, 0, 1, 8, 2, 9]);
    expect(encodeCompletion(tok, 'ab ', ' c', 16).ids).toEqual([9, 0, 1, 8, 2, 9]);
  });
});

describe('trainSft', () => {
  test('lowers the completion NLL; the loss counts completion tokens only; no tensor growth', async () => {
    const model = tinyModel();
    const rows = EXAMPLES.map((e) => encodeCompletion(tokenizer, e.prompt, e.completion, 16));
    const before = await evaluateSft(model, rows, EOT);

    // Completion-only loss, computed by hand from the logits, differs from the all-token loss.
    const packed = packRows(rows, EOT);
    const logits = model.forward(packed.seq).logits;
    const logp = tf.logSoftmax(logits).arraySync() as number[][][];
    const targets = packed.targets.arraySync();
    let compNll = 0;
    let compN = 0;
    let allNll = 0;
    let allN = 0;
    rows.forEach((r, b) => {
      for (let p = 0; p < r.ids.length - 1; p++) {
        const nll = -logp[b][p][targets[b][p]];
        allNll += nll;
        allN++;
        if (p >= r.start - 1) {
          compNll += nll;
          compN++;
        }
      }
    });
    tf.dispose([logits]);
    disposeRows(packed);
    expect(before.loss).toBeCloseTo(compNll / compN, 4);
    expect(Math.abs(compNll / compN - allNll / allN)).toBeGreaterThan(1e-3);

    const events: TuneEvent[] = [];
    const start = tf.memory().numTensors;
    const res = await trainSft(
      model,
      EXAMPLES,
      { tokenizer, config: { epochs: 30, learningRate: 1e-2, batchSize: 6, valFraction: 0, lrSchedule: 'constant' } },
      (e) => events.push(e),
    );
    expect(tf.memory().numTensors).toBe(start);
    // The first step's reported loss is the loss before any update: the completion-only one.
    const first = events.find((e) => e.type === 'step');
    expect(first?.type === 'step' && first.row.metrics.loss).toBeCloseTo(before.loss, 4);
    const after = await evaluateSft(model, rows, EOT);
    expect(after.loss).toBeLessThan(before.loss * 0.5);
    expect(after.mean_token_accuracy).toBeGreaterThan(before.mean_token_accuracy);
    expect(res.steps).toBe(30);
    const losses = res.history.filter((r) => 'loss' in r.metrics).map((r) => r.metrics.loss);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    model.dispose();
  }, 60_000);

  test('with validation: the split is by prompt and eval_loss is logged per epoch', async () => {
    const model = tinyModel();
    const events: TuneEvent[] = [];
    const res = await trainSft(model, EXAMPLES, { tokenizer, config: { epochs: 2, valFraction: 0.34 } }, (e) =>
      events.push(e),
    );
    const startEv = events[0];
    expect(startEv.type).toBe('start');
    if (startEv.type === 'start') {
      expect(startEv.val).toBe(2);
      expect(startEv.initial.eval_loss).toBeGreaterThan(0);
    }
    const epochs = events.filter((e) => e.type === 'epoch');
    expect(epochs).toHaveLength(2);
    epochs.forEach((e) => e.type === 'epoch' && expect(Number.isFinite(e.row.metrics.eval_loss)).toBe(true));
    expect(res.valPrompts).toHaveLength(2);
    model.dispose();
  }, 30_000);

  test('no demonstrations, or empty completions: TuneInputError, weights unchanged', async () => {
    const model = tinyModel();
    const w0 = await weights(model);
    await expect(trainSft(model, [], { tokenizer })).rejects.toBeInstanceOf(TuneInputError);
    const err = await trainSft(model, [...EXAMPLES, { prompt: 'ab', completion: '  ' }], { tokenizer }).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(TuneInputError);
    expect((err as Error).message).toMatch(/1 of 7 demonstrations have an empty completion/);
    await expect(trainSft(model, EXAMPLES, { tokenizer, config: { learningRate: -1 } })).rejects.toThrow(
      /learning rate/,
    );
    expect(await weights(model)).toEqual(w0);
    model.dispose();
  });

  test('a NaN mid-training throws TuneDivergedError and restores the weights of before training', async () => {
    const model = tinyModel();
    const w0 = await weights(model);
    let calls = 0;
    const start = tf.memory().numTensors;
    const poison = async () => {
      if (++calls === 3) {
        const v = model.params.get('transformer.ln_f.weight')!;
        const nan = tf.fill(v.shape, NaN);
        v.assign(nan);
        nan.dispose();
      }
    };
    await expect(
      trainSft(model, EXAMPLES, { tokenizer, config: { epochs: 5, batchSize: 2, valFraction: 0 } }, undefined, poison),
    ).rejects.toBeInstanceOf(TuneDivergedError);
    expect(await weights(model)).toEqual(w0);
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });

  test('a frozen model is refused', async () => {
    const model = tinyModel(1, false);
    await expect(trainSft(model, EXAMPLES, { tokenizer })).rejects.toThrow(/frozen/);
    model.dispose();
  });
});

describe('trainSft with LoRA (model/lora.ts)', () => {
  test('base weights unchanged, adapters change, the completion NLL falls; nothing leaks', async () => {
    // The tied head scaled up: at GPT-2 init (std 0.02) its logits stay near uniform unless wte
    // itself trains, which LoRA leaves frozen.
    const model = tinyModel();
    const wte = model.params.get('transformer.wte.weight')!;
    tf.tidy(() => wte.assign(tf.mul(wte, 15)));
    const rows = EXAMPLES.map((e) => encodeCompletion(tokenizer, e.prompt, e.completion, 16));
    const before = await evaluateSft(model, rows, EOT);
    const w0 = await weights(model);
    const start = tf.memory().numTensors;
    const res = await trainSft(model, EXAMPLES, {
      tokenizer,
      config: {
        epochs: 30,
        learningRate: 1e-2,
        batchSize: 6,
        valFraction: 0,
        lrSchedule: 'constant',
        lora: true,
        loraR: 4,
        loraTargetModules: ['c_attn', 'c_proj', 'c_fc'],
      },
    });
    expect(res.steps).toBe(30);
    expect(model.lora!.adapters.size).toBe(4);
    expect(model.trainableVariables()).toHaveLength(8);
    expect(await weights(model)).toEqual(w0); // the base is frozen
    for (const ad of model.lora!.adapters.values()) expect(ad.b.dataSync().some((x) => x !== 0)).toBe(true);
    const after = await evaluateSft(model, rows, EOT);
    expect(after.loss).toBeLessThan(before.loss * 0.6);
    // With the adapters off the model is the base again.
    model.lora!.enabled = false; // evaluateSft awaits, so switch off by hand (withoutAdapters is synchronous)
    const off = await evaluateSft(model, rows, EOT);
    model.lora!.enabled = true;
    expect(off.loss).toBeCloseTo(before.loss, 5);
    const adapters = model.lora!.variables().length;
    expect(tf.memory().numTensors).toBe(start + adapters); // only the adapters were added
    model.dispose();
  }, 60_000);

  test('a diverged LoRA run removes the adapters it added and leaves the base as it was', async () => {
    const model = tinyModel();
    const w0 = await weights(model);
    let calls = 0;
    const poison = async () => {
      if (++calls === 3) {
        const b = [...model.lora!.adapters.values()][0].b;
        const nan = tf.fill(b.shape, NaN);
        b.assign(nan);
        nan.dispose();
      }
    };
    await expect(
      trainSft(
        model,
        EXAMPLES,
        { tokenizer, config: { epochs: 5, batchSize: 2, valFraction: 0, lora: true } },
        undefined,
        poison,
      ),
    ).rejects.toBeInstanceOf(TuneDivergedError);
    expect(model.lora).toBeNull();
    expect(await weights(model)).toEqual(w0);
    expect(model.trainableVariables()).toHaveLength(model.params.size);
    model.dispose();
  });
});
