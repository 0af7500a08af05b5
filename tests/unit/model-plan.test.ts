/**
 * The memory and shape plan (src/lib/model/plan.ts): sizes from config.json alone, refusals that
 * name config.json and the field, and the safetensors header checked against the config before
 * anything is built.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  CONFIG_CAPS,
  WASM_HEAP_MAX_BYTES,
  checkWeightsHeader,
  countParams,
  planModel,
  type BackendLimits,
} from '../../src/lib/model/plan';
import { ModelLoadError } from '../../src/lib/model/errors';
import { BUNDLED_MODEL } from './bundled-engine';

const bundledConfig = JSON.parse(readFileSync(`${BUNDLED_MODEL}/config.json`, 'utf8')) as Record<string, unknown>;
const bundledWeights = new Uint8Array(readFileSync(`${BUNDLED_MODEL}/model.safetensors`));

const WASM: BackendLimits = {
  backend: 'wasm',
  maxTotalBytes: WASM_HEAP_MAX_BYTES,
  maxBufferBytes: null,
  inUseBytes: 0,
};

/** Hugging Face's `gpt2` config.json (https://huggingface.co/openai-community/gpt2/blob/main/config.json). */
const GPT2_SMALL = {
  activation_function: 'gelu_new',
  architectures: ['GPT2LMHeadModel'],
  attn_pdrop: 0.1,
  bos_token_id: 50256,
  embd_pdrop: 0.1,
  eos_token_id: 50256,
  initializer_range: 0.02,
  layer_norm_epsilon: 1e-5,
  model_type: 'gpt2',
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  resid_pdrop: 0.1,
  vocab_size: 50257,
};

describe('model plan', () => {
  test('sizes of the bundled model', () => {
    const plan = planModel(bundledConfig, WASM);
    expect(plan.params).toBe(965_504);
    expect(plan.weightsBytes).toBe(965_504 * 4);
    expect(plan.maskBytes).toBe(64 * 64 * 4);
    expect(plan.kvCacheBytes).toBe(2 * 4 * 64 * 128 * 4); // keys and values, 4 layers, 64 positions, width 128
    expect(plan.trainingBytes).toBe(3 * 965_504 * 4); // Adam m and v, and the gradients
    expect(plan.loadBytes).toBe(2 * 965_504 * 4 + 64 * 64 * 4);
    expect(plan.largestTensor).toEqual({ name: 'transformer.wte.weight', bytes: 1281 * 128 * 4 });
    expect(plan.contextField).toBe('n_positions');
  });

  test('sizes of GPT-2 small (tied embeddings), which fits on wasm', () => {
    const plan = planModel(GPT2_SMALL, WASM);
    expect(plan.params).toBe(124_439_808);
    expect(plan.weightsBytes).toBe(497_759_232);
    expect(plan.kvCacheBytes).toBe(2 * 12 * 1024 * 768 * 4);
    expect(plan.trainingBytes).toBe(3 * 497_759_232);
    expect(plan.config).toMatchObject({ nLayer: 12, nHead: 12, nEmbd: 768, blockSize: 1024, vocabSize: 50257 });
  });

  test('the closed form agrees with the model layout for several configs', async () => {
    const { parameterShapes } = await import('../../src/lib/model/gpt');
    for (const c of [
      { vocabSize: 7, blockSize: 3, nLayer: 1, nHead: 1, nEmbd: 2, layerNormEps: 1e-5 },
      { vocabSize: 300, blockSize: 33, nLayer: 5, nHead: 3, nEmbd: 48, layerNormEps: 1e-5 },
    ]) {
      let n = 0;
      for (const shape of parameterShapes(c).values()) n += shape.reduce((a, b) => a * b, 1);
      expect(countParams(c)).toBe(n);
    }
  });

  test('a config over the wasm heap is refused naming config.json and the fields that make it big', () => {
    // Under every cap, but 64 blocks of width 4,096 make 13.1 billion parameters (48.8 GiB as float32).
    const big = { ...GPT2_SMALL, n_layer: 64, n_embd: 4096, n_head: 32 };
    expect(() => planModel(big, WASM)).toThrow(ModelLoadError);
    expect(() => planModel(big, WASM)).toThrow(
      'config.json: "n_layer" is 64 and "n_embd" is 4,096; the model would have 13,098,364,928 parameters and need 99.6 GiB to load and sample, more than the wasm backend can hold (4.0 GiB).',
    );
    // GPT-2 small fits alone, but not beside 3.5 GiB already in use.
    expect(() => planModel(GPT2_SMALL, { ...WASM, inUseBytes: 3.5 * 2 ** 30 })).toThrow(
      /"n_layer" is 12 and "n_embd" is 768; .*beside the 3\.5 GiB in use now\)\.$/,
    );
  });

  test('fields over the caps are refused before any size is computed', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ n_layer: 10000 }, /^config\.json: "n_layer" is 10,000; this app handles models of at most 256 blocks\.$/],
      [{ n_positions: 1e9 }, /^config\.json: "n_positions" is 1,000,000,000; .* at most 4,096 positions\.$/],
      [{ n_embd: 1e6 }, /^config\.json: "n_embd" is 1,000,000; .* at most 8,192 as the width\.$/],
      [{ vocab_size: 1e7 }, /^config\.json: "vocab_size" is 10,000,000; .* at most 262,144 tokens\.$/],
      [{ n_head: 512, n_embd: 1024 }, /^config\.json: "n_head" is 512;/],
    ];
    for (const [change, message] of cases)
      expect(() => planModel({ ...bundledConfig, ...change }, WASM)).toThrow(message);
    // n_ctx stands in for n_positions, and messages say which one the file used.
    const { n_positions: _, ...noPositions } = bundledConfig;
    expect(() => planModel({ ...noPositions, n_ctx: 5000 }, WASM)).toThrow(/^config\.json: "n_ctx" is 5,000;/);
    expect(CONFIG_CAPS.n_positions).toBe(4096);
    // A number JSON cannot hold as an integer is named as it reads.
    expect(() =>
      planModel(JSON.parse(JSON.stringify(bundledConfig).replace('"n_layer":4', '"n_layer":1e400')), WASM),
    ).toThrow('config.json: "n_layer" must be a positive integer, got Infinity.');
  });

  test("a tensor over the GPU's largest buffer is refused naming the fields", () => {
    const gpu: BackendLimits = { backend: 'webgpu', maxTotalBytes: null, maxBufferBytes: 256 * 2 ** 20, inUseBytes: 0 };
    expect(planModel(GPT2_SMALL, gpu).largestTensor).toEqual({
      name: 'transformer.wte.weight',
      bytes: 50257 * 768 * 4,
    });
    // WebGPU's default maxStorageBufferBindingSize, 128 MiB, is less than GPT-2's token embedding.
    expect(() => planModel(GPT2_SMALL, { ...gpu, maxBufferBytes: 128 * 2 ** 20 })).toThrow(
      'config.json: "vocab_size" is 50,257 and "n_embd" is 768; transformer.wte.weight would take 147.2 MiB, more than the webgpu backend\'s largest buffer (128.0 MiB).',
    );
  });
});

