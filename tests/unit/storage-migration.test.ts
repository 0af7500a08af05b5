/**
 * A database written by version 1 of the app (tests/fixtures/db-v1.ts: its schema, its PPO
 * checkpoint with every tensor inline in the run record, a reward model, preferences, an SFT run)
 * opened by the current code: everything reads back, the PPO tensors move to chunks, and the PPO
 * run resumes exactly where it stopped (same next iteration as a run that never stopped).
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { useBackend } from './tf-backends';
import { GPT } from '../../src/lib/model/gpt';
import { PpoTrainer, type PpoState, type RewardSource } from '../../src/lib/rlhf/ppo';
import { RewardModel } from '../../src/lib/rlhf/reward-model';
import { makeRecord, type NewRecordInput } from '../../src/lib/data/records';
import { RunStore, validateRunRecord, type RunRecord } from '../../src/lib/data/runs';
import { isSavedPpoRun, ppoBlobId, type SavedRewardModel } from '../../src/lib/data/saved';
import type { PpoSetup, RewardModelSummary } from '../../src/lib/engine/types';
import {
  chunkRange,
  DB_VERSION,
  getSetting,
  openDb,
  openStores,
  STORES,
  inlinePpoToChunked,
} from '../../src/lib/storage/db';
import { openV1, saveRewardModelV1, savePpoRunV1, saveTunedRunV1 } from '../fixtures/db-v1';

let n = 0;
const freshName = () => `migration-${n++}`;

const V = 16;
const EOT = 15;
const tokenizer = {
  eotId: EOT,
  encode: (text: string) => [...text].map((ch) => ch.charCodeAt(0) - 97),
  decode: (ids: number[]) => ids.map((i) => (i === EOT ? '|' : String.fromCharCode(97 + i))).join(''),
};
const PROMPTS = ['ab', 'cfe', 'g', 'hijk', 'lm', 'no', 'bca', 'kk'];
const countD: RewardSource = { score: async (b) => b.map((x) => x.responseIds.filter((id) => id === 3).length) };
const tiny = () =>
  new GPT({ vocabSize: V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, layerNormEps: 1e-5 }, { seed: 1 });
const trainer = (model: GPT) =>
  new PpoTrainer({
    model,
    reward: countD,
    tokenizer,
    prompts: PROMPTS,
    config: { batchSize: 8, maxNewTokens: 6, miniBatches: 2, ppoEpochs: 2, lr: 1e-2, seed: 3 },
  });

const input = (i: number): NewRecordInput => ({
  prompt: `Prompt ${i}`,
  responses: [
    { text: `first ${i}`, tokenIds: [1, 2] },
    { text: `second ${i}`, tokenIds: [3] },
  ],
  modelId: 'tiny',
  checkpointId: 'base',
  sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 16 },
  seed: i,
  annotator: { name: 'ana', kind: 'human' },
});

async function weights(t: PpoTrainer): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const v of [...t.policy.params.values(), ...t.valueModel.namedVariables().values()])
    out.push(new Float32Array((await v.data()) as Float32Array));
  return out;
}

/** The keys a PPO state keeps in its record (all but the tensors). */
const loadedMeta = ({ policy: _p, value: _v, adamM: _m, adamV: _a, ...meta }: PpoState) => meta;

const noTime = (h: object[]) => h.map((m) => ({ ...m, 'time/iteration_s': 0 }));

