/**
 * The engine's side of the rollout history: with `keepRollouts`, each finished PPO iteration
 * (whole or phase by phase) carries its whole batch, packed; the per-token numbers agree with the
 * token view's traces, entropy and log-probs are sane, the gold labeller scores every row; the log
 * round-trips through the rollouts store. Without `keepRollouts` nothing extra is sent.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { useBackend } from './tf-backends';
import { createEngine } from '../../src/lib/engine/engine';
import type { ModelFiles, PpoEvent } from '../../src/lib/engine/types';
import { GPT } from '../../src/lib/model/gpt';
import { trainBpe } from '../../src/lib/model/tokenizer';
import { configToHF, saveModelSafetensors } from '../../src/lib/model/weights';
import { defaultLabellerConfig } from '../../src/lib/rlhf/labellers';
import { rowTokens, withBytes, type RolloutLog } from '../../src/lib/data/rollouts';
import { openDb } from '../../src/lib/storage/db';
import { RolloutStore } from '../../src/lib/storage/rollouts';

const wasmPath = fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));
const TEXTS = [
  'The movie was great and I loved it.',
  'The movie was awful and boring.',
  'Once upon a time, a fox lived by the river.',
];

async function tinyModelFiles(): Promise<ModelFiles> {
  const tok = trainBpe(TEXTS, 40);
  const config = { vocabSize: tok.vocabSize, blockSize: 32, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 };
  const model = new GPT(config, { seed: 3 });
  const weights = await saveModelSafetensors(model, 'F32');
  model.dispose();
  return {
    name: 'tiny',
    source: 'files',
    config: JSON.stringify(configToHF(config, tok.eotId)),
    tokenizer: JSON.stringify(tok.toJSON()),
    weights: weights.slice().buffer,
  };
}

describe('PPO iterations carry their whole batch for the rollout history', () => {
  it('whole iterations and stepped phases; numbers match the traces; stored and read back', async () => {
    await useBackend('cpu');
    const engine = createEngine();
    await engine.init({ backend: 'cpu', wasmPath });
    await engine.loadModel(await tinyModelFiles());
    const B = 6;
    await engine.ppoCreate({
      prompts: ['The movie was', 'Once upon', 'The fox'],
      evalPrompts: [],
      config: { batchSize: B, maxNewTokens: 5, miniBatches: 2, ppoEpochs: 1, seed: 4, temperature: 0.9 },
      reward: { kind: 'labeller', labeller: defaultLabellerConfig('sentiment') },
      gold: defaultLabellerConfig('length'),
    });

    const events: PpoEvent[] = [];
    await engine.ppoRun('a', { iterations: 1 }, (e) => events.push(e));
    const plain = events.find((e) => e.kind === 'iteration')!;
    expect('rollout' in plain).toBe(false);

    events.length = 0;
    await engine.ppoRun('b', { iterations: 1, keepRollouts: true }, (e) => events.push(e));
    const it = events.find((e) => e.kind === 'iteration')!;
    if (it.kind !== 'iteration') throw new Error('no iteration event');
    const log = it.rollout!;
    expect(log.iteration).toBe(2);
    expect(log.algo).toBe('ppo');
    expect(log.prompts).toHaveLength(B);
    expect(log.completions).toHaveLength(B);
    expect(log.sources.map((s) => s.name)).toEqual(['sentiment']);
    expect(log.gold).toHaveLength(B);
    expect(Array.from(log.gold!).every(Number.isFinite)).toBe(true);
    const t = log.tokens!;
    expect(t.offsets).toHaveLength(B + 1);
    for (let b = 0; b < B; b++) {
      const row = rowTokens(log, b)!;
      expect(row.tokens.length).toBeGreaterThan(0);
      expect(row.tokens.length).toBeLessThanOrEqual(5);
      for (let i = 0; i < row.tokens.length; i++) {
        expect(row.logprob[i]).toBeLessThanOrEqual(1e-6);
        expect(row.entropy[i]).toBeGreaterThan(0);
        expect(Number.isFinite(row.kl[i]) && Number.isFinite(row.advantage[i])).toBe(true);
      }
    }
    // The first rows are the token view's traces: the same numbers.
    it.traces.forEach((tr, b) => {
      const row = rowTokens(log, b)!;
      expect(row.tokens).toEqual(tr.tokens);
      expect(Array.from(row.kl)).toEqual(tr.kl.map(Math.fround));
      expect(Array.from(row.advantage)).toEqual(tr.advantages.map(Math.fround));
      expect(Array.from(row.refLogprob)).toEqual(tr.refLogprobs.map(Math.fround));
      expect(log.reward[b]).toBeCloseTo(tr.score, 5);
    });

    // Phase by phase: the update phase's event carries the iteration's log.
    const stepped: PpoEvent[] = [];
    for (let i = 0; i < 4; i++)
      await engine.ppoRun(`p${i}`, { iterations: 1, phase: true, keepRollouts: true }, (e) => stepped.push(e));
    const withLog = stepped.filter((e) => e.kind === 'phase' && e.rollout);
    expect(withLog.map((e) => e.kind === 'phase' && e.phase)).toEqual(['update']);
    const log3 = (withLog[0] as { rollout: RolloutLog }).rollout;
    expect(log3.iteration).toBe(3);
    expect(log3.prompts).toHaveLength(B);

    // Round trip through the store, with the page's run id.
    const db = await openDb('rollouts-engine');
    const store = new RolloutStore(db);
    await store.write([withBytes({ ...log, runId: 'r' }), withBytes({ ...log3, runId: 'r' })], 1e9);
    const back = (await store.get('r', 2))!;
    expect(back.tokens!.kl).toEqual(log.tokens!.kl);
    expect(rowTokens(back, 3)!.tokens).toEqual(rowTokens(log, 3)!.tokens);
    expect(await store.iterations('r')).toEqual([2, 3]);
    db.close();
    await engine.ppoDispose();

    // GRPO: each iteration's groups (prompt G times, rewards, advantages), no per-token arrays.
    await engine.groupCreate({
      algo: 'grpo',
      config: { batchSize: 4, numGenerations: 2, maxCompletionLength: 5, seed: 1 },
      prompts: ['The movie was', 'Once upon'],
      reward: { kind: 'labeller', labeller: defaultLabellerConfig('sentiment') },
    });
    let group: RolloutLog | undefined;
    await engine.groupRun('g', { iterations: 1, keepRollouts: true }, (e) => (group = e.rollout));
    expect(group!.algo).toBe('grpo');
    expect(group!.iteration).toBe(1);
    expect(Array.from(group!.group!)).toEqual([0, 0, 1, 1]);
    expect(group!.prompts[0]).toBe(group!.prompts[1]);
    expect(group!.sources[0].name).toBe('sentiment');
    expect(group!.rowAdvantage).toHaveLength(4);
    expect(group!.tokens).toBeNull();
    let none: unknown = 'unset';
    await engine.groupRun('g2', { iterations: 1 }, (e) => (none = e.rollout));
    expect(none).toBeUndefined();
    await engine.groupDispose();
  });
});
