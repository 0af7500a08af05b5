import { describe, expect, test } from 'vitest';
import { tf, useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import { ModelLoadError, WeightsFormatError } from '../../src/lib/model/errors';
import {
  configFromHF,
  configToHF,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  loadSafetensorsIntoModel,
  modelTensors,
  readSafetensors,
  saveModelSafetensors,
  writeSafetensors,
  type TensorRecord,
} from '../../src/lib/model/weights';
import type { GPTConfig } from '../../src/lib/model/config';

const CONFIG: GPTConfig = { vocabSize: 19, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8, layerNormEps: 1e-5 };

/** A hand-built safetensors file: header JSON (unpadded) + data. */
function rawFile(header: unknown, data: Uint8Array, headerLen?: number): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}
const f32Bytes = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

describe('float16', () => {
  test('exact values, rounding to nearest even, overflow, subnormals', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // max half
      [65520, 0x7c00], // halfway to 2^16 rounds to even → Inf
      [1e6, 0x7c00],
      [Infinity, 0x7c00],
      [2 ** -14, 0x0400], // min normal
      [2 ** -24, 0x0001], // min subnormal
      [2 ** -25, 0x0000], // halfway to the min subnormal: ties to even → 0
      [3 * 2 ** -25, 0x0002], // 1.5 ulp: ties to even → 2
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: even → 1
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between 1+2^-10 and 1+2^-9: even → up
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above halfway → up
      [0.1, 0x2e66],
    ];
    for (const [x, bits] of cases) expect(float32ToFloat16Bits(x), `f16(${x})`).toBe(bits);
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
    // Every half value round-trips exactly.
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaNs
      expect(float32ToFloat16Bits(float16BitsToFloat32(h))).toBe(h);
    }
  });
});

