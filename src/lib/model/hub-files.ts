/**
 * A model folder as a user has it from the Hugging Face Hub, picked as files or as a folder:
 * which files are the config, the weights (one `model.safetensors`, or shards with
 * `model.safetensors.index.json`) and the tokenizer (`tokenizer.json`, or GPT-2's original
 * `vocab.json` + `merges.txt`), and what is ignored (generation_config.json, README.md, …).
 *
 * Only safetensors weights are read: `pytorch_model.bin` is a Python pickle, which can run
 * code when loaded (https://huggingface.co/docs/hub/security-pickle), and a page must not.
 * No DOM: the page sorts the picked files with this to show them, the worker to load them.
 */
import { ModelLoadError } from './errors';
import { INDEX_FILE, type NamedBlob } from './safetensors-blob';
import { BpeTokenizer, TokenizerError } from './tokenizer';

/** A picked file: its path as the picker gives it (`folder/config.json` from a folder pick) and its bytes. */
export interface PickedFile {
  path: string;
  blob: Blob;
}

export type TokenizerFiles =
  { kind: 'json'; file: NamedBlob } | { kind: 'vocab-merges'; vocab: NamedBlob; merges: NamedBlob };

/** The files of one model, sorted by what they are. */
export interface HubFiles {
  /** The folder's name, or the weights file's when it is not the generic `model.safetensors`; '' when neither says. */
  name: string;
  config: NamedBlob;
  weights: NamedBlob[];
  index?: NamedBlob;
  tokenizer: TokenizerFiles;
  /** Our own model card (card.json), when there is one. */
  card?: NamedBlob;
  /** Files not read, each as "name" or "name (why)". */
  ignored: string[];
}

/** Weight formats we recognise and do not read. */
const OTHER_WEIGHTS = /\.(bin|pt|pth|ckpt|h5|msgpack|onnx|gguf|tflite|ot)$/i;
/** Shard names as `save_pretrained` writes them. */
const SHARD_RE = /^model-\d{5}-of-\d{5}\.safetensors$/;

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
function dirName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/**
 * Sort picked files into a model; throws `ModelLoadError` naming what is missing (config.json,
 * the weights, a tokenizer, the other half of vocab.json + merges.txt) or why the weights
 * cannot be read (only .bin files). With a folder pick, the model is the folder that holds
 * config.json; files in other folders (onnx/, …) are ignored.
 */
export function sortPickedFiles(picked: PickedFile[]): HubFiles {
  const configs = picked.filter((f) => baseName(f.path).toLowerCase() === 'config.json');
  const shallowest = configs.sort((a, b) => a.path.split('/').length - b.path.split('/').length)[0];
  const dir = shallowest ? dirName(shallowest.path) : dirName(picked[0]?.path ?? '');
  const here: NamedBlob[] = [];
  const ignored: string[] = [];
  for (const f of picked) {
    if (dirName(f.path) === dir) here.push({ name: baseName(f.path), blob: f.blob });
    else ignored.push(`${f.path} (not in the model's folder)`);
  }
  const find = (name: string) => here.find((f) => f.name.toLowerCase() === name);
  const config = find('config.json');
  const safetensors = here.filter((f) => /\.safetensors$/i.test(f.name));
  const adapters = safetensors.filter((f) => f.name.toLowerCase() === 'adapter_model.safetensors');
  const weights = safetensors.filter((f) => !adapters.includes(f));
  const others = here.filter((f) => OTHER_WEIGHTS.test(f.name));

  if (weights.length === 0 && others.length) {
    throw new ModelLoadError(
      `${others.map((f) => f.name).join(', ')}: only .safetensors weights are read (a .bin file is a Python ` +
        `pickle, which a web page must not run). Most Hub models have model.safetensors beside it; download that one.`,
    );
  }
  const missing: string[] = [];
  if (!config) missing.push('config.json');
  if (weights.length === 0) missing.push('the weights (model.safetensors)');
  const tokJson = find('tokenizer.json');
  const vocab = find('vocab.json');
  const merges = find('merges.txt');
  let tokenizer: TokenizerFiles | null = null;
  if (tokJson) tokenizer = { kind: 'json', file: tokJson };
  else if (vocab && merges) tokenizer = { kind: 'vocab-merges', vocab, merges };
  else if (vocab) missing.push('merges.txt (it goes with vocab.json)');
  else if (merges) missing.push('vocab.json (it goes with merges.txt)');
  else if (find('tokenizer.model')) missing.push('tokenizer.json (tokenizer.model, a SentencePiece file, is not read)');
  else missing.push('the tokenizer (tokenizer.json, or vocab.json and merges.txt)');
  if (missing.length) {
    throw new ModelLoadError(
      `The picked files lack ${missing.join(', ')}. Pick the model's folder, or its files together.`,
    );
  }

  const index = find(INDEX_FILE.toLowerCase());
  const used = new Set<NamedBlob>([config!, ...weights]);
  if (index) used.add(index);
  if (tokenizer!.kind === 'json') used.add(tokenizer!.file);
  else (used.add(tokenizer!.vocab), used.add(tokenizer!.merges));
  const card = find('card.json');
  if (card) used.add(card);
  for (const f of here) {
    if (used.has(f)) continue;
    if (adapters.includes(f)) ignored.push(`${f.name} (a LoRA adapter, not a model)`);
    else if (OTHER_WEIGHTS.test(f.name)) ignored.push(`${f.name} (only .safetensors is read)`);
    else if (f.name === 'vocab.json' || f.name === 'merges.txt') ignored.push(`${f.name} (tokenizer.json is read)`);
    else ignored.push(f.name);
  }
  const folder = dir.split('/').pop() ?? '';
  const single = weights.length === 1 && !SHARD_RE.test(weights[0].name) ? weights[0].name : '';
  const fromWeights = single.toLowerCase() === 'model.safetensors' ? '' : single.replace(/\.safetensors$/i, '');
  return {
    name: folder || fromWeights,
    config: config!,
    weights,
    index,
    tokenizer: tokenizer!,
    card,
    ignored,
  };
}

