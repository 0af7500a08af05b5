/**
 * safetensors read in slices from `Blob`s (a `File` the user picked), one tensor at a time, and
 * sharded checkpoints (`model-0000k-of-0000n.safetensors` + `model.safetensors.index.json`,
 * the layout `transformers`' `save_pretrained` writes: https://huggingface.co/docs/transformers/big_models).
 *
 * Why: a 500 MB checkpoint read whole is 500 MB on the page, again in the worker, and again as
 * float32. A `File` crosses to the worker as a handle (structured clone), and each tensor's bytes
 * are read there with `blob.slice(begin, end).arrayBuffer()` from the header's offsets and
 * converted to float32 at once, so the largest extra buffer is one tensor.
 *
 * The header is checked exactly as `readSafetensorsHeader` (./weights.ts) checks a whole file;
 * an index is checked against the shards' headers (every tensor in exactly one shard, the one
 * the index names; every shard present) before any value is read.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ModelLoadError, WeightsFormatError } from './errors';
import { isHfTransposed, type GPT } from './gpt';
import {
  DTYPE_BYTES,
  MAX_HEADER_BYTES,
  bf16BitsToFloat32,
  float16BitsToFloat32,
  parseSafetensorsHeader,
  transposeRecord,
  type FloatDtype,
  type HeaderEntry,
  type SafetensorsHeader,
} from './weights';

/** A file as picked: its name (no folder) and its bytes, read lazily. */
export interface NamedBlob {
  name: string;
  blob: Blob;
}

/** Where one tensor's bytes are. */
export interface TensorSource {
  file: string;
  blob: Blob;
  dataStart: number;
  entry: HeaderEntry;
}

/** The tensors of a checkpoint, in one file or in shards, with where each one lies. */
export interface CheckpointHeaders {
  /** How messages name the weights: the .safetensors file, or the index of the shards. */
  label: string;
  /** Every tensor by its name in the files, in file order. */
  tensors: Map<string, TensorSource>;
  /** The files' sizes together. */
  bytes: number;
  /** The weight files, in order. */
  files: string[];
}

export const INDEX_FILE = 'model.safetensors.index.json';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

async function bytesOf(blob: Blob, begin: number, end: number): Promise<ArrayBuffer> {
  return blob.slice(begin, end).arrayBuffer();
}

/** Read and check the header of a safetensors blob; reads only the header's bytes. */
export async function readBlobHeader(file: NamedBlob): Promise<SafetensorsHeader> {
  const size = file.blob.size;
  if (size < 8) return parseSafetensorsHeader(new Uint8Array(8), size, file.name);
  const head = new Uint8Array(await bytesOf(file.blob, 0, 8));
  const n = Number(new DataView(head.buffer).getBigUint64(0, true));
  // Out-of-range lengths are refused by the parser from these 8 bytes, before anything is read.
  if (n > size - 8 || n > MAX_HEADER_BYTES) return parseSafetensorsHeader(head, size, file.name);
  return parseSafetensorsHeader(new Uint8Array(await bytesOf(file.blob, 0, 8 + n)), size, file.name);
}

let f16Table: Float32Array | null = null;
/** All 65,536 float16 values as float32, built once (256 KiB): decoding is then one lookup a value. */
function float16Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = float16BitsToFloat32(h);
  }
  return f16Table;
}

/**
 * One tensor's raw little-endian bytes → float32, refusing a non-finite value (a BF16 or F16
 * NaN or Inf) with a message naming the file and the tensor.
 */
export function decodeTensorBytes(buf: ArrayBuffer, dtype: FloatDtype, name: string, file: string): Float32Array {
  const n = buf.byteLength / DTYPE_BYTES[dtype];
  let out: Float32Array;
  if (LITTLE_ENDIAN && dtype === 'F32') out = new Float32Array(buf);
  else if (LITTLE_ENDIAN && dtype === 'BF16') {
    const src = new Uint16Array(buf);
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
    out = new Float32Array(bits.buffer);
  } else if (LITTLE_ENDIAN && dtype === 'F16') {
    const src = new Uint16Array(buf);
    const table = float16Table();
    out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = table[src[i]];
  } else {
    const dv = new DataView(buf);
    out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (dtype === 'F32') out[i] = dv.getFloat32(4 * i, true);
      else if (dtype === 'F64') out[i] = dv.getFloat64(8 * i, true);
      else if (dtype === 'F16') out[i] = float16BitsToFloat32(dv.getUint16(2 * i, true));
      else out[i] = bf16BitsToFloat32(dv.getUint16(2 * i, true));
    }
  }
  for (let i = 0; i < n; i++) {
    const v = out[i];
    if (v - v !== 0) {
      throw new WeightsFormatError(
        `${file}: tensor "${name}" (${dtype}) holds ${v} at flat index ${i}; weights must be finite numbers ` +
          `(the model diverged in training, or the file is corrupt).`,
      );
    }
  }
  return out;
}

/** One tensor's values as float32, read from its slice of the file. */
export async function readTensor(name: string, src: TensorSource): Promise<Float32Array> {
  const { begin, end, dtype } = src.entry;
  const buf = await bytesOf(src.blob, src.dataStart + begin, src.dataStart + end);
  if (buf.byteLength !== end - begin)
    throw new WeightsFormatError(`${src.file} could not be read whole (it changed or was removed); pick it again.`);
  return decodeTensorBytes(buf, dtype, name, src.file);
}