describe('safetensors', () => {
  test('F32 round trip is exact; metadata and shapes kept; header 8-byte aligned', () => {
    const tensors = new Map<string, TensorRecord>([
      ['a', { shape: [2, 3], data: Float32Array.from([1.5, -2.25, Math.PI, 1e-30, -7e20, 0]) }],
      ['b.c', { shape: [1], data: Float32Array.from([42]) }],
      ['empty', { shape: [0, 4], data: new Float32Array(0) }],
    ]);
    const bytes = writeSafetensors(tensors, 'F32', { format: 'pt', note: 'hello' });
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
    const file = readSafetensors(bytes);
    expect(file.metadata).toEqual({ format: 'pt', note: 'hello' });
    for (const [name, t] of tensors) {
      const got = file.tensors.get(name)!;
      expect(got.dtype).toBe('F32');
      expect(got.shape).toEqual(t.shape);
      expect(Array.from(got.data)).toEqual(Array.from(t.data));
    }
  });

  test('F16 round trip is within half precision', () => {
    const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 10 ** ((i % 9) - 4));
    const file = readSafetensors(writeSafetensors(new Map([['w', { shape: [10, 100], data }]]), 'F16'));
    const got = file.tensors.get('w')!;
    expect(got.dtype).toBe('F16');
    for (let i = 0; i < data.length; i++) {
      const x = data[i];
      // relative error ≤ 2^-11 for normals; absolute ≤ 2^-25 for subnormals
      expect(Math.abs(got.data[i] - x)).toBeLessThanOrEqual(Math.max(Math.abs(x) * 2 ** -11, 2 ** -25));
    }
  });

  test('reads BF16 and F64', () => {
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040]).buffer); // 1, -3
    const f64 = new Uint8Array(new Float64Array([0.5]).buffer);
    const data = new Uint8Array(12);
    data.set(bf16, 0);
    data.set(f64, 4);
    const file = readSafetensors(
      rawFile(
        {
          x: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] },
          y: { dtype: 'F64', shape: [], data_offsets: [4, 12] },
        },
        data,
      ),
    );
    expect(Array.from(file.tensors.get('x')!.data)).toEqual([1, -3]);
    expect(Array.from(file.tensors.get('y')!.data)).toEqual([0.5]);
  });

  const good = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const malformed: [string, Uint8Array, RegExp][] = [
    ['truncated header length', new Uint8Array(5), /5 bytes, fewer than the 8-byte header length/],
    [
      'header length beyond the file',
      rawFile(good, f32Bytes([1, 2]), 10_000),
      /header length 10000 goes beyond the end of the file/,
    ],
    ['bad JSON', rawFile('{"w": {"dtype": "F32",', new Uint8Array(0)), /header is not valid UTF-8 JSON/],
    ['header not an object', rawFile('[1,2]', new Uint8Array(0)), /header is not a JSON object/],
    [
      'unknown dtype',
      rawFile({ w: { dtype: 'F33', shape: [2], data_offsets: [0, 8] } }, f32Bytes([1, 2])),
      /tensor "w" has unknown dtype "F33"/,
    ],
    [
      'integer dtype',
      rawFile({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, f32Bytes([1, 2])),
      /dtype I64; weights must be F32, F16, BF16 or F64/,
    ],
    [
      'negative shape',
      rawFile({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32Bytes([1, 2])),
      /shape \[-2\]; it must be a list of non-negative integers/,
    ],
    [
      'offsets outside data',
      rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32Bytes([1, 2])),
      /data_offsets \[0, 16\] outside the data section of 8 bytes/,
    ],
    [
      'shape/bytes mismatch',
      rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32Bytes([1, 2])),
      /shape \[3\] and dtype F32 \(12 bytes\) but data_offsets span 8 bytes/,
    ],
    [
      'overlapping tensors',
      rawFile(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
        },
        f32Bytes([1, 2]),
      ),
      /tensors "a" \[0, 8\] and "b" \[4, 8\] overlap/,
    ],
    [
      'metadata not strings',
      rawFile({ __metadata__: { step: 3 }, ...good }, f32Bytes([1, 2])),
      /__metadata__.step must be a string/,
    ],
    ['NaN value', rawFile(good, f32Bytes([1, NaN])), /tensor "w" holds NaN at flat index 1/],
    ['Inf value', rawFile(good, f32Bytes([-Infinity, 0])), /tensor "w" holds -Infinity at flat index 0/],
  ];
  test.each(malformed)('%s throws WeightsFormatError', (_name, bytes, message) => {
    expect(() => readSafetensors(bytes)).toThrow(WeightsFormatError);
    expect(() => readSafetensors(bytes)).toThrow(message);
  });

  test('a well-formed hand-built file reads', () => {
    expect(Array.from(readSafetensors(rawFile(good, f32Bytes([1, 2]))).tensors.get('w')!.data)).toEqual([1, 2]);
  });
});