/** How messages name the tokenizer's files. */
export function tokenizerLabel(t: TokenizerFiles): string {
  return t.kind === 'json' ? t.file.name : `${t.vocab.name} and ${t.merges.name}`;
}

const MAX_TOKENIZER_BYTES = 64 * 1024 * 1024;

/** Read the tokenizer files; errors name them. `eos` is the model's eos_token_id (used when there is no `<|endoftext|>`). */
export async function readTokenizer(t: TokenizerFiles, eos?: number): Promise<BpeTokenizer> {
  const label = tokenizerLabel(t);
  const files = t.kind === 'json' ? [t.file] : [t.vocab, t.merges];
  for (const f of files)
    if (f.blob.size > MAX_TOKENIZER_BYTES)
      throw new ModelLoadError(`${f.name} is larger than 64 MB; is it the right file?`);
  try {
    if (t.kind === 'json') {
      let json: unknown;
      try {
        json = JSON.parse((await t.file.blob.text()).replace(/^\uFEFF/, ''));
      } catch (e) {
        throw new ModelLoadError(`${t.file.name} is not valid JSON (${(e as Error).message}).`);
      }
      return BpeTokenizer.fromJSON(json, eos);
    }
    let vocab: unknown;
    try {
      vocab = JSON.parse((await t.vocab.blob.text()).replace(/^\uFEFF/, ''));
    } catch (e) {
      throw new ModelLoadError(`${t.vocab.name} is not valid JSON (${(e as Error).message}).`);
    }
    return BpeTokenizer.fromVocabMerges(vocab, await t.merges.blob.text(), eos);
  } catch (e) {
    if (!(e instanceof TokenizerError)) throw e;
    const why = e.message.trim().replace(/\.+$/, '');
    throw new ModelLoadError(`${label} could not be read: ${why}.`);
  }
}

/** Embedding sizes are padded to one of these multiples (for speed on GPUs): GPT-2's 50,257 → 50,304. */
export const VOCAB_PAD_MULTIPLES = [64, 128, 256, 512, 1024] as const;

/**
 * The model's `vocab_size` against the tokenizer's: equal, or the tokenizer's size padded up to a
 * multiple of 64, 128, 256, 512 or 1,024 (the rows beyond the tokenizer are never produced by
 * encoding; the tokenizer is padded with placeholders so every id decodes). Anything else is
 * refused, naming both files. Returns the tokenizer to use.
 */
export function checkVocabSizes(vocabSize: number, tok: BpeTokenizer, tokenizerName: string): BpeTokenizer {
  const T = tok.vocabSize;
  if (vocabSize === T) return tok;
  const pads = VOCAB_PAD_MULTIPLES.map((m) => Math.ceil(T / m) * m);
  if (vocabSize > T && pads.includes(vocabSize)) return tok.padTo(vocabSize);
  const fmt = (n: number) => n.toLocaleString('en');
  const rule =
    vocabSize > T
      ? ` (A model's vocabulary may be larger than its tokenizer's only as padding: ${fmt(T)} rounded up to a ` +
        `multiple of 64, 128, 256, 512 or 1,024, i.e. ${[...new Set(pads)].map(fmt).join(', ')}.)`
      : '';
  throw new ModelLoadError(
    `config.json: "vocab_size" is ${vocabSize}, but ${tokenizerName} has ${T} tokens. Pick files of the same model.${rule}`,
  );
}
