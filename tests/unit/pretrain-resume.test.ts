/**
 * Pretraining checkpoints, tokenizer and speed probe in the engine (in-thread, TF.js wasm), and
 * their storage (fake-indexeddb): a run paused, saved, dropped and restored from its checkpoint
 * goes on exactly as the uninterrupted run does (same losses step for step: same weights, Adam
 * moments and batch order); a BPE trained on the text in a cancellable job is the vocabulary of a
 * run from scratch; the seconds per step of a preset are measured once and cached; a saved run's
 * record, model files, moments and token streams round-trip through IndexedDB and are deleted with
 * it; a run renamed is loaded under its new name.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { engineWithBundledModel } from './bundled-engine';
import { InvalidInputError, JobCancelledError } from '../../src/lib/engine/errors';
import type { PretrainEvent, PretrainSnapshot, TokenizerProgress } from '../../src/lib/engine/types';
import { splitTrainVal, textDocuments } from '../../src/lib/pretrain/text';
import { packIds, packMoments, unpackIds, unpackMoments } from '../../src/lib/pretrain/checkpoint';
import { openDb, STORES } from '../../src/lib/storage/db';
import { CheckpointMissingError, RunStore, type RunRecord } from '../../src/lib/data/runs';
import { pretrainDataBlobId, pretrainOptBlobId } from '../../src/lib/data/saved';
import { trainBpe, trainBpeAsync } from '../../src/lib/model/tokenizer';

const text = readFileSync('tests/fixtures/tiny-corpus/train.txt', 'utf8').split('\n').join('\n\n');
const { train, val } = splitTrainVal(textDocuments(text), 3);
const config = {
  preset: 'micro' as const,
  steps: 24,
  batchSize: 4,
  warmup: 4,
  lr: 1e-2,
  evalEvery: 8,
  sampleEvery: 100,
  evalWindows: 4,
};

const losses = (events: PretrainEvent[]) =>
  new Map(events.flatMap((e) => (e.kind === 'step' ? [[e.step, e.loss] as const] : [])));

describe('pretraining checkpoints', () => {
  it('a run restored from its checkpoint goes on exactly as the uninterrupted run', async () => {
    const engine = await engineWithBundledModel('wasm');
    await engine.pretrainPrepare({ train, val, init: 'scratch', config });
    const whole: PretrainEvent[] = [];
    await engine.pretrainRun('a', (e) => whole.push(e));
    const wholeData = await engine.pretrainData();
    // The run emitted a checkpoint mid-job (at its first validation step after step 0).
    const mid = whole.find((e): e is Extract<PretrainEvent, { kind: 'checkpoint' }> => e.kind === 'checkpoint');
    expect(mid?.snapshot.status.step).toBe(8);
    expect(mid?.snapshot.opt.step).toBe(8);

    // Same run, paused after step 9, saved, dropped, restored through the stored byte forms.
    await engine.pretrainPrepare({ train, val, init: 'scratch', config, prompts: ['The'] });
    const first: PretrainEvent[] = [];
    await expect(
      engine.pretrainRun('b', (e) => {
        first.push(e);
        if (e.kind === 'step' && e.step === 9) void engine.cancel('b');
      }),
    ).rejects.toBeInstanceOf(JobCancelledError);
    const snap = await engine.pretrainSnapshot();
    const data = await engine.pretrainData();
    const pausedAt = snap.status.step;
    expect(pausedAt).toBeGreaterThanOrEqual(9);
    expect(pausedAt).toBeLessThan(24);
    expect(snap.opt.step).toBe(pausedAt);
    const { index, bytes } = packMoments(snap.opt.m, snap.opt.v);
    const ids = packIds(data.trainIds, data.valIds);
    await engine.pretrainDispose();
    expect(await engine.pretrainStatus()).toBeNull();

    const { m, v } = unpackMoments(index, bytes.slice());
    const back = unpackIds(ids.slice(), data.trainIds.length);
    const restored: PretrainSnapshot = { ...structuredClone(snap), opt: { ...snap.opt, m, v } };
    const status = await engine.pretrainRestore(restored, { ...back, prompts: data.prompts });
    expect(status.step).toBe(pausedAt);
    const rest: PretrainEvent[] = [];
    const done = await engine.pretrainRun('c', (e) => rest.push(e));
    expect(done.step).toBe(24);

    const a = losses(whole);
    const b = new Map([...losses(first), ...losses(rest)]);
    expect([...losses(rest).keys()][0]).toBe(pausedAt + 1); // goes on from the checkpoint's step
    for (let s = 1; s <= 24; s++) expect(b.get(s)!, `step ${s}`).toBeCloseTo(a.get(s)!, 5);
    const lastVal = (ev: PretrainEvent[]) => ev.filter((e) => e.kind === 'eval').at(-1) as { valLoss: number };
    expect(lastVal(rest).valLoss).toBeCloseTo(lastVal(whole).valLoss, 5);

    // The checkpoint taken during the job resumes just as well.
    expect((await engine.pretrainRestore(mid!.snapshot, wholeData)).step).toBe(8);
    const fromMid: PretrainEvent[] = [];
    await engine.pretrainRun('d', (e) => fromMid.push(e));
    for (const [s, loss] of losses(fromMid)) expect(loss, `step ${s}`).toBeCloseTo(a.get(s)!, 5);
    expect([...losses(fromMid).keys()]).toEqual(Array.from({ length: 16 }, (_, i) => i + 9));
  }, 180_000);

  it('refuses a checkpoint whose optimiser state does not fit, keeping the run it had', async () => {
    const engine = await engineWithBundledModel('wasm');
    await engine.pretrainPrepare({ train, val, init: 'scratch', config: { ...config, steps: 3 } });
    await engine.pretrainRun('x');
    const snap = await engine.pretrainSnapshot();
    const data = await engine.pretrainData();
    const name = Object.keys(snap.opt.m)[0];
    const broken = { ...snap, opt: { ...snap.opt, m: { ...snap.opt.m, [name]: new Float32Array(3) } } };
    await expect(engine.pretrainRestore(broken, data)).rejects.toThrow(/optimiser state of .* does not fit/);
    await expect(engine.pretrainRestore({ ...snap, opt: { ...snap.opt, step: 1 } }, data)).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    expect((await engine.pretrainStatus())!.step).toBe(3);
  }, 120_000);

  it('trains a BPE on the text (progress, newest merges, cancel) and pretrains with it', async () => {
    const engine = await engineWithBundledModel('wasm');
    const progress: TokenizerProgress[] = [];
    const sum = await engine.pretrainTokenizer('t', train, 320, (p) => progress.push(p));
    expect(sum.vocabSize).toBeLessThanOrEqual(320);
    expect(sum.vocabSize).toBeGreaterThan(300);
    expect(progress.length).toBeGreaterThan(2);
    expect(progress.map((p) => p.merges)).toEqual([...progress.map((p) => p.merges)].sort((x, y) => x - y));
    expect(progress.at(-1)!.newest.length).toBeGreaterThan(0);
    expect(sum.newest.at(-1)).toBe(progress.at(-1)!.newest.at(-1));

    const s = await engine.pretrainPrepare({ train, val, init: 'scratch', config, tokenizer: 'trained' });
    expect(s.modelConfig.vocabSize).toBe(sum.vocabSize);
    expect(s.tokenizer).toEqual({ kind: 'trained', vocabSize: sum.vocabSize });
    // Fewer, longer tokens than the 1,281-token bundled tokenizer would not be right; more bytes per token than raw bytes is.
    expect(s.valBytes / s.valTokens).toBeGreaterThan(1.5);
    const loaded = await engine.pretrainPrepare({ train, val, init: 'scratch', config });
    expect(loaded.tokenizer).toEqual({ kind: 'loaded', vocabSize: 1281 });

    // Cancelled mid-way: the job stops, the tokenizer trained before stays.
    await expect(
      engine.pretrainTokenizer('t2', train, 4096, (p) => {
        if (p.merges >= 32) void engine.cancel('t2');
      }),
    ).rejects.toBeInstanceOf(JobCancelledError);
    expect(
      (await engine.pretrainPrepare({ train, val, init: 'scratch', config, tokenizer: 'trained' })).modelConfig
        .vocabSize,
    ).toBe(sum.vocabSize);

    await expect(engine.pretrainTokenizer('t3', ['  '], 512)).rejects.toThrow(/no text to train a tokenizer/);
    await expect(engine.pretrainTokenizer('t4', train, 100)).rejects.toThrow(/vocabulary size must be/);
    await engine.pretrainClearTokenizer();
    await expect(engine.pretrainPrepare({ train, val, init: 'scratch', config, tokenizer: 'trained' })).rejects.toThrow(
      /Train the tokenizer on this text first/,
    );
  }, 180_000);

  it('the yielding BPE trainer learns the same merges as trainBpe, pausing between reports', async () => {
    let pauses = 0;
    const a = await trainBpeAsync(train, 120, {
      progressEvery: 16,
      pause: async () => {
        pauses++;
      },
    });
    expect(a.toJSON()).toEqual(trainBpe(train, 120).toJSON());
    expect(pauses).toBe(Math.ceil(120 / 16));
  });

  it('measures seconds per step of a preset once per backend and caches it', async () => {
    const engine = await engineWithBundledModel('wasm');
    const a = await engine.pretrainTimeStep('micro', 4, 1281);
    expect(a).toBeGreaterThan(0);
    expect(a).toBeLessThan(30);
    expect(await engine.pretrainTimeStep('micro', 4, 1281)).toBe(a); // cached: not timed again
    expect(await engine.pretrainTimeStep('micro', 8, 1281)).not.toBe(a); // another batch is timed anew
    await expect(engine.pretrainTimeStep('huge' as never, 4, 1281)).rejects.toThrow(/Unknown model size/);
  }, 120_000);
});

describe('pretraining runs in IndexedDB', () => {
  const rec = (id: string, status: RunRecord['status'] = 'paused'): RunRecord => ({
    version: 1,
    id,
    kind: 'pretrain',
    name: `pretrained micro ${id}`,
    createdAt: 1,
    updatedAt: 2,
    config: { preset: 'micro', pretrain: { checkpoint: { step: 5 } } },
    parent: { kind: 'base', name: 'from scratch' },
    checkpointId: `ckpt-${id}`,
    history: [{ step: 5, metrics: { 'train/loss': 3.2, 'eval/loss': 3.4 } }],
    evals: [],
    status,
  });
  const files = (n: number) => ({
    name: 'pretrained micro',
    config: '{"n_embd":32}',
    tokenizer: '{}',
    weights: new Float32Array([n, n + 1, n + 2]).buffer,
  });

  it('saves, lists, loads and deletes a run with its moments and token streams', async () => {
    const db = await openDb(`pretrain-runs-${Date.now()}`);
    const store = new RunStore(db);
    const moments = packMoments({ w: new Float32Array([1, 2]) }, { w: new Float32Array([3, 4]) });
    const ids = packIds(new Int32Array([5, 6, 7]), new Int32Array([8]));
    await store.savePretrain(rec('r1'), files(1), moments.bytes, ids);
    // A later checkpoint rewrites the model and the moments; the token streams stay from the first save.
    const later = packMoments({ w: new Float32Array([9, 9]) }, { w: new Float32Array([8, 8]) });
    await store.savePretrain({ ...rec('r1'), updatedAt: 3 }, files(10), later.bytes);

    const { runs, skipped } = await store.list();
    expect(skipped).toEqual([]);
    expect(runs.map((r) => [r.id, r.kind, r.status])).toEqual([['r1', 'pretrain', 'paused']]);
    const back = await store.loadPretrain(runs[0]);
    expect([...new Float32Array(back.files.weights)]).toEqual([10, 11, 12]);
    expect(unpackMoments(later.index, back.optBytes)).toEqual({
      m: { w: new Float32Array([9, 9]) },
      v: { w: new Float32Array([8, 8]) },
    });
    const streams = unpackIds(back.dataBytes, 3);
    expect([...streams.trainIds]).toEqual([5, 6, 7]);
    expect([...streams.valIds]).toEqual([8]);

    await store.delete(runs[0]);
    expect((await store.list()).runs).toEqual([]);
    for (const blob of ['ckpt-r1', pretrainOptBlobId('r1'), pretrainDataBlobId('r1')])
      expect(await db.count(STORES.chunks, IDBKeyRange.bound([blob, -1], [blob, Infinity]))).toBe(0);
    expect(await db.count(STORES.checkpoints)).toBe(0);
  });

  it('renames a run and the model its weights load as; refuses an empty name', async () => {
    const db = await openDb(`pretrain-runs-c-${Date.now()}`);
    const store = new RunStore(db);
    const moments = packMoments({ w: new Float32Array([1]) }, { w: new Float32Array([2]) });
    await store.savePretrain(rec('r4'), files(1), moments.bytes, packIds(new Int32Array([1]), new Int32Array([2])));
    await store.rename(rec('r4'), '  Bierce model  ');
    const { runs } = await store.list();
    expect(runs[0].name).toBe('Bierce model');
    expect((await store.loadCheckpoint(runs[0])).name).toBe('Bierce model');
    await expect(store.rename(rec('r4'), '   ')).rejects.toThrow(/needs a name/);
    await expect(store.rename(rec('gone'), 'x')).rejects.toThrow(/no longer exists/);
    expect((await store.list()).runs[0].name).toBe('Bierce model');
  });

  it('a run without its optimiser state cannot be resumed, and says so; its weights still load', async () => {
    const db = await openDb(`pretrain-runs-b-${Date.now()}`);
    const store = new RunStore(db);
    const moments = packMoments({ w: new Float32Array([1]) }, { w: new Float32Array([2]) });
    await store.savePretrain(rec('r2'), files(1), moments.bytes); // no token streams were ever saved
    await expect(store.loadPretrain(rec('r2'))).rejects.toBeInstanceOf(CheckpointMissingError);
    expect([...new Float32Array((await store.loadCheckpoint(rec('r2'))).weights)]).toEqual([1, 2, 3]);
    await expect(store.savePretrain({ ...rec('r3'), kind: 'sft' }, files(1), moments.bytes)).rejects.toThrow(
      /not a pretraining run/,
    );
  });
});
