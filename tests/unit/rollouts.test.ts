/**
 * Rollout history (issue 20, item 2): the packed log's round trip through IndexedDB (typed
 * arrays come back as typed arrays with the same numbers), the size cap (oldest iterations
 * dropped first, the newest kept, the total under the cap), a failed write that loses nothing
 * else, the v2 → v3 migration, search / sort and the JSONL export.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { openDB } from 'idb';
import { DB_VERSION, MIGRATIONS, openDb, STORES } from '../../src/lib/storage/db';
import { RolloutStore, RolloutWriter } from '../../src/lib/storage/rollouts';
import {
  filterRows,
  packGroupLog,
  packRolloutLog,
  rolloutBytes,
  rolloutJsonl,
  rolloutRows,
  rowTokens,
  ROLLOUT_SETTINGS,
  type PpoRolloutRows,
  type RolloutLog,
} from '../../src/lib/data/rollouts';

let n = 0;
const freshName = () => `rollouts-${n++}`;

/** A PPO-shaped iteration: row b has b + 2 tokens with distinct numbers. */
function rows(iteration: number, B = 3): PpoRolloutRows {
  const per = (b: number, f: (b: number, i: number) => number) => Array.from({ length: b + 2 }, (_, i) => f(b, i));
  return {
    prompts: Array.from({ length: B }, (_, b) => `prompt ${b} <b>&amp;</b>`),
    completions: Array.from({ length: B }, (_, b) => `completion ${iteration}.${b} ✓`),
    finished: Array.from({ length: B }, (_, b) => b % 2 === 0),
    reward: Array.from({ length: B }, (_, b) => iteration + b / 10),
    sources: [
      { name: 'sentiment', scores: Array.from({ length: B }, (_, b) => b * 0.5) },
      { name: 'length', scores: Array.from({ length: B }, (_, b) => -b) },
    ],
    gold: Array.from({ length: B }, (_, b) => 1 - b),
    tokens: Array.from({ length: B }, (_, b) => per(b, (b, i) => i).map((i) => (i === 0 ? ' é' : `t${b}${i}`))),
    logprob: Array.from({ length: B }, (_, b) => per(b, (b, i) => -0.25 * (i + 1) - b)),
    refLogprob: Array.from({ length: B }, (_, b) => per(b, (b, i) => -0.5 * (i + 1))),
    kl: Array.from({ length: B }, (_, b) => per(b, (b, i) => 0.125 * i + b)),
    advantage: Array.from({ length: B }, (_, b) => per(b, (b, i) => i - 1.5)),
    entropy: Array.from({ length: B }, (_, b) => per(b, (b, i) => 2 + i / 4)),
  };
}

const log = (runId: string, iteration: number, createdAt = 1000 + iteration, B = 3) =>
  packRolloutLog(runId, iteration, 'ppo', rows(iteration, B), { createdAt });

