/**
 * GRPO, RLOO and online DPO runs saved like PPO runs (src/lib/data/runs.ts `saveGroup` / `loadGroup`, shapes
 * in src/lib/data/saved.ts): a real trainer's state goes into the `runs` store with its tensors in
 * `chunks` (fake-indexeddb), comes back bit for bit, resumes a fresh trainer to exactly the
 * iteration the original would have run, is listed as a run of its algorithm, and is deleted with
 * its chunks.
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import { GrpoTrainer, RlooTrainer } from '../../src/lib/rlhf/grpo';
import { OnlineDpoTrainer } from '../../src/lib/rlhf/online-dpo';
import type { RewardSource } from '../../src/lib/rlhf/ppo';
import { RunStore } from '../../src/lib/data/runs';
import {
  groupBlobId,
  isSavedGroupRun,
  packGroupTensors,
  unpackGroupTensors,
  type GroupRunSave,
} from '../../src/lib/data/saved';
import { chunkRange, openDb, STORES } from '../../src/lib/storage/db';
import type { GroupSetup } from '../../src/lib/engine/types';

const V = 12;
const EOT = 11;
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
  decode: (ids: number[]) => ids.map((i) => (i === EOT ? '|' : String.fromCharCode(97 + i))).join(''),
};
const PROMPTS = ['ab', 'cfe', 'g', 'hij'];
const CONFIG = { numGenerations: 2, batchSize: 4, maxCompletionLength: 5, temperature: 1, learningRate: 1e-2, seed: 4 };
const ODPO_CONFIG = { batchSize: 2, maxNewTokens: 5, temperature: 1, learningRate: 1e-2, seed: 4 };
type Algo = 'grpo' | 'rloo' | 'online-dpo';
const configOf = (algo: Algo) => (algo === 'online-dpo' ? ODPO_CONFIG : CONFIG);
/** Reward: how many 'd' (id 3) the completion has. */
const reward: RewardSource = { score: async (b) => b.map((x) => x.responseIds.filter((i) => i === 3).length) };

let dbCounter = 0;
const freshName = () => `group-runs-db-${dbCounter++}`;
const tiny = () =>
  new GPT({ vocabSize: V, blockSize: 12, nLayer: 1, nHead: 2, nEmbd: 8, layerNormEps: 1e-5 }, { seed: 2 });

beforeAll(async () => {
  await useBackend('cpu');
});
afterAll(() => tf.disposeVariables());

function setupOf(algo: Algo): GroupSetup {
  return {
    algo,
    config: configOf(algo),
    prompts: PROMPTS,
    reward: {
      kind: 'function',
      functions: [{ name: 'count_d', code: 'function reward(p, c) { return c.map(() => 1); }', weight: 1 }],
    },
    name: `${algo.toUpperCase()} · test`,
  };
}

