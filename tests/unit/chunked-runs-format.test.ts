/**
 * The saved format of PPO and GRPO/RLOO runs (src/lib/data/saved.ts `packPpoTensors` /
 * `packGroupTensors`, src/lib/data/runs.ts `savePpo` / `saveGroup`), pinned: the tensor index
 * (group order, names, float32 offsets, key order) and the bytes of a small state, written out here
 * as the code of session 7 wrote them; a record and chunks in that form load back into the whole
 * state; and saving today writes that same record and the same bytes, so runs saved before any
 * refactor of the packers still load.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { RunStore } from '../../src/lib/data/runs';
import {
  groupBlobId,
  packGroupTensors,
  packPpoTensors,
  ppoBlobId,
  unpackGroupTensors,
  unpackPpoTensors,
  type GroupRunSave,
  type PpoRunSave,
} from '../../src/lib/data/saved';
import type { GroupState, PpoState } from '../../src/lib/engine/types';
import { chunkRange, joinChunks, openDb, STORES, writeChunks } from '../../src/lib/storage/db';

let dbCounter = 0;
const f32 = (...xs: number[]) => new Float32Array(xs);
const RNG = { s: [1, 2, 3, 4] };

const PPO_META = {
  version: 1,
  config: { lr: 1e-5, klCoef: 0.05 },
  iteration: 3,
  beta: 0.05,
  adamStep: 6,
  rng: RNG,
  promptOrder: [1, 0],
  promptCursor: 1,
  history: [],
};
const ppoState = () =>
  ({
    ...PPO_META,
    policy: { 'wte.weight': f32(1, 2), 'ln_f.bias': f32(3) },
    value: { 'head.weight': f32(4) },
    adamM: { 'policy/wte.weight': f32(0.5, -0.5) },
    adamV: { 'policy/wte.weight': f32(0.25, 0.125) },
  }) as unknown as PpoState;
/** The index session 7's `packPpoTensors` wrote for `ppoState()` (its JSON, key order included). */
const PPO_INDEX_JSON =
  '{"blobId":"ppo-state:p1","byteLength":32,"entries":[' +
  '{"group":"policy","name":"wte.weight","offset":0,"length":2},' +
  '{"group":"policy","name":"ln_f.bias","offset":2,"length":1},' +
  '{"group":"value","name":"head.weight","offset":3,"length":1},' +
  '{"group":"adamM","name":"policy/wte.weight","offset":4,"length":2},' +
  '{"group":"adamV","name":"policy/wte.weight","offset":6,"length":2}]}';
const PPO_FLOATS = [1, 2, 3, 4, 0.5, -0.5, 0.25, 0.125];

const GROUP_META = {
  version: 1,
  algo: 'rloo',
  config: { learningRate: 1e-3 },
  iteration: 2,
  adamStep: 2,
  rng: RNG,
  promptOrder: [0, 1],
  promptCursor: 0,
  history: [],
};
const groupState = () =>
  ({
    ...GROUP_META,
    policy: { a: f32(7), b: f32(8, 9) },
    adamM: { a: f32(-1) },
    adamV: { a: f32(2) },
  }) as unknown as GroupState;
const GROUP_INDEX_JSON =
  '{"blobId":"group-state:g1","byteLength":20,"entries":[' +
  '{"group":"policy","name":"a","offset":0,"length":1},' +
  '{"group":"policy","name":"b","offset":1,"length":2},' +
  '{"group":"adamM","name":"a","offset":3,"length":1},' +
  '{"group":"adamV","name":"a","offset":4,"length":1}]}';
const GROUP_FLOATS = [7, 8, 9, -1, 2];

const bytesOf = (xs: number[]) => new Uint8Array(f32(...xs).buffer);
const PARENT = { kind: 'base' as const, name: 'tiny' };

