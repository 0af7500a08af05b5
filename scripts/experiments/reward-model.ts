/**
 * Reward-model experiment: can a reward model learn a scripted labeller's preferences from
 * the bundled model's own samples, and how many labels does it need?
 *
 *   npx tsx scripts/experiments/reward-model.ts --pairs 300 --noise 0.1 --mode full
 *   npx tsx scripts/experiments/reward-model.ts --pairs 40 --mode head
 *   npx tsx scripts/experiments/reward-model.ts --active --pairs 400 --budgets 10,20,40,80,160
 *   (--checkpoint runs/tiny-gpt/checkpoint.safetensors: a pretraining checkpoint instead)
 *
 * 1. Loads `public/models/tiny-gpt` (or --model), samples two responses per pair for prompts of
 *    `static/prompts/reviews.json` (temperature 1, --max-new-tokens 24, seeded; prompt ids
 *    [eot, ...encodePrompt(prompt).ids], as the engine samples).
 * 2. Labels each pair with the sentiment labeller with --noise label noise (seeded); ties are
 *    dropped (they give no pair), until --pairs pairs exist.
 * 3. Trains a reward model (--mode head|full) on the labelled pairs (the trainer holds out 20%
 *    of their prompts for early stopping), prints per-epoch metrics and seconds per epoch.
 * 4. Prints held-out accuracy on a test set: --test-pairs pairs (no clean ties) for a fixed 20%
 *    of the prompts that are never labelled for training, against the noisy labels and against
 *    the noise-free labeller (what we want), and the same on the trainer's validation split.
 * With --active: a pool of --pairs candidate pairs (unlabelled) and a fixed held-out set of
 * prompts; labels are bought in steps (--budgets), either at random or where the current
 * model is least sure (smallest |r_A − r_B|), and held-out accuracy is printed per budget.
 * A tie costs a label and gives no pair, for both strategies.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Registers every gradient (tfjs-core alone has none); tsx cannot resolve the deep import.
import '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { TrainingPair } from '../../src/lib/data/records';
import { GPT } from '../../src/lib/model/gpt';
import { Rng } from '../../src/lib/model/rng';
import { BpeTokenizer } from '../../src/lib/model/tokenizer';
import {
  configFromHF,
  loadSafetensorsIntoModel,
  readSafetensors,
  type SafetensorsFile,
} from '../../src/lib/model/weights';
import { words } from '../../src/lib/rlhf/labellers';
import { RewardModel, rewardInputIds, type RewardMode, type RewardPooling } from '../../src/lib/rlhf/reward-model';
import {
  evaluatePairs,
  trainRewardModel,
  type RewardEncoder,
  type RewardTrainOptions,
} from '../../src/lib/rlhf/reward-train';
import { samplePairs as samplePairsWith, setBackend, toPair, type Candidate } from './pipeline-common';

const { values: a } = parseArgs({
  options: {
    pairs: { type: 'string', default: '300' },
    noise: { type: 'string', default: '0.1' },
    mode: { type: 'string', default: 'full' },
    /** Where the head reads the trunk: mean of all real tokens (the app's default) or last (HF). */
    pooling: { type: 'string', default: 'mean' },
    model: { type: 'string', default: 'public/models/tiny-gpt' },
    /** A pretraining checkpoint (scripts/pretrain.ts) instead of model.safetensors: weights only. */
    checkpoint: { type: 'string' },
    prompts: { type: 'string', default: 'static/prompts/reviews.json' },
    'max-new-tokens': { type: 'string', default: '24' },
    temperature: { type: 'string', default: '1' },
    seed: { type: 'string', default: '0' },
    epochs: { type: 'string' },
    lr: { type: 'string' },
    batch: { type: 'string' },
    'center-coef': { type: 'string' },
    'weight-decay': { type: 'string' },
    'head-l2': { type: 'string' },
    patience: { type: 'string' },
    'val-fraction': { type: 'string', default: '0.2' },
    backend: { type: 'string', default: 'wasm' },
    active: { type: 'boolean', default: false },
    /** Full mode: skip the trainer's linear probe (head fit on the frozen trunk before fine-tuning). */
    'no-lpft': { type: 'boolean', default: false },
    budgets: { type: 'string', default: '10,20,30,40,60,80' },
    repeats: { type: 'string', default: '3' },
    'test-pairs': { type: 'string', default: '200' },
  },
  strict: true,
});
const num = (k: keyof typeof a): number => {
  const v = Number(a[k]);
  if (!Number.isFinite(v)) throw new Error(`--${k} must be a number, got ${String(a[k])}`);
  return v;
};
const opt = (k: keyof typeof a): number | undefined => (a[k] === undefined ? undefined : num(k));