describe('GRPO / RLOO / online DPO runs in the runs store', () => {
  for (const algo of ['grpo', 'rloo', 'online-dpo'] as const) {
    it(`${algo}: saved after 2 iterations, listed as ${algo}, loaded back, resumes to the same next iteration, deleted with its chunks`, async () => {
      const base = tiny();
      const make = () =>
        algo === 'grpo'
          ? new GrpoTrainer({ model: base, reward, tokenizer, prompts: PROMPTS, config: CONFIG })
          : algo === 'rloo'
            ? new RlooTrainer({ model: base, reward, tokenizer, prompts: PROMPTS, config: CONFIG })
            : new OnlineDpoTrainer({ model: base, reward, tokenizer, prompts: PROMPTS, config: ODPO_CONFIG });
      const a = make();
      await a.iteration();
      await a.iteration();
      const state = await a.getState();

      const db = await openDb(freshName());
      const store = new RunStore(db);
      const rec: GroupRunSave = {
        id: `run-${algo}`,
        kind: algo,
        setup: setupOf(algo),
        state,
        history: a.history.map((m) => ({ step: m.iteration, metrics: { loss: m.loss } })),
        updatedAt: 5000,
      };
      const saved = await store.saveGroup(rec, { kind: 'base', name: 'tiny' });
      // The record holds no tensors; they are chunks under the run's blob id.
      expect(isSavedGroupRun(saved)).toBe(true);
      expect(JSON.stringify(Object.keys(saved.state))).not.toMatch(/policy|adamM|adamV/);
      const raw = await db.get(STORES.runs, rec.id);
      expect(raw && 'policy' in (raw as { state: object }).state).toBe(false);
      expect((await db.getAll(STORES.chunks, chunkRange(groupBlobId(rec.id)))).length).toBeGreaterThanOrEqual(1);

      // A second save keeps the first save time and the parent.
      await store.saveGroup({ ...rec, updatedAt: 6000 }, { kind: 'run', id: 'x', name: 'other' });
      const listed = await store.list();
      expect(listed.skipped).toEqual([]);
      expect(listed.runs).toHaveLength(1);
      const r = listed.runs[0];
      expect(r).toMatchObject({ id: rec.id, kind: algo, name: `${algo.toUpperCase()} · test`, createdAt: 5000 });
      expect(r.parent).toEqual({ kind: 'base', name: 'tiny' });
      expect(r.history.map((h) => h.step)).toEqual([0, 1]);
      expect(r.config).toMatchObject({ ...configOf(algo), reward: setupOf(algo).reward });
      expect((await store.latestGroup(algo))?.id).toBe(rec.id);
      for (const other of ['grpo', 'rloo', 'online-dpo'] as const)
        if (other !== algo) expect(await store.latestGroup(other)).toBeUndefined();

      // Loaded back bit for bit, with its setup (reward functions included).
      const loaded = (await store.loadGroup(rec.id))!;
      expect(loaded.run.setup).toEqual(setupOf(algo));
      expect(loaded.state.iteration).toBe(2);
      for (const g of ['policy', 'adamM', 'adamV'] as const)
        for (const [k, v] of Object.entries(state[g])) expect(loaded.state[g][k]).toEqual(v);
      expect(loaded.state.rng).toEqual(state.rng);

      // A fresh trainer resumed from it runs the iteration the original runs next, exactly.
      const b = make();
      b.setState(loaded.state as never);
      const [na, nb] = [await a.iteration(), await b.iteration()];
      expect(nb.rollout.texts).toEqual(na.rollout.texts);
      expect(na.rollout.texts.length).toBeGreaterThan(0);
      expect(nb.metrics.loss).toBeCloseTo(na.metrics.loss, 6);
      expect(b.completedIterations).toBe(3);

      await store.delete(r);
      expect(await store.loadGroup(rec.id)).toBeUndefined();
      expect(await db.getAll(STORES.chunks, chunkRange(groupBlobId(rec.id)))).toEqual([]);
      a.dispose();
      b.dispose();
      base.dispose();
      db.close();
    }, 60_000);
  }

  it('an online DPO state names itself; a GRPO state is refused by an online DPO trainer', async () => {
    const base = tiny();
    const o = new OnlineDpoTrainer({ model: base, reward, tokenizer, prompts: PROMPTS, config: ODPO_CONFIG });
    const g = new GrpoTrainer({ model: base, reward, tokenizer, prompts: PROMPTS, config: CONFIG });
    const os = await o.getState();
    expect(os.algo).toBe('online-dpo');
    const { meta, index, bytes } = packGroupTensors(os, 'b');
    expect(() => unpackGroupTensors(meta, index, bytes.slice(4))).toThrow(/online DPO checkpoint: .* bytes where/);
    const gs = await g.getState();
    expect(() => o.setState(gs as never)).toThrow(/grpo state cannot resume an online DPO run/);
    o.dispose();
    g.dispose();
    base.dispose();
  });

  it('bytes that do not match the index are refused', async () => {
    const base = tiny();
    const t = new GrpoTrainer({ model: base, reward, tokenizer, prompts: PROMPTS, config: CONFIG });
    const { meta, index, bytes } = packGroupTensors(await t.getState(), 'b');
    expect(() => unpackGroupTensors(meta, index, bytes.slice(4))).toThrow(/GRPO checkpoint: .* bytes where/);
    t.dispose();
    base.dispose();
  });

  it('weights gone from the chunks: a clear error, the record stays listed', async () => {
    const base = tiny();
    const t = new RlooTrainer({ model: base, reward, tokenizer, prompts: PROMPTS, config: CONFIG });
    const db = await openDb(freshName());
    const store = new RunStore(db);
    await store.saveGroup(
      { id: 'r', kind: 'rloo', setup: setupOf('rloo'), state: await t.getState(), history: [], updatedAt: 1 },
      { kind: 'base', name: 'tiny' },
    );
    await db.delete(STORES.chunks, chunkRange(groupBlobId('r')));
    await expect(store.loadGroup('r')).rejects.toThrow(/weights of RLOO run "RLOO · test" are gone/);
    expect((await store.list()).runs.map((x) => x.kind)).toEqual(['rloo']);
    t.dispose();
    base.dispose();
    db.close();
  });
});
