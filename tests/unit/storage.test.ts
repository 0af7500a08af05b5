import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import {
  DB_VERSION,
  getBlobChunked,
  getSetting,
  openDb,
  openStores,
  putBlobChunked,
  putSetting,
  QuotaExceededStorageError,
  RecordConflictError,
  requestPersistentStorage,
  STORES,
  StorageError,
  toStorageError,
  deleteBlobChunked,
} from '../../src/lib/storage/db';
import {
  makeRecord,
  SCHEMA_VERSION,
  type NewRecordInput,
  type PairwiseLabel,
  type PreferenceRecord,
} from '../../src/lib/data/records';

let dbCounter = 0;
const freshName = () => `test-db-${dbCounter++}`;

const input = (i: number, annotator = 'ana', prompt = `Prompt ${i}`): NewRecordInput => ({
  prompt,
  responses: [
    { text: `first answer ${i}`, tokenIds: [1, 2] },
    { text: `second answer ${i}`, tokenIds: [3] },
  ],
  modelId: 'tiny',
  checkpointId: 'base',
  sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 16 },
  seed: i,
  annotator: { name: annotator, kind: 'human' },
});
const LABELS: PairwiseLabel[] = ['A', 'B', 'tie', 'both-bad', 'skip'];
const pairwise = (i: number, annotator = 'ana') =>
  makeRecord(input(i, annotator), 'pairwise', LABELS[i % LABELS.length], 1_000_000 + i);

describe('schema', () => {
  it('v1 creates every store, with the preference indexes', async () => {
    const db = await openDb(freshName());
    expect(db.version).toBe(DB_VERSION);
    expect([...db.objectStoreNames].sort()).toEqual(Object.values(STORES).sort());
    const idx = [...db.transaction('preferences').store.indexNames];
    for (const name of ['annotator', 'mode', 'label', 'createdAt', 'prompt']) expect(idx).toContain(name);
    db.close();
  });

  it('settings and persistence helper (no-op in Node)', async () => {
    const db = await openDb(freshName());
    await putSetting(db, 'theme', { dark: true });
    expect(await getSetting(db, 'theme')).toEqual({ dark: true });
    expect(await getSetting(db, 'missing')).toBeUndefined();
    expect(await requestPersistentStorage()).toBe(false);
    db.close();
  });
});

