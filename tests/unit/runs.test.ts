import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import type { IDBPDatabase } from 'idb';
import { deleteBlobChunked, openDb, STORES } from '../../src/lib/storage/db';
import {
  CheckpointMissingError,
  emptyWinTable,
  makeEval,
  parentDeleted,
  RunStore,
  runMetricNames,
  runSeries,
  tallyWin,
  validateRunRecord,
  winRate,
  type RunRecord,
} from '../../src/lib/data/runs';
import { distinctN } from '../../src/lib/rlhf/diversity';

let dbCounter = 0;
const freshName = () => `runs-db-${dbCounter++}`;

function run(id: string, over: Partial<RunRecord> = {}): RunRecord {
  return {
    version: 1,
    id,
    kind: 'sft',
    name: `SFT ${id}`,
    createdAt: 1000 + id.length,
    updatedAt: 1000 + id.length,
    config: { epochs: 2 },
    parent: { kind: 'base', name: 'tiny-gpt' },
    checkpointId: `ckpt-${id}`,
    history: [
      { step: 0, metrics: { loss: 3 } },
      { step: 1, metrics: { loss: 2 } },
    ],
    evals: [makeEval(1, [{ prompt: 'p', text: 'a b c a' }])],
    status: 'finished',
    ...over,
  };
}

const files = (bytes: number[]) => ({
  name: 'tiny-gpt + SFT',
  config: '{"n_layer":1}',
  tokenizer: '{"v":1}',
  weights: new Uint8Array(bytes).buffer,
});