describe('model weights', () => {
  test('save → load round trip (F32 exact, F16 close) and same logits', async () => {
    await useBackend('cpu');
    const a = new GPT(CONFIG, { seed: 1 });
    const b = new GPT(CONFIG, { seed: 2 });
    loadSafetensorsIntoModel(b, await saveModelSafetensors(a, 'F32'));
    const ta = await modelTensors(a);
    const tb = await modelTensors(b);
    for (const [name, t] of ta) expect(Array.from(tb.get(name)!.data), name).toEqual(Array.from(t.data));

    const c = new GPT(CONFIG, { seed: 3 });
    const f16 = await saveModelSafetensors(a, 'F16', { step: '7' });
    const file = loadSafetensorsIntoModel(c, f16);
    expect(file.metadata).toEqual({ format: 'pt', step: '7' });
    const idx = tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32');
    const la = await a.forward(idx).logits.data();
    const lc = await c.forward(idx).logits.data();
    for (let i = 0; i < la.length; i++) expect(Math.abs(la[i] - lc[i])).toBeLessThan(1e-3);
    for (const m of [a, b, c]) m.dispose();
  });

  test('a failed load keeps the previous weights', async () => {
    await useBackend('cpu');
    const src = new GPT(CONFIG, { seed: 1 });
    const model = new GPT(CONFIG, { seed: 2 });
    const before = await modelTensors(model);
    const tensors = await modelTensors(src);

    // Wrong shape of the last tensor: names and shapes are checked before anything is assigned.
    const bad = new Map(tensors);
    bad.set('transformer.ln_f.bias', { shape: [CONFIG.nEmbd + 1], data: new Float32Array(CONFIG.nEmbd + 1) });
    expect(() => loadSafetensorsIntoModel(model, writeSafetensors(bad))).toThrow(ModelLoadError);

    // A NaN in the last tensor: the whole file is validated first.
    const nan = new Map(tensors);
    nan.set('transformer.ln_f.bias', { shape: [CONFIG.nEmbd], data: new Float32Array(CONFIG.nEmbd).fill(NaN) });
    expect(() => loadSafetensorsIntoModel(model, writeSafetensors(nan))).toThrow(WeightsFormatError);

    // A model of another size.
    const other = new GPT({ ...CONFIG, nEmbd: 16 }, { seed: 1 });
    expect(() => loadSafetensorsIntoModel(model, writeSafetensors(new Map()))).toThrow(
      /missing transformer\.wte\.weight/,
    );
    await expect(saveModelSafetensors(other).then((b) => loadSafetensorsIntoModel(model, b))).rejects.toThrow(
      /has shape \[19,16\], the config needs \[19,8\]/,
    );

    const after = await modelTensors(model);
    for (const [name, t] of before) expect(Array.from(after.get(name)!.data), name).toEqual(Array.from(t.data));
    for (const m of [src, model, other]) m.dispose();
  });

  test('HF GPT-2 names: missing transformer. prefix, lm_head and attn.bias buffers are accepted', async () => {
    await useBackend('cpu');
    const src = new GPT(CONFIG, { seed: 1 });
    const hf = new Map<string, TensorRecord>();
    for (const [name, t] of await modelTensors(src)) hf.set(name.replace(/^transformer\./, ''), t);
    hf.set('lm_head.weight', (await modelTensors(src)).get('transformer.wte.weight')!);
    hf.set('h.0.attn.bias', { shape: [1, 1, 8, 8], data: new Float32Array(64) });
    const model = new GPT(CONFIG, { seed: 2 });
    loadSafetensorsIntoModel(model, writeSafetensors(hf));
    expect(Array.from(await model.params.get('transformer.h.1.mlp.c_fc.weight')!.data())).toEqual(
      Array.from(await src.params.get('transformer.h.1.mlp.c_fc.weight')!.data()),
    );
    src.dispose();
    model.dispose();
  });
});

describe('config.json', () => {
  test('HF GPT-2 fields and round trip', () => {
    const json = configToHF(CONFIG, 18);
    expect(json).toMatchObject({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      n_layer: 2,
      n_head: 2,
      n_embd: 8,
      n_positions: 8,
      n_ctx: 8,
      vocab_size: 19,
      layer_norm_epsilon: 1e-5,
      activation_function: 'gelu_new',
      bos_token_id: 18,
      eos_token_id: 18,
      tie_word_embeddings: true,
    });
    expect(configFromHF(JSON.parse(JSON.stringify(json)))).toEqual(CONFIG);
  });

  test('rejects unusable configs with WeightsFormatError', () => {
    const json = configToHF(CONFIG, 18) as unknown as Record<string, unknown>;
    expect(() => configFromHF({ ...json, model_type: 'bert' })).toThrow(/only "gpt2"/);
    expect(() => configFromHF({ ...json, n_head: 3 })).toThrow(/not divisible by n_head 3/);
    expect(() => configFromHF({ ...json, n_layer: 0 })).toThrow(WeightsFormatError);
    expect(() => configFromHF({ ...json, activation_function: 'relu' })).toThrow(/gelu_new/);
    expect(() => configFromHF(null)).toThrow(WeightsFormatError);
  });
});