describe('PreferenceStore', () => {
  it('add, get, update, delete and restore', async () => {
    const { db, preferences } = await openStores(freshName());
    const r = pairwise(1);
    await preferences.add(r);
    expect(await preferences.get(r.id)).toEqual(r);
    await expect(preferences.add(r)).rejects.toThrow(RecordConflictError);

    const changed = await preferences.update({ ...r, label: 'B' });
    expect(changed.updatedAt).toBeGreaterThanOrEqual(r.updatedAt);
    expect((await preferences.get(r.id))?.label).toBe('B');
    await expect(preferences.update(pairwise(99))).rejects.toThrow(/no longer exists/);

    const deleted = await preferences.delete(r.id);
    expect(deleted).toEqual(changed);
    expect(await preferences.get(r.id)).toBeUndefined();
    expect(await preferences.delete(r.id)).toBeUndefined();
    await preferences.restore(deleted!);
    expect(await preferences.get(r.id)).toEqual(changed);
    expect(await preferences.count()).toBe(1);
    db.close();
  });

  it('refuses an invalid record before writing', async () => {
    const { db, preferences } = await openStores(freshName());
    const bad = { ...pairwise(1), label: 'maybe' } as unknown as PreferenceRecord;
    await expect(preferences.add(bad)).rejects.toThrow(/label/);
    expect(await preferences.count()).toBe(0);
    db.close();
  });

  it('addMany is all or nothing', async () => {
    const { db, preferences } = await openStores(freshName());
    const existing = pairwise(0);
    await preferences.add(existing);
    // invalid record in the batch: refused before any write
    const batch = [pairwise(1), pairwise(2), { ...pairwise(3), prompt: '' }] as PreferenceRecord[];
    await expect(preferences.addMany(batch)).rejects.toThrow(/item 3 is invalid/);
    expect(await preferences.count()).toBe(1);
    // a conflict in the middle of the transaction rolls back the records before it
    await expect(preferences.addMany([pairwise(4), pairwise(5), existing, pairwise(6)])).rejects.toThrow(StorageError);
    expect(await preferences.count()).toBe(1);
    // duplicate ids inside the batch
    const dup = pairwise(7);
    await expect(preferences.addMany([dup, dup])).rejects.toThrow(/appears twice/);
    expect(await preferences.count()).toBe(1);
    // and a good batch goes in
    await preferences.addMany([pairwise(8), pairwise(9)]);
    expect(await preferences.count()).toBe(3);
    db.close();
  });

  it('lists newest first, filters, searches, paginates, counts by label', async () => {
    const { db, preferences } = await openStores(freshName());
    const recs: PreferenceRecord[] = [];
    for (let i = 0; i < 30; i++) recs.push(pairwise(i, i % 3 === 0 ? 'bob' : 'ana'));
    const flag = { offTopic: false, repetitive: false, offensive: false };
    const rating = makeRecord(
      { ...input(100, 'bob'), responses: [{ text: 'a <b>bold</b> claim', tokenIds: [] }] },
      'rating',
      { ratings: [4], flags: [flag] },
      2_000_000,
    );
    recs.push(rating);
    await preferences.addMany(recs);

    const page1 = await preferences.list({ limit: 10 });
    expect(page1.total).toBe(31);
    expect(page1.records.map((r) => r.id)).toEqual([
      rating.id,
      ...recs
        .slice(21, 30)
        .reverse()
        .map((r) => r.id),
    ]);
    const page3 = await preferences.list({ offset: 20, limit: 10 });
    expect(page3.records).toHaveLength(10);
    expect(page3.records[9].id).toBe(recs[1].id);
    expect((await preferences.list({ offset: 30, limit: 10 })).records.map((r) => r.id)).toEqual([recs[0].id]);
    expect((await preferences.list({ offset: 40 })).records).toEqual([]);

    const bob = await preferences.list({ annotator: 'bob', limit: 100 });
    expect(bob.total).toBe(11);
    expect(bob.records.every((r) => r.annotator.name === 'bob')).toBe(true);

    const ties = await preferences.list({ label: 'tie', limit: 100 });
    expect(ties.total).toBe(6);
    expect(ties.records.every((r) => r.mode === 'pairwise' && r.label === 'tie')).toBe(true);

    const bobTies = await preferences.list({ annotator: 'bob', label: 'tie', limit: 1 });
    // i ∈ {2,7,12,17,22,27} with i % 3 === 0 → 12, 27
    expect(bobTies.total).toBe(2);
    expect(bobTies.records.map((r) => r.seed)).toEqual([27]);

    expect((await preferences.list({ mode: 'rating' })).records.map((r) => r.id)).toEqual([rating.id]);
    const search = await preferences.list({ search: 'ANSWER 1' }); // 1, 10..19
    expect(search.total).toBe(11);
    expect((await preferences.list({ search: '<b>bold' })).total).toBe(1);
    expect((await preferences.list({ search: 'prompt 2', annotator: 'ana' })).total).toBe(8); // 2, 20–29 minus bob's 21, 24, 27

    expect(await preferences.countsByLabel()).toEqual({ A: 6, B: 6, tie: 6, 'both-bad': 6, skip: 6 });
    expect(await preferences.countsByMode()).toEqual({ pairwise: 30, ranking: 0, rating: 1, edit: 0 });
    expect(await preferences.annotatorNames()).toEqual(['ana', 'bob']);
    db.close();
  });

  it('handles 10,000 records: bulk add, a deep page, counts', async () => {
    const { db, preferences } = await openStores(freshName());
    const recs = Array.from({ length: 10_000 }, (_, i) => pairwise(i, i % 2 ? 'ana' : 'bob'));
    await preferences.addMany(recs);
    expect(await preferences.count()).toBe(10_000);
    const page = await preferences.list({ offset: 9_950, limit: 100 });
    expect(page.total).toBe(10_000);
    expect(page.records.map((r) => r.seed)).toEqual(Array.from({ length: 50 }, (_, i) => 49 - i));
    const filtered = await preferences.list({ annotator: 'ana', offset: 100, limit: 25 });
    expect(filtered.total).toBe(5_000);
    expect(filtered.records[0].seed).toBe(9_999 - 200);
    expect((await preferences.list({ search: 'answer 999', limit: 5 })).total).toBe(11); // 999, 9990–9999
    expect((await preferences.countsByLabel()).A).toBe(2_000);
    db.close();
  }, 120_000);

  it('records survive closing and reopening the database', async () => {
    const name = freshName();
    const s1 = await openStores(name);
    s1.db.close();
    const s2 = await openStores(name);
    const rec = makeRecord(
      { ...input(1), responses: [0, 1, 2].map((k) => ({ text: `t${k}`, tokenIds: [k] })) },
      'ranking',
      { order: [2, 0, 1] },
      5,
    );
    await s2.preferences.add(rec);
    s2.db.close();
    const s3 = await openStores(name);
    expect(await s3.preferences.get(rec.id)).toEqual(rec);
    expect(rec.schemaVersion).toBe(SCHEMA_VERSION);
    s3.db.close();
  });
});

describe('DemonstrationStore', () => {
  it('validates and stores demonstrations', async () => {
    const { db, demonstrations } = await openStores(freshName());
    const d = {
      id: 'd1',
      prompt: 'Once upon a time,',
      completion: ' a fox.',
      source: 'written' as const,
      createdAt: 1,
    };
    await demonstrations.add(d);
    expect(await demonstrations.getAll()).toEqual([d]);
    await expect(demonstrations.add({ ...d, id: 'd2', completion: '' })).rejects.toThrow(/completion/);
    db.close();
  });
});

describe('errors', () => {
  it('maps a quota error to QuotaExceededStorageError with an actionable message', () => {
    const e = toStorageError(Object.assign(new Error('full'), { name: 'QuotaExceededError' }), 'save the preference');
    expect(e).toBeInstanceOf(QuotaExceededStorageError);
    expect(e).toBeInstanceOf(StorageError);
    expect(e.message).toMatch(/storage is full: export your data/);
    const other = toStorageError(new Error('disk on fire'), 'save the preference');
    expect(other.message).toBe('Could not save the preference: disk on fire. Nothing was saved.');
  });
});

describe('chunked blobs', () => {
  it('stores and reads back bytes in chunks, replaces and deletes', async () => {
    const db = await openDb(freshName());
    const bytes = new Uint8Array(1000).map((_, i) => (i * 7) % 256);
    await putBlobChunked(db, 'ckpt-1', bytes, 256);
    const rows = await db.getAll(STORES.chunks);
    expect(rows).toHaveLength(1 + 4); // manifest + ceil(1000/256)
    expect(await getBlobChunked(db, 'ckpt-1')).toEqual(bytes);
    await putBlobChunked(db, 'ckpt-1', bytes.subarray(0, 10), 256);
    expect(await getBlobChunked(db, 'ckpt-1')).toEqual(bytes.subarray(0, 10));
    expect(await db.count(STORES.chunks)).toBe(2);
    await deleteBlobChunked(db, 'ckpt-1');
    expect(await getBlobChunked(db, 'ckpt-1')).toBeUndefined();
    db.close();
  });
});