function listed(names: string[]): string {
  const shown = names.slice(0, 3).map((n) => `"${n}"`);
  return names.length > 3
    ? `${shown.join(', ')} and ${(names.length - 3).toLocaleString('en')} more`
    : shown.join(', ');
}

/** Parse `model.safetensors.index.json`: its `weight_map`, tensor name → shard file name. */
export function parseIndex(text: string, fileName = INDEX_FILE): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new WeightsFormatError(`${fileName} is not valid JSON (${(e as Error).message}).`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new WeightsFormatError(`${fileName} has no "weight_map" object (tensor name → shard file).`);
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || !file.endsWith('.safetensors'))
      throw new WeightsFormatError(
        `${fileName}: "weight_map" gives tensor "${name}" the file ${JSON.stringify(file)}; it must name a .safetensors shard.`,
      );
    out.set(name, file);
  }
  if (out.size === 0) throw new WeightsFormatError(`${fileName} lists no tensors in its "weight_map".`);
  return out;
}

/**
 * Read the headers of the weights: one .safetensors file, or the shards an index names. Checks,
 * before any value is read: every shard the index names was picked, every picked shard is named,
 * each shard holds exactly the tensors the index gives it, and no tensor is in two files.
 */
export async function openCheckpoint(weights: NamedBlob[], index?: NamedBlob): Promise<CheckpointHeaders> {
  if (weights.length === 0) throw new ModelLoadError('No .safetensors weights were picked.');
  if (!index && weights.length > 1) {
    throw new ModelLoadError(
      `${weights.length} .safetensors files were picked (${listed(weights.map((w) => w.name))}) without ` +
        `${INDEX_FILE}; pick the index of the shards too, or a single .safetensors file.`,
    );
  }
  const tensors = new Map<string, TensorSource>();
  const owner = new Map<string, string>();
  const headers: [NamedBlob, SafetensorsHeader][] = [];
  let map: Map<string, string> | null = null;
  if (index) {
    const indexName = index.name;
    map = parseIndex(await index.blob.text(), indexName);
    const picked = new Set(weights.map((w) => w.name));
    const named = new Set(map.values());
    for (const shard of named) {
      if (!picked.has(shard)) {
        const inIt = [...map].filter(([, f]) => f === shard).map(([t]) => t);
        throw new ModelLoadError(
          `${indexName} puts ${listed(inIt)} in ${shard}, which was not picked. Pick every shard of the model ` +
            `(the whole folder), or the ${INDEX_FILE} of these files.`,
        );
      }
    }
    for (const w of weights) {
      if (!named.has(w.name))
        throw new ModelLoadError(
          `${w.name} is not one of the shards ${indexName} names (${listed([...named])}). Pick the files of one model.`,
        );
    }
  }
  for (const w of weights) headers.push([w, await readBlobHeader(w)]);
  for (const [w, h] of headers) {
    for (const [name, entry] of h.entries) {
      const before = owner.get(name);
      if (before !== undefined)
        throw new ModelLoadError(`Tensor "${name}" is in both ${before} and ${w.name}; a checkpoint holds each once.`);
      owner.set(name, w.name);
      if (map) {
        const meant = map.get(name);
        if (meant === undefined)
          throw new ModelLoadError(`${w.name} holds tensor "${name}", which ${index!.name} does not list.`);
        if (meant !== w.name)
          throw new ModelLoadError(`${index!.name} puts tensor "${name}" in ${meant}, but it is in ${w.name}.`);
      }
      tensors.set(name, { file: w.name, blob: w.blob, dataStart: h.dataStart, entry });
    }
  }
  if (map) {
    const missing = [...map.keys()].filter((n) => !owner.has(n));
    if (missing.length) {
      const file = map.get(missing[0])!;
      throw new ModelLoadError(
        `${index!.name} puts ${listed(missing)} in ${file}, but ${file} has no such tensor. ` +
          `The shards and the index are of different models or versions.`,
      );
    }
  }
  return {
    label: index ? index.name : weights[0].name,
    tensors,
    bytes: weights.reduce((a, w) => a + w.blob.size, 0),
    files: weights.map((w) => w.name),
  };
}

/**
 * Fill a model's variables from a checkpoint whose names and shapes were checked against it
 * (`checkWeightsEntries` in ./plan.ts), one tensor at a time: read, convert (and transpose a
 * Llama projection), assign, free.
 * `names` maps the model's parameter names to the checkpoint's.
 */
export async function loadCheckpointIntoModel(
  model: GPT,
  checkpoint: CheckpointHeaders,
  names: Map<string, string>,
): Promise<void> {
  for (const [param, v] of model.params) {
    const fileName = names.get(param);
    const src = fileName === undefined ? undefined : checkpoint.tensors.get(fileName);
    if (!src) throw new ModelLoadError(`${checkpoint.label} has no tensor for ${param}.`);
    let data = await readTensor(fileName!, src);
    // Llama's nn.Linear weights are [out, in] in the file and [in, out] in the model (./weights.ts).
    if (isHfTransposed(model.config, param) && src.entry.shape.length === 2)
      data = transposeRecord({ shape: src.entry.shape, data }).data;
    const t = tf.tensor(data, v.shape, 'float32');
    try {
      v.assign(t);
    } finally {
      t.dispose();
    }
  }
}