const SEED = num('seed');
const MODE = a.mode as RewardMode;
if (MODE !== 'head' && MODE !== 'full') throw new Error(`--mode must be head or full, got ${a.mode}`);
const POOLING = a.pooling as RewardPooling;
if (!['last', 'mean'].includes(POOLING)) throw new Error(`--pooling must be last or mean, got ${a.pooling}`);

/** Pairs labelled by the sentiment labeller with --noise (see pipeline-common's samplePairs). */
function samplePairs(
  model: GPT,
  tok: BpeTokenizer,
  prompts: string[],
  want: number,
  keep: (c: Candidate) => boolean,
): ReturnType<typeof samplePairsWith> {
  return samplePairsWith(model, tok, prompts, want, {
    labeller: {
      kind: 'sentiment',
      polarity: 'positive',
      scoring: 'total',
      noise: num('noise'),
      positionBias: 0,
      tieMargin: 0,
    },
    maxNewTokens: num('max-new-tokens'),
    temperature: num('temperature'),
    seed: SEED,
    keep,
  });
}

/** Held-out accuracy against the noisy labels and against the noise-free labeller. */
async function heldOut(
  rm: RewardModel,
  val: Candidate[],
  encode: RewardEncoder,
): Promise<{ noisy: number; clean: number; nNoisy: number; nClean: number }> {
  const abPairs = val.map((c) => ({ prompt: c.prompt, chosen: c.a, rejected: c.b }));
  const ev = await evaluatePairs(rm, abPairs, encode); // chosen = A: accuracy of "A better"
  let noisyOk = 0;
  let nNoisy = 0;
  let cleanOk = 0;
  let nClean = 0;
  val.forEach((c, i) => {
    const aBetter = ev.chosen_rewards[i] > ev.rejected_rewards[i];
    if (c.choice !== 'tie') {
      nNoisy++;
      if (aBetter === (c.choice === 'A')) noisyOk++;
    }
    if (c.clean !== 'tie') {
      nClean++;
      if (aBetter === (c.clean === 'A')) cleanOk++;
    }
  });
  return { noisy: noisyOk / nNoisy, clean: cleanOk / nClean, nNoisy, nClean };
}

