/**
 * A model load can never break the engine: refusals come from the plan before anything is
 * built, loads are serialised (the latest wins), and a backend that fails under a load is
 * restarted with the previous model restored from its files. In-thread engine, shipped model.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { tf } from './tf-backends';
import { BUNDLED_MODEL, engineWithBundledModel } from './bundled-engine';
import { ModelLoadError } from '../../src/lib/engine/errors';
import type { Engine, GenerateRequest, ModelFiles, RewardModelSummary } from '../../src/lib/engine/types';
import { GPT } from '../../src/lib/model/gpt';
import { configFromHF, loadSafetensorsIntoModel } from '../../src/lib/model/weights';
import { RewardModel } from '../../src/lib/rlhf/reward-model';

const weightsBuffer = readFileSync(`${BUNDLED_MODEL}/model.safetensors`);
const configJson = JSON.parse(readFileSync(`${BUNDLED_MODEL}/config.json`, 'utf8')) as Record<string, unknown>;

function files(name: string, configChange: Record<string, unknown> = {}): ModelFiles {
  return {
    name,
    source: 'files',
    config: JSON.stringify({ ...configJson, ...configChange }),
    tokenizer: readFileSync(`${BUNDLED_MODEL}/tokenizer.json`, 'utf8'),
    weights: weightsBuffer.buffer.slice(
      weightsBuffer.byteOffset,
      weightsBuffer.byteOffset + weightsBuffer.byteLength,
    ) as ArrayBuffer,
  };
}

const REQ: GenerateRequest = {
  prompts: ['The movie was'],
  maxNewTokens: 8,
  temperature: 1,
  topK: 0,
  topP: 1,
  seed: 7,
  useCache: true,
};

async function sampleText(engine: Engine): Promise<string> {
  return (await engine.generate(`g-${Math.random()}`, REQ)).samples[0].text;
}

describe('model loads', () => {
  it('refuses configs that cannot fit, naming config.json and the field, before building anything', async () => {
    const engine = await engineWithBundledModel('cpu');
    // The plan's sizes travel with the model's info (the Model page's card shows them).
    expect((await engine.modelInfo())!.memory).toEqual({
      weightsBytes: 965_504 * 4,
      kvCacheBytes: 2 * 4 * 64 * 128 * 4,
      trainingBytes: 3 * 965_504 * 4,
    });
    const before = await sampleText(engine);
    const tensors = tf.memory().numTensors;
    const cases: [Record<string, unknown>, string | RegExp][] = [
      [{ n_layer: 10000 }, 'config.json: "n_layer" is 10,000; this app handles models of at most 256 blocks.'],
      [
        { n_positions: 1e9 },
        'config.json: "n_positions" is 1,000,000,000; this app handles models of at most 4,096 positions.',
      ],
      [{ n_embd: 1e6 }, 'config.json: "n_embd" is 1,000,000; this app handles models of at most 8,192 as the width.'],
      // Under the caps: the header disagrees with the config and is refused before the model is built.
      [
        { n_layer: 200 },
        /^model-200\.safetensors has no tensor "transformer\.h\.4\.ln_1\.weight".*\(config\.json says "n_layer" is 200\)\./,
      ],
      [
        { vocab_size: 2000 },
        'config.json: "vocab_size" is 2000, but tokenizer.json has 1281 tokens. Pick files of the same model.',
      ],
    ];
    for (const [change, message] of cases) {
      const t0 = performance.now();
      const load = engine.loadModel(files(`model-${Object.values(change)[0]}`, change));
      await expect(load).rejects.toBeInstanceOf(ModelLoadError);
      await expect(load).rejects.toThrow(message);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(tf.memory().numTensors).toBe(tensors); // nothing was allocated, nothing leaked
    }
    expect((await engine.modelInfo())!.name).toBe('tiny-gpt');
    expect(await sampleText(engine)).toBe(before);
  });

  it('serialises loads: of two picks in a row the latest wins, and a broken latest leaves the model as it was', async () => {
    const engine = await engineWithBundledModel('cpu');
    const superseded = 'A newer model load replaced this one; the model it asked for was not loaded.';
    const [a, b] = await Promise.allSettled([
      engine.loadModel(files('first')),
      engine.loadModel(files('broken', { n_embd: 1e6 })),
    ]);
    expect(a).toMatchObject({ status: 'rejected', reason: { message: superseded } });
    expect(b).toMatchObject({
      status: 'rejected',
      reason: { message: expect.stringMatching(/^config\.json: "n_embd"/) },
    });
    expect((await engine.modelInfo())!.name).toBe('tiny-gpt');
    const [c, d] = await Promise.allSettled([engine.loadModel(files('second')), engine.loadModel(files('third'))]);
    expect(c).toMatchObject({ status: 'rejected', reason: { message: superseded } });
    expect(d).toMatchObject({ status: 'fulfilled', value: { name: 'third' } });
    expect((await engine.modelInfo())!.name).toBe('third');
    // One after the other, each load runs.
    expect((await engine.loadModel(files('fourth'))).name).toBe('fourth');
    await expect(engine.loadModel(files('broken', { n_layer: 10000 }))).rejects.toThrow(/"n_layer" is 10,000/);
    expect((await engine.modelInfo())!.name).toBe('fourth');
  });

  it('an earlier load that is still fetching when a newer one is asked for is dropped: the latest wins', async () => {
    const engine = await engineWithBundledModel('cpu');
    // The bundled files over HTTP, each answer held back a moment, as a slow network would.
    const server = createServer((req, res) => {
      const file = `${BUNDLED_MODEL}/${(req.url ?? '/').slice(1)}`;
      setTimeout(() => {
        try {
          const body = readFileSync(file);
          res.writeHead(200).end(body);
        } catch {
          res.writeHead(404).end();
        }
      }, 300);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const slow = engine.loadModelFromUrl(base, 'slow');
      const picked = engine.loadModel(files('picked'));
      await expect(slow).rejects.toThrow(
        'A newer model load replaced this one; the model it asked for was not loaded.',
      );
      expect((await picked).name).toBe('picked');
      expect((await engine.modelInfo())!.name).toBe('picked');
      // On its own, the same URL load works.
      expect((await engine.loadModelFromUrl(base, 'slow')).name).toBe('slow');
    } finally {
      server.close();
    }
  });

  it('the active reward model is rebuilt on the restarted backend and scores as before', async () => {
    // On wasm a restart frees the old module's memory (the cpu backend would keep old tensors readable).
    const engine = await engineWithBundledModel('wasm');
    const trunk = new GPT(configFromHF(configJson), { trainable: false, init: 'zeros' });
    loadSafetensorsIntoModel(trunk, new Uint8Array(weightsBuffer));
    const rm = RewardModel.fromPolicy(trunk, { seed: 3 });
    const state = await rm.getState();
    rm.dispose();
    trunk.dispose();
    const summary = { id: 'rm-1', name: 'RM', mode: 'head' } as RewardModelSummary;
    await engine.activateRewardModel(state, summary);
    const items = [
      { prompt: 'The movie was', response: ' great fun' },
      { prompt: 'The food', response: ' was cold' },
    ];
    const scores = await engine.scoreResponses(items);
    await engine.debugTrapNextLoad();
    await expect(engine.loadModel(files('other'))).rejects.toThrow(/it was restarted and the previous model tiny-gpt/);
    expect((await engine.activeRewardModel())?.id).toBe('rm-1');
    expect(await engine.scoreResponses(items)).toEqual(scores);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`a backend trap during a load restarts ${backend} and restores the previous model from its files`, async () => {
      const engine = await engineWithBundledModel(backend);
      const before = await sampleText(engine);
      expect(await engine.debugTrapNextLoad()).toBe(true);
      const load = engine.loadModel(files('other'));
      await expect(load).rejects.toBeInstanceOf(ModelLoadError);
      await expect(load).rejects.toThrow(
        `The ${backend} backend failed while building the model (memory access out of bounds (simulated by debugTrapNextLoad)); it was restarted and the previous model tiny-gpt was restored from its files.`,
      );
      expect((await engine.backendInfo())!.name).toBe(backend);
      expect((await engine.modelInfo())!.name).toBe('tiny-gpt');
      expect(await sampleText(engine)).toBe(before); // the same weights: the same seeded sample
      // And the next load works as usual.
      expect((await engine.loadModel(files('other'))).name).toBe('other');
      expect(await sampleText(engine)).toBe(before);
    });
  }
});
