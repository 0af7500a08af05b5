/**
 * Pretrain the bundled GPT on the corpus, in Node, on the TF.js wasm backend (one thread).
 *
 *   npx tsx scripts/pretrain.ts [--steps 12000] [--out runs/pretrain] [--corpus static/corpus] [--resume] [--until N]
 *   smoke: npx tsx scripts/pretrain.ts --steps 20 --corpus tests/fixtures/tiny-corpus --out /tmp/x \
 *            --tokenizer-merges 50 --n-layer 1 --n-embd 32 --n-head 2 --block-size 32 --batch 4
 *
 * Data: `<corpus>/train.txt` and `val.txt`, one document per line; each document is
 * preceded by <|endoftext|> and the token streams are concatenated (as GPT-2's training data).
 * Batches are random windows of blockSize+1 tokens (seeded). Optimiser: AdamW (β 0.9/0.95,
 * ε 1e-8 given explicitly, decoupled weight decay on matrices only, as nanoGPT), global-norm
 * gradient clipping, linear warm-up then cosine decay to `minLrRatio`·lr.
 *
 * Writes `<out>/train-log.jsonl`, `<out>/checkpoint.safetensors` (weights, Adam moments, step,
 * rng; `--resume` continues from it, with the schedule that --steps/--lr now give, and logs a
 * `resumed` line saying so) and at the end `<out>/config.json`,
 * `<out>/model.safetensors` (F16) and `<out>/tokenizer.json`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Registers the gradients of every op (tfjs-core alone has none); the deep import
// '@tensorflow/tfjs-core/dist/register_all_gradients' cannot be resolved by tsx in Node.
import '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, appendFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_LAYER_NORM_EPS, type GPTConfig } from '../src/lib/model/config';
import { GPT } from '../src/lib/model/gpt';
import { Rng, type RngState } from '../src/lib/model/rng';
import { BpeTokenizer, trainBpe } from '../src/lib/model/tokenizer';
import {
  evalProcedure as describeEval,
  evaluateLoss as evaluate,
  splitDocs,
  tokenizeDocs as tokenize,
} from '../src/lib/model/evaluate';
import { writeModelCard } from './model-card';
import { PretrainOptimiser, lrAt, randomStarts, type Schedule } from '../src/lib/pretrain/trainer';
import {
  configToHF,
  loadSafetensorsIntoModel,
  readSafetensors,
  saveModelSafetensors,
  writeSafetensors,
  type TensorRecord,
} from '../src/lib/model/weights';

const { values: a } = parseArgs({
  options: {
    steps: { type: 'string', default: '12000' },
    out: { type: 'string', default: 'runs/pretrain' },
    corpus: { type: 'string', default: 'static/corpus' },
    tokenizer: { type: 'string', default: 'public/models/tiny-gpt/tokenizer.json' },
    'tokenizer-merges': { type: 'string' },
    resume: { type: 'boolean', default: false },
    /** Stop (with a checkpoint) after this step; the schedule still follows --steps. */
    until: { type: 'string' },
    'n-layer': { type: 'string', default: '4' },
    'n-head': { type: 'string', default: '4' },
    'n-embd': { type: 'string', default: '128' },
    'block-size': { type: 'string', default: '64' },
    batch: { type: 'string', default: '16' },
    lr: { type: 'string', default: '2e-3' },
    'min-lr-ratio': { type: 'string', default: '0.1' },
    warmup: { type: 'string', default: '100' },
    'weight-decay': { type: 'string', default: '0.1' },
    beta2: { type: 'string', default: '0.95' },
    'grad-clip': { type: 'string', default: '1.0' },
    'eval-every': { type: 'string', default: '200' },
    'eval-windows': { type: 'string', default: '128' },
    'ckpt-every': { type: 'string', default: '200' },
    'log-every': { type: 'string', default: '10' },
    seed: { type: 'string', default: '1337' },
    backend: { type: 'string', default: 'wasm' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (a.help) {
  console.log(`Pretrain a GPT on a corpus in Node (TF.js wasm); the app's Pretrain page runs the same step (src/lib/pretrain/trainer.ts).

  npx tsx scripts/pretrain.ts [--steps 12000] [--out runs/pretrain] [--corpus static/corpus] [--resume] [--until N]

Options (default): --steps 12000, --until N (stop with a checkpoint), --out runs/pretrain, --corpus static/corpus
(train.txt, val.txt: a document per line), --tokenizer public/models/tiny-gpt/tokenizer.json, --tokenizer-merges N
(train a new BPE instead), --n-layer 4, --n-head 4, --n-embd 128, --block-size 64, --batch 16, --lr 2e-3,
--min-lr-ratio 0.1, --warmup 100, --weight-decay 0.1, --beta2 0.95, --grad-clip 1.0, --eval-every 200,
--eval-windows 128, --ckpt-every 200, --log-every 10, --seed 1337, --backend wasm, --resume.`);
  process.exit(0);
}
const num = (k: keyof typeof a): number => {
  const v = Number(a[k]);
  if (!Number.isFinite(v)) throw new Error(`--${k} must be a number, got ${String(a[k])}`);
  return v;
};

const STEPS = num('steps');
const UNTIL = a.until === undefined ? STEPS : Math.min(STEPS, num('until'));
const OUT = resolve(a.out!);
const BATCH = num('batch');
const LR = num('lr');
const MIN_LR = LR * num('min-lr-ratio');
const WARMUP = num('warmup');
const WD = num('weight-decay');
const BETA2 = num('beta2');
const CLIP = num('grad-clip');
const EVAL_EVERY = num('eval-every');
const EVAL_WINDOWS = num('eval-windows');
const CKPT_EVERY = num('ckpt-every');
const LOG_EVERY = num('log-every');
const SEED = num('seed');

const CKPT = join(OUT, 'checkpoint.safetensors');
const LOG = join(OUT, 'train-log.jsonl');

async function setBackend(name: string): Promise<void> {
  if (name === 'wasm') {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setWasmPaths(fileURLToPath(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url)));
  }
  if (!(await tf.setBackend(name))) throw new Error(`TF.js backend ${name} did not initialise`);
  await tf.ready();
}