describe('safetensors header against the config', () => {
  const plan = (change: Record<string, unknown>) => planModel({ ...bundledConfig, ...change }, WASM);

  test('the bundled header matches its config', () => {
    expect(() => checkWeightsHeader(bundledWeights, plan({}), 'model.safetensors')).not.toThrow();
  });

  test('a config that disagrees is refused naming the file and the tensor', () => {
    expect(() => checkWeightsHeader(bundledWeights, plan({ n_embd: 256 }), 'model.safetensors')).toThrow(
      'model.safetensors: tensor "transformer.wte.weight" has shape [1281, 128], but config.json ("vocab_size" is 1,281 and "n_embd" is 256) needs [1281, 256]. Pick the config.json of these weights.',
    );
    expect(() => checkWeightsHeader(bundledWeights, plan({ n_positions: 128 }), 'model.safetensors')).toThrow(
      /tensor "transformer\.wpe\.weight" has shape \[64, 128\], but config\.json \("n_positions" is 128 and "n_embd" is 128\) needs \[128, 128\]/,
    );
    expect(() => checkWeightsHeader(bundledWeights, plan({ n_layer: 200 }), 'my.safetensors')).toThrow(
      /^my\.safetensors has no tensor "transformer\.h\.4\.ln_1\.weight", "transformer\.h\.4\.ln_1\.bias", "transformer\.h\.4\.attn\.c_attn\.weight" and 2,349 more, which config\.json needs \(config\.json says "n_layer" is 200\)\./,
    );
    expect(() => checkWeightsHeader(bundledWeights, plan({ n_layer: 3 }), 'model.safetensors')).toThrow(
      /^model\.safetensors holds "transformer\.h\.3\.ln_1\.weight", .* which config\.json has no place for; config\.json says "n_layer" is 3, so there is no block 3\./,
    );
  });

  test('a header with byte ranges beyond the file is refused before any value is read', () => {
    const cut = bundledWeights.subarray(0, bundledWeights.length - 1000);
    expect(() => checkWeightsHeader(cut, plan({}), 'model.safetensors')).toThrow(
      /^model\.safetensors is not a valid safetensors file: tensor ".+" has data_offsets \[\d+, \d+\] outside the data section of \d+ bytes\.$/,
    );
  });
});
