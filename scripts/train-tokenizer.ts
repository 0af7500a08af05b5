/**
 * Train the byte-level BPE tokenizer of the bundled model on the corpus.
 *
 *   npx tsx scripts/train-tokenizer.ts [--merges 1024] [--corpus static/corpus] [--out public/models/tiny-gpt/tokenizer.json]
 *
 * Reads `train.txt` (one document per line), learns the merges with `trainBpe`
 * (deterministic), writes the Hugging Face `tokenizer.json`, and reports speed
 * and compression on `val.txt`.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer, countWords, trainBpe } from '../src/lib/model/tokenizer.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}
const NUM_MERGES = Number(arg('--merges', '1024'));
const CORPUS = resolve(ROOT, arg('--corpus', 'static/corpus'));
const OUT = resolve(ROOT, arg('--out', 'public/models/tiny-gpt/tokenizer.json'));

const readLines = (file: string): string[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);

const train = readLines(join(CORPUS, 'train.txt'));
const val = readLines(join(CORPUS, 'val.txt'));

let t0 = performance.now();
const counts = countWords(train);
console.log(
  `counted ${counts.size} distinct pre-tokens in ${train.length} lines (${((performance.now() - t0) / 1000).toFixed(2)} s)`,
);

t0 = performance.now();
const tok = trainBpe(counts, NUM_MERGES, {
  progressEvery: 128,
  onProgress: ({ merges, lastPair, lastCount }) =>
    console.log(`  merge ${String(merges).padStart(5)}  ${JSON.stringify(lastPair)} ×${lastCount}`),
});
const secs = (performance.now() - t0) / 1000;
console.log(`trained ${tok.numMerges} merges in ${secs.toFixed(2)} s (${(tok.numMerges / secs).toFixed(0)} merges/s)`);
console.log(
  `vocab size ${tok.vocabSize} (256 bytes + ${tok.vocabSize - 257} merged tokens + <|endoftext|> = id ${tok.eotId})`,
);

mkdirSync(dirname(OUT), { recursive: true });
const json = JSON.stringify(tok.toJSON(), null, 2) + '\n';
writeFileSync(OUT, json);
console.log(`wrote ${OUT} (${json.length} bytes)`);

// Check the file we wrote, then measure compression on val.
const back = BpeTokenizer.fromJSON(JSON.parse(readFileSync(OUT, 'utf8')));
t0 = performance.now();
let tokens = 0;
let chars = 0;
let bytes = 0;
for (const line of val) {
  const ids = back.encode(line);
  if (back.decode(ids) !== line) throw new Error(`round trip failed on val line: ${line}`);
  tokens += ids.length;
  chars += line.length;
  bytes += new TextEncoder().encode(line).length;
}
const encSecs = (performance.now() - t0) / 1000;
console.log(
  `val: ${val.length} lines, ${tokens} tokens, ${(tokens / val.length).toFixed(1)} tokens/line, ` +
    `${(tokens / chars).toFixed(3)} tokens/char (${(bytes / tokens).toFixed(2)} bytes/token), encoded+decoded in ${encSecs.toFixed(2)} s`,
);
t0 = performance.now();
const trainTokens = back.encode(train.join('<|endoftext|>')).length;
console.log(`train: ${trainTokens} tokens, encoded in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