function readDocs(file: string): string[] {
  return splitDocs(readFileSync(file, 'utf8'));
}

const SCHEDULE: Schedule = { lr: LR, minLr: MIN_LR, warmup: WARMUP, steps: STEPS };

function log(line: Record<string, unknown>): void {
  appendFileSync(LOG, JSON.stringify(line) + '\n');
}

async function saveCheckpoint(
  model: GPT,
  adam: PretrainOptimiser,
  step: number,
  rng: Rng,
  extra: Record<string, string>,
): Promise<void> {
  const tensors = new Map<string, TensorRecord>();
  for (const [name, v] of model.params)
    tensors.set(name, { shape: [...v.shape], data: (await v.data()) as Float32Array });
  for (const [name, v] of adam.m)
    tensors.set('adam.m.' + name, { shape: [...v.shape], data: (await v.data()) as Float32Array });
  for (const [name, v] of adam.v)
    tensors.set('adam.v.' + name, { shape: [...v.shape], data: (await v.data()) as Float32Array });
  const bytes = writeSafetensors(tensors, 'F32', {
    step: String(step),
    rng: JSON.stringify(rng.getState()),
    config: JSON.stringify(model.config),
    ...extra,
  });
  writeFileSync(CKPT + '.tmp', bytes);
  renameSync(CKPT + '.tmp', CKPT); // atomic: a crash mid-write keeps the previous checkpoint
}