describe('a version-1 database opened by the current code', () => {
  it('keeps every record, moves PPO tensors to chunks, and the PPO run resumes exactly', async () => {
    await useBackend('cpu');
    const base = tiny();

    // --- a PPO run: two iterations saved, and the same run going on without a stop (the reference)
    const a = trainer(base);
    for (let i = 0; i < 2; i++) await a.iteration();
    const state: PpoState = structuredClone(await a.getState());
    await a.iteration();

    // --- what version 1 wrote
    const name = freshName();
    const old = await openV1(name);
    const prefs = [0, 1, 2].map((i) => makeRecord(input(i), 'pairwise', i === 2 ? 'tie' : 'A', 1000 + i));
    for (const p of prefs) await old.add('preferences', p);
    const rm = RewardModel.fromPolicy(base, { mode: 'head', seed: 2 });
    const summary: RewardModelSummary = {
      id: 'rm1',
      name: 'RM 1',
      createdAt: 5,
      mode: 'head',
      pairs: 3,
      trainPairs: 2,
      valPairs: 1,
      bestEpoch: 1,
      accuracy: 1,
      evalAccuracy: 1,
      normalisation: { gain: 1, bias: 0 },
      seconds: 1,
      recordIds: prefs.map((p) => p.id),
      valPrompts: ['Prompt 2'],
    };
    const savedRm: SavedRewardModel = {
      id: 'rm1',
      summary,
      state: await rm.getState(),
      history: [{ step: 1, metrics: { 'eval/accuracy': 1 } }],
    };
    rm.dispose();
    await saveRewardModelV1(old, savedRm);
    const setup: PpoSetup = {
      prompts: PROMPTS,
      evalPrompts: PROMPTS.slice(0, 2),
      config: state.config,
      reward: { kind: 'reward-model' },
      name: 'PPO · tiny',
    };
    const history = [{ step: 1, metrics: { 'objective/kl': 0 } }];
    const evals = [{ iteration: 2, samples: [{ prompt: 'ab', text: 'dd', score: 2, gold: null }] }];
    await savePpoRunV1(old, { id: 'ppo1', kind: 'ppo', setup, state, history, evals, updatedAt: 10 });
    const weightBytes = new Uint8Array([...Array(40).keys()]).buffer;
    const sft: RunRecord = validateRunRecord({
      version: 1,
      id: 'sft1',
      kind: 'sft',
      name: 'SFT 1',
      createdAt: 7,
      updatedAt: 8,
      config: { epochs: 1 },
      parent: { kind: 'base', name: 'tiny' },
      checkpointId: 'ckpt-sft1',
      history: [],
      evals: [],
      status: 'finished',
    });
    await saveTunedRunV1(old, sft as RunRecord & { checkpointId: string }, {
      name: 'tiny-sft',
      config: '{}',
      tokenizer: '{}',
      weights: weightBytes,
    });
    expect(old.version).toBe(1);
    old.close();

    // --- the current code
    expect(DB_VERSION).toBeGreaterThan(1);
    const stores = await openStores(name);
    const db = stores.db;
    expect(db.version).toBe(DB_VERSION);
    expect((await stores.preferences.getAll()).sort((x, y) => x.createdAt - y.createdAt)).toEqual(prefs);
    expect((await stores.preferences.list({ label: 'tie' })).records.map((r) => r.id)).toEqual([prefs[2].id]);
    const rms = await db.getAll(STORES.rewardModels);
    expect(rms).toEqual([savedRm]);
    expect(await getSetting<string>(db, 'activeRewardModel')).toBe('rm1');
    const back = RewardModel.fromState(rms[0].state); // the saved weights still make a model
    back.dispose();

    const runs = new RunStore(db);
    const listed = await runs.list();
    expect(listed.skipped).toEqual([]);
    expect(listed.runs.map((r) => `${r.kind}:${r.id}`).sort()).toEqual(['ppo:ppo1', 'reward:rm1', 'sft:sft1']);
    const files = await runs.loadCheckpoint(sft);
    expect(new Uint8Array(files.weights)).toEqual(new Uint8Array(weightBytes));

    // The PPO record no longer holds tensors; they are chunks of their own.
    const rec = await db.get(STORES.runs, 'ppo1');
    if (!isSavedPpoRun(rec)) throw new Error('the PPO run was not migrated');
    expect(Object.keys(rec.state).sort()).toEqual(Object.keys(loadedMeta(state)).sort());
    expect(await db.count(STORES.chunks, chunkRange(ppoBlobId('ppo1')))).toBeGreaterThanOrEqual(2); // manifest + data
    expect((await runs.latestPpo())?.id).toBe('ppo1');
    const loaded = (await runs.loadPpo('ppo1'))!;
    expect(loaded.state).toEqual(state);
    expect(loaded.run.history).toEqual(history);
    expect(loaded.run.evals).toEqual(evals);
    expect(loaded.run.createdAt).toBe(10);
    expect(loaded.run.parent).toEqual({ kind: 'base', name: 'tiny' });

    // Resume: one more iteration from the migrated checkpoint = the run that never stopped.
    const c = trainer(base);
    c.setState(loaded.state);
    await c.iteration();
    expect(noTime(c.history)).toEqual(noTime(a.history));
    const [wa, wc] = [await weights(a), await weights(c)];
    wa.forEach((w, i) => expect(wc[i]).toEqual(w));

    // Saving again keeps the first save time and the parent; deleting removes the tensors too.
    const next = await c.getState();
    await runs.savePpo({ ...loaded.run, state: next, updatedAt: 20 }, { kind: 'base', name: 'other' });
    const again = (await runs.loadPpo('ppo1'))!;
    expect(again.state.iteration).toBe(3);
    expect(again.state.policy).toEqual(next.policy);
    expect(again.run.createdAt).toBe(10);
    expect(again.run.parent).toEqual({ kind: 'base', name: 'tiny' });
    await runs.delete({ id: 'ppo1', kind: 'ppo', checkpointId: 'ppo1' });
    expect(await runs.loadPpo('ppo1')).toBeUndefined();
    expect(await db.count(STORES.chunks, chunkRange(ppoBlobId('ppo1')))).toBe(0);

    for (const t of [a, c]) t.dispose();
    base.dispose();
    db.close();
  }, 60_000);

  it('a fresh database is at the current version and a reopened one is not migrated twice', async () => {
    const name = freshName();
    const db = await openDb(name);
    expect(db.version).toBe(DB_VERSION);
    db.close();
    const again = await openDb(name);
    expect(again.version).toBe(DB_VERSION);
    again.close();
  });

  it('only version-1 PPO records with inline tensors are converted', () => {
    expect(inlinePpoToChunked({ id: 'x', kind: 'sft' })).toBeNull();
    expect(inlinePpoToChunked({ id: 'x', kind: 'ppo', state: { iteration: 2 } })).toBeNull(); // nothing to move
    const moved = inlinePpoToChunked({
      id: 'x',
      kind: 'ppo',
      state: {
        iteration: 1,
        policy: { w: new Float32Array([1, 2]) },
        value: { v: new Float32Array([3]) },
        adamM: { 'policy/w': new Float32Array([4, 5]) },
        adamV: { 'policy/w': new Float32Array([6, 7]) },
      },
    })!;
    expect(moved.run.state).toEqual({ iteration: 1 });
    expect(Array.from(new Float32Array(moved.bytes.buffer))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(moved.run.tensors.entries.map((e) => `${e.group}/${e.name}@${e.offset}+${e.length}`)).toEqual([
      'policy/w@0+2',
      'value/v@2+1',
      'adamM/policy/w@3+2',
      'adamV/policy/w@5+2',
    ]);
  });
});
