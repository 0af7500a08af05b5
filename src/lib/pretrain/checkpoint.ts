/**
 * A pretraining checkpoint as plain data, and its bytes for IndexedDB: everything a run needs to
 * go on after a reload with the same optimiser state (nanoGPT's `ckpt.pt` keeps model, optimizer,
 * config, step and best loss; so do we). The model travels as its files (safetensors, config,
 * tokenizer: `ModelFiles`, so a saved run's weights load like any other checkpoint), Adam's two
 * moments as one float32 byte array with an index, the batch sampler's RNG state in the record,
 * and the token streams once per run (they never change) as int32 bytes.
 */
import type { RngState } from '../model/rng';

/** Where each moment tensor lies in the packed bytes (offsets in float32 elements). */
export interface MomentIndex {
  byteLength: number;
  entries: { group: 'm' | 'v'; name: string; offset: number; length: number }[];
}

/** Adam's moments by parameter name, packed into one float32 array. */
export function packMoments(
  m: Record<string, Float32Array>,
  v: Record<string, Float32Array>,
): { index: MomentIndex; bytes: Uint8Array } {
  const entries: MomentIndex['entries'] = [];
  let total = 0;
  for (const [group, map] of [
    ['m', m],
    ['v', v],
  ] as const)
    for (const [name, a] of Object.entries(map)) {
      entries.push({ group, name, offset: total, length: a.length });
      total += a.length;
    }
  const all = new Float32Array(total);
  for (const e of entries) all.set((e.group === 'm' ? m : v)[e.name], e.offset);
  const bytes = new Uint8Array(all.buffer);
  return { index: { byteLength: bytes.byteLength, entries }, bytes };
}

/** The moments back from their bytes; throws when the bytes do not match the index. */
export function unpackMoments(
  index: MomentIndex,
  bytes: Uint8Array,
): { m: Record<string, Float32Array>; v: Record<string, Float32Array> } {
  if (bytes.byteLength !== index.byteLength || bytes.byteLength % 4 !== 0)
    throw new RangeError(
      `Pretraining checkpoint: ${bytes.byteLength} bytes of optimiser state where ${index.byteLength} were saved.`,
    );
  const all = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(all.buffer).set(bytes); // aligned copy
  const out = { m: {} as Record<string, Float32Array>, v: {} as Record<string, Float32Array> };
  for (const e of index.entries) {
    if ((e.group !== 'm' && e.group !== 'v') || e.offset < 0 || e.offset + e.length > all.length)
      throw new RangeError(`Pretraining checkpoint: moment ${e.group}/${e.name} lies outside the saved bytes.`);
    out[e.group][e.name] = all.slice(e.offset, e.offset + e.length);
  }
  return out;
}

/** The training and validation token streams as one int32 byte array (train first). */
export function packIds(trainIds: Int32Array, valIds: Int32Array): Uint8Array {
  const all = new Int32Array(trainIds.length + valIds.length);
  all.set(trainIds, 0);
  all.set(valIds, trainIds.length);
  return new Uint8Array(all.buffer);
}

export function unpackIds(bytes: Uint8Array, trainLength: number): { trainIds: Int32Array; valIds: Int32Array } {
  if (bytes.byteLength % 4 !== 0 || trainLength < 0 || trainLength * 4 > bytes.byteLength)
    throw new RangeError(`Pretraining checkpoint: the saved token streams (${bytes.byteLength} bytes) are damaged.`);
  const all = new Int32Array(bytes.byteLength / 4);
  new Uint8Array(all.buffer).set(bytes);
  return { trainIds: all.slice(0, trainLength), valIds: all.slice(trainLength) };
}

/** The optimiser and sampler state of a run at a step boundary (the model travels as files). */
export interface PretrainOptState {
  step: number;
  rng: RngState;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}