describe('packed rollout logs', () => {
  it('packs rows into flat typed arrays and reads each row back', () => {
    const r = rows(4);
    const l = log('run', 4);
    expect(l.tokens!.offsets).toEqual(Uint32Array.from([0, 2, 5, 9]));
    expect(l.tokens!.logprob).toBeInstanceOf(Float32Array);
    expect(l.tokens!.logprob.length).toBe(9);
    for (let b = 0; b < 3; b++) {
      const t = rowTokens(l, b)!;
      expect(t.tokens).toEqual(r.tokens[b]);
      expect(Array.from(t.kl)).toEqual(r.kl[b]);
      expect(Array.from(t.advantage)).toEqual(r.advantage[b]);
      expect(Array.from(t.entropy)).toEqual(r.entropy[b]);
    }
    // KL per row is the sum of its tokens.
    expect(l.klSum[2]).toBeCloseTo(
      r.kl[2].reduce((a, x) => a + x, 0),
      5,
    );
    expect(l.bytes).toBe(rolloutBytes(l));
    expect(l.bytes).toBeGreaterThan(9 * 4 * 5);
    expect(rowTokens(l, 3)).toBeNull();
  });

  it('searches prompts and completions, sorts by reward and by KL', () => {
    const rs = rolloutRows(log('run', 2));
    expect(filterRows(rs, 'COMPLETION 2.1', 'order').map((r) => r.index)).toEqual([1]);
    expect(filterRows(rs, 'nothing like this', 'order')).toEqual([]);
    expect(filterRows(rs, '', 'reward-desc').map((r) => r.index)).toEqual([2, 1, 0]);
    expect(filterRows(rs, '', 'reward-asc').map((r) => r.index)).toEqual([0, 1, 2]);
    expect(filterRows(rs, '', 'kl-desc').map((r) => r.index)).toEqual([2, 1, 0]);
  });

  it('exports one JSON line per completion with its per-token arrays', () => {
    const lines = rolloutJsonl(log('run-x', 7));
    expect(lines).toHaveLength(3);
    const obj = JSON.parse(lines[1]);
    expect(obj).toMatchObject({
      run_id: 'run-x',
      algo: 'ppo',
      iteration: 7,
      index: 1,
      prompt: 'prompt 1 <b>&amp;</b>',
      completion: 'completion 7.1 ✓',
      finished: false,
      rewards: { sentiment: 0.5, length: -1 },
      gold: 0,
      tokens: [' é', 't11', 't12'],
    });
    expect(obj.reward).toBeCloseTo(7.1, 5);
    expect(obj.kl_per_token).toEqual([1, 1.125, 1.25]);
    expect(obj.logprobs).toHaveLength(3);
    expect(obj.ref_logprobs).toHaveLength(3);
    expect(obj.advantages).toEqual([-1.5, -0.5, 0.5]);
    expect(obj.entropy).toEqual([2, 2.25, 2.5]);
  });

  it('group logs keep the group and advantage of each row', () => {
    const g = packGroupLog('g', 1, 'grpo', {
      prompts: ['a', 'a', 'b', 'b'],
      completions: ['1', '2', '3', '4'],
      finished: [true, true, false, true],
      reward: [1, 0, 0.5, 0.5],
      sources: [{ name: 'f', scores: [1, 0, 0.5, 0.5] }],
      groupSize: 2,
      advantages: [0.7, -0.7, 0, 0],
      klPerSequence: null,
    });
    expect(Array.from(g.group!)).toEqual([0, 0, 1, 1]);
    const obj = JSON.parse(rolloutJsonl(g)[1]);
    expect(obj.group).toBe(0);
    expect(obj.advantage).toBeCloseTo(-0.7, 5);
    expect(obj.tokens).toBeUndefined();
  });

  it('the settings table holds the cap (default 50 MB) and refuses a bad one', () => {
    expect(ROLLOUT_SETTINGS.defaults.capMb).toBe(50);
    expect(() => ROLLOUT_SETTINGS.validate({ capMb: 0 })).toThrow(/cap/i);
  });
});