async function main(): Promise<void> {
  await setBackend(a.backend!);
  mkdirSync(OUT, { recursive: true });
  const corpus = resolve(a.corpus!);
  const trainDocs = readDocs(join(corpus, 'train.txt'));
  const valDocs = readDocs(join(corpus, 'val.txt'));

  let tok: BpeTokenizer;
  const tokPath = join(OUT, 'tokenizer.json');
  if (a.resume && existsSync(tokPath)) tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(tokPath, 'utf8')));
  else if (a['tokenizer-merges'] !== undefined) tok = trainBpe(trainDocs, num('tokenizer-merges'));
  else tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(resolve(a.tokenizer!), 'utf8')));
  writeFileSync(tokPath, JSON.stringify(tok.toJSON()));

  let t0 = performance.now();
  const trainIds = tokenize(tok, trainDocs);
  const valIds = tokenize(tok, valDocs);
  console.log(
    `tokenised ${trainDocs.length} train docs → ${trainIds.length} tokens, ${valDocs.length} val docs → ${valIds.length} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s (vocab ${tok.vocabSize})`,
  );

  const config: GPTConfig = {
    vocabSize: tok.vocabSize,
    blockSize: num('block-size'),
    nLayer: num('n-layer'),
    nHead: num('n-head'),
    nEmbd: num('n-embd'),
    layerNormEps: DEFAULT_LAYER_NORM_EPS,
  };
  const T = config.blockSize;
  if (trainIds.length < T + 2 || valIds.length < T + 2) throw new Error(`corpus too small for blockSize ${T}`);
  const model = new GPT(config, { seed: SEED, namePrefix: 'pretrain/' });
  const vars = [...model.params.entries()];
  const adam = new PretrainOptimiser(model, { beta2: BETA2, weightDecay: WD, gradClip: CLIP });
  let rng = new Rng(SEED + 1);
  let step = 0;

  if (a.resume && existsSync(CKPT)) {
    const file = readSafetensors(readFileSync(CKPT));
    const saved = JSON.parse(file.metadata.config) as GPTConfig;
    if (JSON.stringify(saved) !== JSON.stringify(config))
      throw new Error(`--resume: checkpoint config ${file.metadata.config} differs from ${JSON.stringify(config)}`);
    for (const [name, p] of vars) {
      p.assign(tf.tensor(file.tensors.get(name)!.data, p.shape));
      adam.m.get(name)!.assign(tf.tensor(file.tensors.get('adam.m.' + name)!.data, p.shape));
      adam.v.get(name)!.assign(tf.tensor(file.tensors.get('adam.v.' + name)!.data, p.shape));
    }
    step = Number(file.metadata.step);
    rng = Rng.fromState(JSON.parse(file.metadata.rng) as RngState);
    console.log(`resumed from ${CKPT} at step ${step}`);
    // The log says how the run went on, so the schedule of every later line can be read from it.
    log({ step, resumed: true, steps: STEPS, lr: LR, minLr: MIN_LR, warmup: WARMUP, batch: BATCH });
  } else {
    writeFileSync(LOG, '');
  }
  console.log(
    `model: ${JSON.stringify(config)}, ${model.numParams()} parameters; batch ${BATCH}×${T}, ${STEPS} steps, backend ${tf.getBackend()}`,
  );

  const evalProcedure = describeEval(T);

  const startedAt = performance.now();
  let windowStart = performance.now();
  let windowSteps = 0;
  const startStep = step;
  while (step < UNTIL) {
    const lr = lrAt(SCHEDULE, step);
    const starts = randomStarts(rng, trainIds.length, T, BATCH);
    const { loss, gradNorm } = await adam.step(trainIds, starts, step + 1, lr); // Adam's time step is 1-based
    step++;
    windowSteps++;
    if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at step ${step}; lower --lr`);

    const isLast = step === STEPS;
    if (step % LOG_EVERY === 0 || isLast || step % EVAL_EVERY === 0) {
      const secs = (performance.now() - windowStart) / 1000;
      const line: Record<string, unknown> = {
        step,
        lr,
        loss,
        gradNorm,
        tokensPerSec: Math.round((windowSteps * BATCH * T) / secs),
        msPerStep: +((secs * 1000) / windowSteps).toFixed(1),
        elapsedSec: +((performance.now() - startedAt) / 1000).toFixed(1),
      };
      if (step % EVAL_EVERY === 0 && !isLast) {
        const ev = await evaluate(model, valIds, EVAL_WINDOWS);
        line.valLoss = ev.loss;
        line.valWindows = ev.windows;
      }
      log(line);
      console.log(
        `step ${step}/${STEPS} loss ${loss.toFixed(4)}${line.valLoss !== undefined ? ` val ${(line.valLoss as number).toFixed(4)}` : ''} lr ${lr.toExponential(2)} | ${(windowSteps / secs).toFixed(2)} steps/s, ${line.msPerStep} ms/step, ${line.tokensPerSec} tok/s`,
      );
      windowStart = performance.now();
      windowSteps = 0;
    }
    if (step % CKPT_EVERY === 0 || isLast || step === UNTIL)
      await saveCheckpoint(model, adam, step, rng, { args: JSON.stringify(a) });
  }
  const trainSecs = (performance.now() - startedAt) / 1000;
  const steps = step - startStep;
  if (steps > 0)
    console.log(
      `trained ${steps} steps in ${trainSecs.toFixed(1)} s: ${(steps / trainSecs).toFixed(2)} steps/s, ${((trainSecs * 1000) / steps).toFixed(1)} ms/step`,
    );
  if (step < STEPS) {
    console.log(`stopped at step ${step} of ${STEPS} (--until); continue with --resume`);
    return;
  }

  // Final artefacts. The shipped weights are F16; the val loss the shipped model must
  // reproduce is measured after the F16 round trip.
  t0 = performance.now();
  const valF32 = await evaluate(model, valIds, Infinity);
  const bytes = await saveModelSafetensors(model, 'F16', { step: String(step), valLoss: String(valF32.loss) });
  writeFileSync(join(OUT, 'model.safetensors'), bytes);
  loadSafetensorsIntoModel(model, bytes);
  const valF16 = await evaluate(model, valIds, Infinity);
  writeFileSync(join(OUT, 'config.json'), JSON.stringify(configToHF(config, tok.eotId, 'F16'), null, 2) + '\n');
  const tokSrc = resolve(a.tokenizer!);
  if (a['tokenizer-merges'] === undefined && existsSync(tokSrc) && tokSrc !== tokPath) copyFileSync(tokSrc, tokPath);
  log({
    step,
    final: true,
    valLoss: valF16.loss,
    valLossF32: valF32.loss,
    valWindows: valF16.windows,
    valTokens: valF16.tokens,
    valProcedure:
      evalProcedure +
      '; valLoss uses the F16 weights of model.safetensors, valLossF32 the float32 weights before export',
    modelBytes: bytes.byteLength,
    elapsedSec: +((performance.now() - startedAt) / 1000).toFixed(1),
  });
  writeModelCard(OUT, BATCH * T);
  console.log(
    `val loss (full split, ${valF16.windows} windows, ${valF16.tokens} tokens): F32 ${valF32.loss.toFixed(4)}, F16 ${valF16.loss.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  console.log(
    `wrote ${join(OUT, 'model.safetensors')} (${(bytes.byteLength / 1024).toFixed(1)} KiB, F16), config.json, tokenizer.json`,
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