describe('run records', () => {
  it('saves with weights, lists newest first, loads the checkpoint back, deletes run and weights', async () => {
    const db = await openDb(freshName());
    const store = new RunStore(db);
    await store.save({ ...run('a'), createdAt: 1 }, files([1, 2, 3]));
    await store.save({ ...run('bb'), createdAt: 2, kind: 'dpo', parent: { kind: 'run', id: 'a', name: 'SFT a' } });
    const { runs, skipped } = await store.list();
    expect(skipped).toEqual([]);
    expect(runs.map((r) => r.id)).toEqual(['bb', 'a']);
    const f = await store.loadCheckpoint(runs[1]);
    expect([...new Uint8Array(f.weights)]).toEqual([1, 2, 3]);
    expect(f.config).toBe('{"n_layer":1}');
    expect(f.source).toBe('files');

    await store.delete(runs[1]);
    const after = await store.list();
    expect(after.runs.map((r) => r.id)).toEqual(['bb']);
    // The weights went with the run.
    expect(await db.get(STORES.checkpoints, 'ckpt-a')).toBeUndefined();
    expect(await db.getAll(STORES.chunks)).toEqual([]);
    await expect(store.loadCheckpoint(runs[1])).rejects.toThrow(CheckpointMissingError);
    db.close();
  });

  it('a child whose parent run was deleted stays readable and says so', async () => {
    const db = await openDb(freshName());
    const store = new RunStore(db);
    await store.save(run('parent'), files([9]));
    const child = run('child', { kind: 'dpo', parent: { kind: 'run', id: 'parent', name: 'SFT parent' } });
    await store.save(child, files([7, 7]));
    let { runs } = await store.list();
    expect(
      parentDeleted(
        runs.find((r) => r.id === 'child')!,
        runs,
      ),
    ).toBe(false);
    await store.delete(runs.find((r) => r.id === 'parent')!);
    ({ runs } = await store.list());
    const c = runs.find((r) => r.id === 'child')!;
    expect(c.history).toEqual(child.history);
    expect(parentDeleted(c, runs)).toBe(true);
    // Its own weights are still there.
    expect([...new Uint8Array((await store.loadCheckpoint(c)).weights)]).toEqual([7, 7]);
    db.close();
  });

  it('weights gone under a run: a clear named error, the record stays', async () => {
    const db = await openDb(freshName());
    const store = new RunStore(db);
    await store.save(run('x'), files([1]));
    await deleteBlobChunked(db, 'ckpt-x');
    const err = await store.loadCheckpoint(run('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointMissingError);
    expect((err as Error).message).toMatch(/weights of run "SFT x" are gone/);
    await expect(store.loadCheckpoint(run('y', { checkpointId: null }))).rejects.toThrow(CheckpointMissingError);
    expect((await store.list()).runs).toHaveLength(1);
    db.close();
  });

  it('bad records are skipped with a notice; PPO runs and reward models are listed as runs', async () => {
    const db = await openDb(freshName());
    const store = new RunStore(db);
    // Records the typed store would refuse (junk, a future version), written as another app version might.
    const raw = db as unknown as IDBPDatabase;
    await raw.put(STORES.runs, { id: 'junk', version: 1, kind: 'sft' });
    await raw.put(STORES.runs, { ...run('future'), version: 7 });
    await raw.put(STORES.runs, {
      id: 'ppo1',
      kind: 'ppo',
      setup: { name: 'PPO · reviews', prompts: ['a'], evalPrompts: ['p'], config: {}, reward: { kind: 'labeller' } },
      state: { iteration: 2, config: { klCoef: 0.05 } },
      history: [{ step: 1, metrics: { 'objective/kl': 0.1 } }],
      evals: [{ iteration: 2, samples: [{ prompt: 'p', text: 'good good', score: 1, gold: 0.5 }] }],
      updatedAt: 5,
    });
    await raw.put(STORES.rewardModels, {
      id: 'rm1',
      summary: { name: 'RM 1', createdAt: 3, mode: 'head', pairs: 10, accuracy: 0.8, evalAccuracy: 0.7 },
      state: {},
      history: [{ step: 1, metrics: { 'eval/accuracy': 0.7 } }],
    });
    const { runs, skipped } = await store.list();
    expect(runs.map((r) => `${r.kind}:${r.id}`).sort()).toEqual(['ppo:ppo1', 'reward:rm1']);
    expect(skipped).toHaveLength(2);
    expect(skipped.join(' ')).toMatch(/unknown version 7/);
    const ppo = runs.find((r) => r.kind === 'ppo')!;
    expect(ppo.evals[0].metrics['eval/score']).toBe(1);
    expect(ppo.evals[0].metrics['eval/gold']).toBe(0.5);
    expect(ppo.evals[0].metrics['eval/distinct_1']).toBeCloseTo(distinctN(['good good'], 1));
    expect(runMetricNames(ppo)).toContain('objective/kl');
    // Deleting the reward-model run deletes the saved reward model.
    await store.delete(runs.find((r) => r.kind === 'reward')!);
    expect(await db.get(STORES.rewardModels, 'rm1')).toBeUndefined();
    db.close();
  });

  it('validation rejects a bad parent and copies nothing extra', () => {
    expect(() => validateRunRecord({ ...run('a'), parent: { kind: 'run', name: 'x' } })).toThrow(/parent/);
    expect(() => validateRunRecord({ ...run('a'), history: [{ step: 1, metrics: { loss: 'x' } }] })).toThrow(
      /not a number/,
    );
    const v = validateRunRecord({ ...run('a'), extra: 1 });
    expect('extra' in v).toBe(false);
  });

  it('series come from the history, or from evaluations for diversity metrics', () => {
    const r = run('s', {
      evals: [
        makeEval(0, [
          { prompt: 'p', text: 'the the the' },
          { prompt: 'q', text: 'the the the' },
        ]),
        makeEval(5, [
          { prompt: 'p', text: 'a b c' },
          { prompt: 'q', text: 'd e f' },
        ]),
      ],
    });
    expect(runSeries(r, 'loss')).toEqual([
      { x: 0, y: 3 },
      { x: 1, y: 2 },
    ]);
    // distinct-1: unique words / all words: 1/6, then 6/6.
    expect(runSeries(r, 'eval/distinct_1')).toEqual([
      { x: 0, y: 1 / 6 },
      { x: 5, y: 1 },
    ]);
    expect(runSeries(r, 'missing')).toEqual([]);
  });

  it('win table: each comparison lands in both cells; ties count half', () => {
    const t = emptyWinTable(3);
    tallyWin(t, 0, 1, 'A');
    tallyWin(t, 0, 1, 'tie');
    tallyWin(t, 2, 0, 'A');
    tallyWin(t, 1, 2, 'B');
    expect(t[0][1]).toEqual({ wins: 1, losses: 0, ties: 1 });
    expect(t[1][0]).toEqual({ wins: 0, losses: 1, ties: 1 });
    expect(t[0][2]).toEqual({ wins: 0, losses: 1, ties: 0 });
    expect(t[2][1]).toEqual({ wins: 1, losses: 0, ties: 0 });
    expect(winRate(t[0][1])).toBe(0.75);
    expect(winRate(t[1][0])).toBe(0.25);
    expect(winRate(t[0][0])).toBeNaN();
  });
});

describe('engine.sampleWith (in-thread, shipped model, cpu)', () => {
  it("samples a saved run's weights in a temporary model: same text as the live tuned model, loaded model untouched", async () => {
    const { readFileSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const { createEngine } = await import('../../src/lib/engine/engine');
    const { ModelLoadError } = await import('../../src/lib/model/errors');
    const { GPT } = await import('../../src/lib/model/gpt');
    const { configFromHF, loadSafetensorsIntoModel } = await import('../../src/lib/model/weights');
    const engine = createEngine();
    const wasmPath = fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));
    await engine.init({ backend: 'cpu', wasmPath });
    const dir = 'public/models/tiny-gpt';
    const w = readFileSync(`${dir}/model.safetensors`);
    const baseFiles = {
      name: 'tiny-gpt',
      source: 'files' as const,
      config: readFileSync(`${dir}/config.json`, 'utf8'),
      tokenizer: readFileSync(`${dir}/tokenizer.json`, 'utf8'),
      weights: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer,
    };
    await engine.loadModel(baseFiles);
    const prompts = ['The movie was', 'Once upon a time,'];
    const req = { prompts, maxNewTokens: 8, temperature: 0.7, topK: 40, seed: 4242 };
    await engine.sftRun('sft', [{ prompt: 'The movie was', completion: ' a quiet triumph of zebra jazz.' }], {
      epochs: 3,
      batchSize: 1,
      learningRate: 3e-3,
      valFraction: 0,
    });
    const live = await engine.tuneSamples(prompts, 8);
    expect(live.some((s) => s.tuned !== s.base)).toBe(true); // the run changed the model
    const files = await engine.tuneExport();
    await engine.tuneDiscard();
    const before = (await engine.memory()).numTensors;

    // The saved (safetensors) weights write what the live tuned model wrote, with the same seed.
    expect(await engine.sampleWith('a', { kind: 'files', files }, req)).toEqual(live.map((s) => s.tuned));
    // The base model's files, and its parameters (as a PPO checkpoint holds them), give the base texts.
    expect(await engine.sampleWith('b', { kind: 'files', files: baseFiles }, req)).toEqual(live.map((s) => s.base));
    const m = new GPT(configFromHF(JSON.parse(baseFiles.config)), { trainable: false, init: 'zeros' });
    loadSafetensorsIntoModel(m, new Uint8Array(baseFiles.weights));
    const params: Record<string, Float32Array> = {};
    for (const [name, v] of m.params) params[name] = new Float32Array(v.dataSync());
    m.dispose();
    expect(await engine.sampleWith('c', { kind: 'params', params }, req)).toEqual(live.map((s) => s.base));
    // Parameters of another model: a named error, nothing changes.
    const { [Object.keys(params)[0]]: _dropped, ...partial } = params;
    await expect(engine.sampleWith('d', { kind: 'params', params: partial }, req)).rejects.toBeInstanceOf(
      ModelLoadError,
    );
    // The loaded model is still the base one, and the temporary models are gone.
    expect((await engine.modelInfo())?.name).toBe('tiny-gpt');
    expect((await engine.memory()).numTensors).toBe(before);
  }, 120_000);
  it('LoRA: an SFT run’s merged checkpoint writes what the live adapters wrote; a saved run’s adapters sample as their merge', async () => {
    const { readFileSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const { createEngine } = await import('../../src/lib/engine/engine');
    const engine = createEngine();
    const wasmPath = fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));
    await engine.init({ backend: 'cpu', wasmPath });
    const dir = 'public/models/tiny-gpt';
    const w = readFileSync(`${dir}/model.safetensors`);
    await engine.loadModel({
      name: 'tiny-gpt',
      source: 'files' as const,
      config: readFileSync(`${dir}/config.json`, 'utf8'),
      tokenizer: readFileSync(`${dir}/tokenizer.json`, 'utf8'),
      weights: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer,
    });
    const prompts = ['The movie was', 'Once upon a time,'];
    const req = { prompts, maxNewTokens: 8, temperature: 0.7, topK: 40, seed: 4242 };
    await engine.sftRun('sft', [{ prompt: 'The movie was', completion: ' a quiet triumph of zebra jazz.' }], {
      epochs: 3,
      batchSize: 1,
      learningRate: 3e-2,
      valFraction: 0,
      lora: true,
      loraTargetModules: ['c_attn', 'c_proj', 'c_fc'],
    });
    const live = await engine.tuneSamples(prompts, 8);
    expect(live.some((s) => s.tuned !== s.base)).toBe(true); // the adapters changed the model
    const files = await engine.tuneExport();
    expect(await engine.sampleWith('a', { kind: 'files', files }, req)).toEqual(live.map((s) => s.tuned));
    await engine.tuneDiscard();

    // A saved LoRA run's state (adapters only, as PPO and GRPO store it) samples as its merged checkpoint.
    const { GPT } = await import('../../src/lib/model/gpt');
    const { configFromHF, loadSafetensorsIntoModel, writeSafetensors } = await import('../../src/lib/model/weights');
    const { mergedTensors } = await import('../../src/lib/model/lora-peft');
    const { LORA_SETTINGS } = await import('../../src/lib/model/lora-config');
    const tf = await import('@tensorflow/tfjs-core');
    const m = new GPT(configFromHF(JSON.parse(files.config)), { trainable: false, init: 'zeros' });
    loadSafetensorsIntoModel(m, new Uint8Array(readFileSync(`${dir}/model.safetensors`)));
    const lora = { ...LORA_SETTINGS.defaults, lora: true, loraR: 2 };
    const ads = m.addAdapters({ r: 2, alpha: lora.loraAlpha, dropout: 0, targetModules: null }, 5);
    const params: Record<string, Float32Array> = {};
    for (const [name, ad] of ads.adapters) {
      tf.tidy(() => ad.b.assign(tf.randomNormal(ad.b.shape, 0, 0.5, 'float32', 9)));
      params[`${name}.lora_A`] = new Float32Array(ad.a.dataSync());
      params[`${name}.lora_B`] = new Float32Array(ad.b.dataSync());
    }
    const merged = writeSafetensors(await mergedTensors(m), 'F32');
    m.dispose();
    const mergedFiles = { ...files, weights: merged.buffer.slice(0) as ArrayBuffer };
    const fromState = await engine.sampleWith('b', { kind: 'params', params, lora }, req);
    expect(fromState).toEqual(await engine.sampleWith('c', { kind: 'files', files: mergedFiles }, req));
    expect(fromState).not.toEqual(live.map((s) => s.base));
  }, 180_000);
});