describe('rollouts store', () => {
  it('the v3 migration adds the store to a v2 database and keeps its data', async () => {
    const name = freshName();
    const v2 = await openDB(name, 2, {
      async upgrade(db, old, _new, tx) {
        for (let v = old; v < 2; v++) await MIGRATIONS[v](db as never, tx as never);
      },
    });
    await v2.put(STORES.settings, { id: 'x', value: 1 });
    v2.close();
    const db = await openDb(name);
    expect(DB_VERSION).toBe(3);
    expect([...db.objectStoreNames]).toContain(STORES.rollouts);
    expect(await db.get(STORES.settings, 'x')).toEqual({ id: 'x', value: 1 });
    expect([...db.transaction(STORES.rollouts).store.indexNames]).toEqual(['age']);
    db.close();
  });

  it('round-trips a log: typed arrays come back typed, with the same numbers', async () => {
    const db = await openDb(freshName());
    const store = new RolloutStore(db);
    const l = log('run', 3);
    await store.write([l], 1e9);
    const back = (await new RolloutStore(db).get('run', 3))!;
    expect(back.tokens!.kl).toBeInstanceOf(Float32Array);
    expect(back.tokens!.offsets).toBeInstanceOf(Uint32Array);
    expect(back.finished).toBeInstanceOf(Uint8Array);
    expect(back).toEqual(l);
    expect(rowTokens(back, 1)!.tokens).toEqual(rowTokens(l, 1)!.tokens);
    expect(await store.iterations('run')).toEqual([3]);
    expect(await store.get('run', 4)).toBeUndefined();
    db.close();
  });

  it('drops the oldest iterations first to stay under the cap, across runs, keeping the newest', async () => {
    const db = await openDb(freshName());
    const store = new RolloutStore(db);
    const size = log('a', 1).bytes;
    const cap = Math.floor(size * 3.5); // room for 3
    await store.write([log('a', 1, 10), log('b', 1, 11)], cap);
    await store.write([log('a', 2, 12)], cap);
    expect((await store.usage()).iterations).toBe(3);
    const r = await store.write([log('b', 2, 13)], cap);
    expect(r.dropped).toEqual([['a', 1]]); // the oldest, of another run
    expect(r.totalBytes).toBeLessThanOrEqual(cap);
    const r2 = await store.write([log('a', 3, 14), log('a', 4, 15)], cap);
    expect(r2.dropped).toEqual([
      ['b', 1],
      ['a', 2],
    ]);
    expect(await store.iterations('a')).toEqual([3, 4]);
    expect(await store.iterations('b')).toEqual([2]);
    // A fresh store (new page) reads the sizes from the index and agrees.
    const fresh = await new RolloutStore(db).usage();
    expect(fresh.iterations).toBe(3);
    expect(fresh.bytes).toBe(r2.totalBytes);
    expect(fresh.bytes).toBeLessThanOrEqual(cap);
    // A cap smaller than one iteration still keeps the newest one.
    const tiny = await store.write([log('a', 5, 16)], 1);
    expect(tiny.dropped).toHaveLength(3);
    expect(await store.iterations('a')).toEqual([5]);
    // Lowering the cap trims.
    await store.write([log('a', 6, 17)], cap);
    expect((await store.trim(1)).dropped).toEqual([
      ['a', 5],
      ['a', 6],
    ]);
    expect((await store.usage()).iterations).toBe(0);
    db.close();
  });

  it('rewriting an iteration replaces it (size counted once); deleteRun drops a run or its tail', async () => {
    const db = await openDb(freshName());
    const store = new RolloutStore(db);
    for (let i = 1; i <= 4; i++) await store.write([log('r', i)], 1e9);
    await store.write([log('r', 2, 5000, 5)], 1e9);
    const u = await store.usage();
    expect(u.iterations).toBe(4);
    expect(u.bytes).toBe(log('r', 1).bytes * 3 + log('r', 2, 5000, 5).bytes);
    expect((await store.get('r', 2))!.prompts).toHaveLength(5);
    expect(await store.deleteRun('r', 2)).toBe(2);
    expect(await store.iterations('r')).toEqual([1, 2]);
    expect(await store.deleteRun('r')).toBe(2);
    expect(await store.iterations('r')).toEqual([]);
    expect((await store.usage()).bytes).toBe(0);
    db.close();
  });

  it('survives a failed write: nothing of it is stored, the sizes stay right, the next write works', async () => {
    const db = await openDb(freshName());
    const store = new RolloutStore(db);
    await store.write([log('r', 1)], 1e9);
    const bad = { ...log('r', 2), prompts: [() => 1, 'x', 'y'] } as unknown as RolloutLog; // not cloneable
    await expect(store.write([log('r', 3), bad], 1e9)).rejects.toThrow(/rollout history/);
    expect(await store.iterations('r')).toEqual([1]); // iteration 3 of the same transaction is not half-written
    expect((await store.usage()).iterations).toBe(1);
    await store.write([log('r', 4)], 1e9);
    expect(await store.iterations('r')).toEqual([1, 4]);
    expect((await new RolloutStore(db).usage()).bytes).toBe((await store.usage()).bytes);
    // A malformed log is refused before the database is touched.
    await expect(store.write([{ ...log('r', 5), reward: [1, 2, 3] } as unknown as RolloutLog], 1e9)).rejects.toThrow(
      /rewards missing/,
    );
    db.close();
  });

  it('the writer batches in order, reports the first drop once, and goes on after a failure', async () => {
    const db = await openDb(freshName());
    const store = new RolloutStore(db);
    const size = log('w', 1).bytes;
    const events: string[] = [];
    const w = new RolloutWriter(
      async () => store,
      () => size * 2.5,
      {
        onDropStart: (r) => events.push(`drop ${r.dropped.map((k) => k[1]).join(',')}`),
        onError: (e, logs) => events.push(`error ${logs.map((l) => l.iteration).join(',')}`),
      },
    );
    w.add(log('w', 1));
    w.add(log('w', 2));
    w.add({ ...log('w', 3), prompts: [() => 1] } as unknown as RolloutLog);
    await w.flushed();
    w.add(log('w', 4));
    w.add(log('w', 5));
    await w.flushed();
    expect(await store.iterations('w')).toEqual([4, 5]);
    expect(events[0]).toMatch(/^error .*3/);
    expect(events.filter((e) => e.startsWith('drop'))).toHaveLength(1);
    db.close();
  });
});