describe('saved PPO and GRPO/RLOO runs keep their format', () => {
  it('packing: the index and bytes are the ones written before, and unpack back to the state', () => {
    const p = packPpoTensors(ppoState(), ppoBlobId('p1'));
    expect(JSON.stringify(p.index)).toBe(PPO_INDEX_JSON);
    expect(p.bytes).toEqual(bytesOf(PPO_FLOATS));
    expect(p.meta).toEqual(PPO_META);
    expect(unpackPpoTensors(p.meta, p.index, p.bytes)).toEqual(ppoState());

    const g = packGroupTensors(groupState(), groupBlobId('g1'));
    expect(JSON.stringify(g.index)).toBe(GROUP_INDEX_JSON);
    expect(g.bytes).toEqual(bytesOf(GROUP_FLOATS));
    expect(g.meta).toEqual(GROUP_META);
    expect(unpackGroupTensors(g.meta, g.index, g.bytes)).toEqual(groupState());
  });

  it('a PPO and an RLOO run stored in the old form load back whole', async () => {
    const db = await openDb(`chunked-format-${dbCounter++}`);
    const ppoRec = {
      id: 'p1',
      kind: 'ppo',
      setup: { prompts: ['a'], evalPrompts: [], config: PPO_META.config, reward: { kind: 'reward-model' }, name: 'P' },
      history: [{ step: 1, metrics: { 'objective/kl': 0.1 } }],
      evals: [],
      updatedAt: 10,
      state: PPO_META,
      tensors: JSON.parse(PPO_INDEX_JSON),
      createdAt: 5,
      parent: PARENT,
    };
    const groupRec = {
      id: 'g1',
      kind: 'rloo',
      setup: { algo: 'rloo', config: GROUP_META.config, prompts: ['a'], reward: { kind: 'reward-model' }, name: 'G' },
      history: [],
      updatedAt: 11,
      state: GROUP_META,
      tensors: JSON.parse(GROUP_INDEX_JSON),
      createdAt: 11,
      parent: PARENT,
    };
    const tx = db.transaction([STORES.runs, STORES.chunks], 'readwrite');
    await Promise.all([
      tx.objectStore(STORES.runs).put(ppoRec as never),
      tx.objectStore(STORES.runs).put(groupRec as never),
      writeChunks(tx.objectStore(STORES.chunks), 'ppo-state:p1', bytesOf(PPO_FLOATS), 12),
      writeChunks(tx.objectStore(STORES.chunks), 'group-state:g1', bytesOf(GROUP_FLOATS), 12),
    ]);
    await tx.done;

    const store = new RunStore(db);
    const p = (await store.loadPpo('p1'))!;
    expect(p.state).toEqual(ppoState());
    expect(p.run).toEqual(ppoRec);
    const g = (await store.loadGroup('g1'))!;
    expect(g.state).toEqual(groupState());
    expect(g.run).toEqual(groupRec);
    db.close();
  });

  it('saving today writes the same record and bytes', async () => {
    const db = await openDb(`chunked-format-${dbCounter++}`);
    const store = new RunStore(db);
    const ppo: PpoRunSave = {
      id: 'p1',
      kind: 'ppo',
      setup: { prompts: ['a'], evalPrompts: [], config: PPO_META.config, reward: { kind: 'reward-model' }, name: 'P' },
      history: [],
      evals: [],
      updatedAt: 10,
      state: ppoState(),
    } as unknown as PpoRunSave;
    await store.savePpo(ppo, PARENT);
    const { state: _p, ...ppoRest } = ppo;
    expect(await db.get(STORES.runs, 'p1')).toEqual({
      ...ppoRest,
      state: PPO_META,
      tensors: JSON.parse(PPO_INDEX_JSON),
      createdAt: 10,
      parent: PARENT,
    });
    const group: GroupRunSave = {
      id: 'g1',
      kind: 'rloo',
      setup: { algo: 'rloo', config: GROUP_META.config, prompts: ['a'], reward: { kind: 'reward-model' }, name: 'G' },
      history: [],
      updatedAt: 11,
      state: groupState(),
    } as unknown as GroupRunSave;
    await store.saveGroup(group, PARENT);
    const { state: _g, ...groupRest } = group;
    expect(await db.get(STORES.runs, 'g1')).toEqual({
      ...groupRest,
      state: GROUP_META,
      tensors: JSON.parse(GROUP_INDEX_JSON),
      createdAt: 11,
      parent: PARENT,
    });
    for (const [id, floats] of [
      ['ppo-state:p1', PPO_FLOATS],
      ['group-state:g1', GROUP_FLOATS],
    ] as const)
      expect(joinChunks(id, await db.getAll(STORES.chunks, chunkRange(id)))).toEqual(bytesOf([...floats]));
    db.close();
  });
});