function trainOpts(encode: RewardEncoder, normaliseOn: number[][]): RewardTrainOptions {
  const o: RewardTrainOptions = { encode, mode: MODE, seed: SEED, normaliseOn, valFraction: num('val-fraction') };
  if (opt('epochs') !== undefined) o.epochs = opt('epochs');
  if (opt('lr') !== undefined) o.learningRate = opt('lr');
  if (opt('batch') !== undefined) o.batchSize = opt('batch');
  if (opt('center-coef') !== undefined) o.centerCoef = opt('center-coef');
  if (opt('weight-decay') !== undefined) o.weightDecay = opt('weight-decay');
  if (opt('head-l2') !== undefined) o.headL2 = opt('head-l2');
  if (opt('patience') !== undefined) o.patience = opt('patience');
  if (a['no-lpft']) o.linearProbe = false;
  return o;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * Reference point: a bag-of-words Bradley–Terry model (r = Σ w[word], L2 0.01, 300 epochs of
 * full-batch gradient descent) trained on the same pairs, tested on the same test pairs against
 * the noise-free labels. Tells whether the data allow generalisation at all.
 */
function bagOfWordsBaseline(train: TrainingPair[], test: Candidate[]): number {
  const w = new Map<string, number>();
  const count = (t: string) => {
    const m = new Map<string, number>();
    for (const x of words(t)) m.set(x, (m.get(x) ?? 0) + 1);
    return m;
  };
  const diffs = train.map((p) => {
    const d = count(p.chosen);
    for (const [k, v] of count(p.rejected)) d.set(k, (d.get(k) ?? 0) - v);
    return d;
  });
  const r = (d: Map<string, number>) => [...d].reduce((acc, [k, v]) => acc + (w.get(k) ?? 0) * v, 0);
  for (let epoch = 0; epoch < 300; epoch++) {
    const grad = new Map<string, number>();
    for (const d of diffs) {
      const g = -1 / (1 + Math.exp(r(d))); // d/dx of −log σ(x)
      for (const [k, v] of d) grad.set(k, (grad.get(k) ?? 0) + (g * v) / diffs.length);
    }
    for (const [k, g] of grad) w.set(k, (w.get(k) ?? 0) - 0.5 * (g + 0.01 * (w.get(k) ?? 0)));
  }
  let ok = 0;
  let n = 0;
  for (const c of test) {
    if (c.clean === 'tie') continue;
    n++;
    const d = count(c.a);
    for (const [k, v] of count(c.b)) d.set(k, (d.get(k) ?? 0) - v);
    if (r(d) > 0 === (c.clean === 'A')) ok++;
  }
  return ok / n;
}

async function main(): Promise<void> {
  await setBackend(a.backend!);
  const dir = resolve(a.model!);
  const config = configFromHF(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')));
  const policy = new GPT(config, { trainable: false, namePrefix: 'policy/' });
  let file: { metadata: Record<string, string> };
  if (a.checkpoint) {
    // Pretraining checkpoint: model weights plus Adam moments (`adam.*`), which we skip.
    file = readSafetensors(readFileSync(resolve(a.checkpoint)));
    const ck = file as SafetensorsFile;
    const map = new Map<string, tf.Tensor>();
    for (const [name, t] of ck.tensors) if (!name.startsWith('adam.')) map.set(name, tf.tensor(t.data, t.shape));
    policy.setWeights(map);
    tf.dispose([...map.values()]);
    file = { metadata: { checkpoint: a.checkpoint, step: ck.metadata.step } };
  } else {
    file = loadSafetensorsIntoModel(policy, readFileSync(join(dir, 'model.safetensors')));
  }
  const prompts = (JSON.parse(readFileSync(resolve(a.prompts!), 'utf8')) as { prompts: string[] }).prompts;
  const encode: RewardEncoder = (p, r) => rewardInputIds(tok, p, r);
  console.log(
    `model ${dir} (${policy.numParams()} params, ${JSON.stringify(config)}, metadata ${JSON.stringify(file.metadata)}); ${prompts.length} prompts; backend ${tf.getBackend()}`,
  );

  // Test prompts: a fixed 20% of the prompts, never labelled for training; their pairs
  // measure held-out accuracy on more pairs than the trainer's own validation split has.
  const shuffled = [...prompts];
  const prng = new Rng(SEED + 5);
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  const nTest = Math.max(1, Math.round(0.2 * prompts.length));
  const testPrompts = shuffled.slice(0, nTest);
  const labelPrompts = shuffled.slice(nTest);

  const t = await samplePairs(policy, tok, testPrompts, num('test-pairs'), (c) => c.clean !== 'tie');
  const test = t.candidates;
  console.log(
    `test set: ${test.length} pairs on ${testPrompts.length} prompts never labelled for training (${testPrompts.join(' | ')}); ${t.seconds.toFixed(1)} s`,
  );
  if (a.active) return active(policy, tok, labelPrompts, test, encode);

  const N = num('pairs');
  const s = await samplePairs(policy, tok, labelPrompts, N, (c) => c.choice !== 'tie');
  const cands = s.candidates;
  console.log(
    `sampled ${s.samples} responses in ${s.seconds.toFixed(1)} s; ${cands.length} labelled pairs on ${labelPrompts.length} prompts (${s.ties} ties dropped), noise ${num('noise')}`,
  );
  for (const c of cands.slice(0, 3))
    console.log(
      `  e.g. [${c.prompt}] A:${JSON.stringify(c.a)} B:${JSON.stringify(c.b)} → ${c.choice} (clean ${c.clean})`,
    );
  const pairs = cands.map(toPair) as TrainingPair[];
  const candOf = new Map(pairs.map((p, i) => [p, cands[i]]));
  const normaliseOn = cands.slice(0, 128).map((c) => encode(c.prompt, c.a));

  const rm = RewardModel.fromPolicy(policy, { mode: MODE, seed: SEED, pooling: POOLING });
  const res = await trainRewardModel(rm, pairs, trainOpts(encode, normaliseOn), (e) => {
    if (e.type === 'start')
      console.log(
        `${e.mode} mode, ${POOLING} pooling: ${e.trainPairs} train / ${e.valPairs} val pairs (val prompts: ${e.valPrompts.join(' | ')}), ${e.totalSteps} steps planned${e.initial ? `; before training eval_accuracy ${pct(e.initial.accuracy)}` : ''}`,
      );
    if (e.type === 'epoch') {
      const m = e.metrics;
      console.log(
        `epoch ${String(m.epoch).padStart(3)}  loss ${m.loss.toFixed(4)} acc ${pct(m.accuracy)} margin ${m.margin.toFixed(3)} | eval_loss ${m.eval_loss?.toFixed(4)} eval_acc ${m.eval_accuracy !== undefined ? pct(m.eval_accuracy) : '-'} | ${m.seconds.toFixed(2)} s${e.isBest ? '  *' : ''}`,
      );
    }
  });
  if (res.linearProbe)
    console.log(
      `linear probe first (head on the frozen trunk): ${res.linearProbe.seconds.toFixed(1)} s, accuracy ${pct(res.linearProbe.accuracy)}, eval_accuracy ${res.linearProbe.eval_accuracy !== undefined ? pct(res.linearProbe.eval_accuracy) : '-'}`,
    );
  const valC = res.split.val.map((p) => candOf.get(p)!);
  const ht = await heldOut(rm, test, encode);
  console.log(
    `\nbest epoch ${res.bestEpoch}${res.stoppedEarly ? ' (stopped early)' : ''}; ${res.seconds.toFixed(1)} s total, ${res.secondsPerEpoch.toFixed(2)} s/epoch`,
  );
  if (valC.length) {
    const h = await heldOut(rm, valC, encode);
    console.log(
      `validation split (${h.nNoisy} pairs of ${res.split.valPrompts.length} prompts held out by the trainer, used for early stopping): vs noisy labels ${pct(h.noisy)}, vs noise-free ${pct(h.clean)}`,
    );
  }
  console.log(
    `TEST (${ht.nClean} pairs of ${testPrompts.length} prompts never labelled): vs noisy labels ${pct(ht.noisy)} (${ht.nNoisy} pairs), vs noise-free labeller ${pct(ht.clean)}`,
  );
  console.log(
    `reference: bag-of-words BT model on the same ${res.split.train.length} train pairs → TEST vs noise-free ${pct(bagOfWordsBaseline(res.split.train, test))}`,
  );
  console.log(`normalisation: gain ${res.normalisation.gain.toFixed(4)}, bias ${res.normalisation.bias.toFixed(4)}`);
  rm.dispose();
  policy.dispose();
}

/** Label-efficiency: uncertainty-ordered vs random label buying, head mode unless --mode full. */
async function active(
  policy: GPT,
  tok: BpeTokenizer,
  labelPrompts: string[],
  test: Candidate[],
  encode: RewardEncoder,
): Promise<void> {
  const budgets = a.budgets!.split(',').map(Number);
  // Pool: candidate pairs with labels pre-drawn (so both strategies buy the same answers).
  const s = await samplePairs(policy, tok, labelPrompts, num('pairs'), () => true);
  const pool = s.candidates;
  const normaliseOn = pool.slice(0, 64).map((c) => encode(c.prompt, c.a));
  console.log(
    `pool ${pool.length} candidate pairs (${pool.filter((c) => c.choice === 'tie').length} would be ties); sampling ${s.seconds.toFixed(1)} s`,
  );
  const repeats = num('repeats');
  const table = new Map<string, { noisy: number[]; clean: number[]; secs: number[] }[]>();
  for (const strategy of ['random', 'uncertainty'] as const) {
    const rows = budgets.map(() => ({ noisy: [] as number[], clean: [] as number[], secs: [] as number[] }));
    for (let rep = 0; rep < repeats; rep++) {
      const rng = new Rng(SEED + 7 + rep);
      const unlabelled = pool.map((c) => c);
      for (let i = unlabelled.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [unlabelled[i], unlabelled[j]] = [unlabelled[j], unlabelled[i]];
      }
      const labelled: Candidate[] = [];
      let rm: RewardModel | null = null;
      for (let bi = 0; bi < budgets.length; bi++) {
        const need = budgets[bi] - labelled.length;
        if (strategy === 'uncertainty' && rm && need > 0) {
          // Least sure first: smallest |r_A − r_B| under the current model.
          const ev = await evaluatePairs(
            rm,
            unlabelled.map((c) => ({ prompt: c.prompt, chosen: c.a, rejected: c.b })),
            encode,
          );
          const gap = unlabelled.map((_, i) => Math.abs(ev.chosen_rewards[i] - ev.rejected_rewards[i]));
          const order = unlabelled.map((_, i) => i).sort((x, y) => gap[x] - gap[y]);
          const pick = new Set(order.slice(0, need));
          labelled.push(...unlabelled.filter((_, i) => pick.has(i)));
          const rest = unlabelled.filter((_, i) => !pick.has(i));
          unlabelled.length = 0;
          unlabelled.push(...rest);
        } else if (need > 0) {
          labelled.push(...unlabelled.splice(0, need));
        }
        rm?.dispose();
        rm = RewardModel.fromPolicy(policy, { mode: MODE, seed: SEED, pooling: POOLING });
        const pairs = labelled.map(toPair).filter((p): p is TrainingPair => p !== null);
        try {
          const t0 = performance.now();
          // No validation split of a handful of labels: fixed epochs, the test set stays unseen.
          await trainRewardModel(rm, pairs, { ...trainOpts(encode, normaliseOn), valFraction: 0 });
          rows[bi].secs.push((performance.now() - t0) / 1000);
          const h = await heldOut(rm, test, encode);
          rows[bi].noisy.push(h.noisy);
          rows[bi].clean.push(h.clean);
        } catch (e) {
          console.log(`  ${strategy} budget ${budgets[bi]}: ${(e as Error).message}`);
        }
      }
      rm?.dispose();
    }
    table.set(strategy, rows);
  }
  const mean = (xs: number[]) => (xs.length ? pct(xs.reduce((p, q) => p + q, 0) / xs.length) : '   -  ');
  console.log(
    `\nheld-out accuracy on ${test.length} pairs of unseen prompts (mean of ${repeats} runs), ${MODE} mode, fixed epochs (no early stopping)`,
  );
  console.log('labels | random: noisy  clean | uncertainty: noisy  clean');
  budgets.forEach((b, i) => {
    const r = table.get('random')![i];
    const u = table.get('uncertainty')![i];
    console.log(
      `${String(b).padStart(6)} |        ${mean(r.noisy)}  ${mean(r.clean)} |              ${mean(u.noisy)}  ${mean(u.clean)}`,
    );
  });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
