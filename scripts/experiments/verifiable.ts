/**
 * GRPO with a JavaScript reward function (a verifiable reward) on the bundled model, in Node on
 * the TF.js wasm backend (one thread): measures what a verifiable-reward scenario of the app
 * does, with the app's own pieces (`GrpoTrainer`, the reward-function runner, which in Node runs
 * the functions in-process, and `evaluatePassRate`), and prints the held-out pass rate before
 * (the bundled model) and after training, per seed.
 *
 *   npx tsx scripts/experiments/verifiable.ts --scenario static/scenarios/grpo/one-sentence.json --seeds 0,1,2
 *   options: --iterations N (default: the scenario's) --config '{"learningRate":1e-4}' (over the
 *            scenario's grpo settings) --eval-samples 16 --eval-seed 1234 --eval-every 0
 *            --fn reward.js (code instead of the scenario's functions; defines `reward`)
 *            --threshold 1 --out runs/verifiable --backend wasm --loss-types grpo,dapo (length lab)
 *
 * Prompts: the scenario's prompt set split by prompt with the scenario's seed (a quarter held
 * out, `passRateSplit`, as the app splits it); GRPO trains on the rest. Each seed trains from
 * the bundled model with `seed` = that seed; evaluation samples use --eval-seed, so every seed's
 * base pass rate is measured on the same random numbers. A length-bias lab scenario runs each of
 * its loss types in turn (per seed) and prints the completion lengths.
 *
 * Measured (2026-12-03, wasm, 16 samples × 8 held-out prompts, seeds 0 / 1 / 2, on a machine
 * shared by many jobs, load 30–45 on 2 cores, so the seconds are ~15× an idle machine's):
 *  - mention-word, 30 iterations: base 6.3 % → 99.2 / 99.2 / 94.5 % (≈ 45 min per seed here).
 *  - exact-words, 60 iterations: base 13.3 % → 69.5 / 79.7 / 63.3 %: short of 80 %, while the
 *    training reward reaches 0.86–0.93; with a 0/1 reward, lr 2e-4 and 40 iterations, 65.6 % (seed 0).
 *  - exact-words variants tried next (2026-12-03, load 15–25; none reaches 80 % on every seed, so
 *    the scenario keeps its settings). `--fn` a steeper near-miss credit 0.5^|n − 5| (passing
 *    still needs exactly five words), with `--config '{"temperature":T}'`:
 *    T 0.5, 60 iterations, seed 0: base 25.0 % → 73.4 % (20 it.) → 83.6 % (40) → 75.0 % (60);
 *    T 0.5, 40 iterations, seeds 0 / 1 / 2: 83.6 / 50.8 / 71.1 %;
 *    T 0.3, 60 iterations, seeds 0 / 1 / 2: base 35.2 % → 71.1 / 63.3 / 64.8 % (lower temperature
 *    explores less: more groups with zero spread).
 *    Two of the eight held-out prompts ("Everything about this", "I ordered the") do not end in
 *    "was", and the policy's five-word pattern ("… from start to finish.") does not carry over to
 *    them; the spread between seeds is larger than any setting's effect.
 *  - mention-word re-checked (seed 0, unchanged settings): 6.3 % → 99.2 %.
 *  - one-sentence (2026-12-03 18:55–19:07, load 15–19 on 2 cores; the scenario's own settings:
 *    30 iterations, G 8, batch 32, lr 2e-4, β 0.04, temperature 0.7, 24 tokens): a review passes
 *    when it is one sentence that ends with . ! or ? and the model stopped by itself (the reward
 *    function's third argument `finished`; without it a review cut off by the length limit right
 *    after a full stop would pass). `--scenario static/scenarios/grpo/one-sentence.json --seeds
 *    0,1,2`: base 43.8 % → 100.0 / 99.2 / 98.4 % (220 / 242 / 224 s per seed); the training
 *    reward is 1.00 from about iteration 20; mean completion length 13.2 → 9.6 / 9.1 / 8.5 tokens,
 *    none cut off (so the length limit is no loophole here); KL (last 10 iterations) 0.45 / 0.29 /
 *    0.34 nats. The policy stops after its first sentence, on held-out prompts too.
 *    In the app itself (headless Chromium on this machine, the start page's Run at full size, seed 0
 *    and the app's evaluation seed 1000; 19:20, load 9–15): base 46.9 % (60/128) → 100 %
 *    (128/128), 30 iterations in 122 s.
 *  - exact-words variants, same day (load 15–19): `--config '{"batchSize":64}'` (8 prompts per
 *    update instead of 4), seed 0: 68.0 % (586 s; stopped before seeds 1 and 2);
 *    `--config '{"scaleRewards":"none"}'` (Dr. GRPO's unscaled advantages), seed 0: 60.9 % (398 s;
 *    stopped); `--config '{"numGenerations":16,"batchSize":64}'` (G 16, 4 prompts per update),
 *    seeds 0 / 1 / 2: 71.1 / 63.3 / 74.2 % (618 / 285 / 433 s). None reaches 80 % on one seed even,
 *    so exact-words keeps its settings; one-sentence is the second scenario that passes.
 *  - end-with-bang (then on branch `endbang`, since shipped as below) with `finished` closing its
 *    loophole: `--fn` = its graded reward, but a pass (1) needs `finished`, and a completion cut
 *    off right after a "!" gets only the late-"!" hint (≤ 0.5); 80 iterations, T 1, lr 3e-4,
 *    seeds 0 / 1 (19:33–19:45, load 9–13): base 0 % → 0 / 0 %. No fake passes any more, but the
 *    policy still writes to the limit (clipped 0.97–1.00, length 15 → 23.7 tokens) and harvests
 *    the hint ("What a lousy memoir! The …", reward ≈ 0.4): it never learns to stop after "!".
 *    Then a completion cut off by the limit scores 0 (so writing to the limit earns nothing):
 *      function reward(prompts, completions, { finished }) {
 *        return completions.map((c, i) => {
 *          if (!finished[i]) return 0;
 *          const t = c.trimEnd();
 *          if (t.endsWith('!')) return 1;
 *          const k = t.lastIndexOf('!');
 *          return k < 0 ? 0 : (0.5 * (k + 1)) / t.length;
 *        });
 *      }
 *    T 1, lr 3e-4 (the scenario's), 19:45–20:16, load 5–13: 80 iterations, seeds 0 / 1 / 2:
 *    0 → 0.0 / 95.3 / 0.0 % (411 / 403 / 422 s; seeds 0 and 2 sit for a while on "What a …! The
 *    … was …." and "Wow, …! I loved this film.", one sentence too many); 160 iterations
 *    (`--iterations 160 --eval-every 40`), seeds 0 / 1 / 2: 0 / 0 / 0 % at 40, 0 / 95.3 / 0 % at
 *    80, 0 / 96.9 / 0.8 % at 120, 93.8 / 91.4 / 90.6 % at 160 (607 / 397 / 428 s), length
 *    14.5–15.3 tokens, clipped ≈ 0 ("… Wow, the main character was impressive!"). So with
 *    `finished` end-with-bang passes on three seeds at 160 iterations; the shipped scenario
 *    (static/scenarios/grpo/end-with-bang.json) has this reward, T 1, lr 3e-4 and 160 iterations.
 *  - length-bias lab with a length-neutral reward ("lived" among the first four words; base lengths
 *    of passing and failing samples 15.6 vs 15.6 tokens), seed 0, loss_type grpo: the reward is
 *    solved within 3 iterations (zero-spread groups ≈ 1, held-out pass 33.6 % → 98.4 %), so nothing
 *    drives the length (17.5 → 17.3 tokens, first → last 10 iterations). A neutral reward that stays
 *    hard for 30 iterations is still to be found; dapo and dr_grpo were not run with it.
 *  - length-bias lab, 2026-12-03 (load 14–21 on 2 cores, 6–11 s/it). Base rates from 512 samples
 *    of the bundled model on the training prompts (scripts/experiments/length-probe.ts, shorter vs
 *    longer half at the median 15 tokens): the old "friend" reward is length-biased (0.4 % vs
 *    5.9 %); "in" among the first four words 14.7 % vs 14.6 % but learnt at once, like "lived";
 *    each of the first three words at most four letters 6.7 % vs 6.6 % (passing 16.5 tokens,
 *    failing 16.4), now the scenario's reward. With it (lr 2e-4, β 0.04, G 8, batch 32,
 *    `--eval-samples 8`), held-out pass 7.8 % → grpo / dapo / dr_grpo:
 *      seed 0, 30 iterations: 46.9 / 43.8 / 45.3 %; zero-spread groups 0.55–0.58;
 *      seed 1, 45 iterations: 53.1 / 53.1 / 46.9 %; zero-spread 0.56–0.62.
 *    Mean completion length, iterations 1–10 → 11–end: seed 0 grpo 15.7 → 15.4, dapo 16.0 →
 *    14.4, dr_grpo 15.7 → 14.8; seed 1 grpo 19.1 → 19.9, dapo 18.8 → 17.5, dr_grpo 18.6 → 18.7.
 *    Each iteration has the same 4 prompts under every loss type (one seeded order), so the
 *    paired difference per iteration is the measure; over iterations 11–end, grpo − dapo /
 *    grpo − dr_grpo (mean ± naive s.e. over iterations, which are autocorrelated):
 *      length      seed 0 +1.00 ± 0.41 / +0.64 ± 0.28;  seed 1 +2.40 ± 0.36 / +1.25 ± 0.42
 *      failing     seed 0 +1.40 ± 0.44 / +0.77 ± 0.52;  seed 1 +3.25 ± 0.63 / +1.87 ± 0.63
 *      truncated   seed 0 +0.05 ± 0.02 / +0.03 ± 0.02;  seed 1 +0.21 ± 0.03 / +0.11 ± 0.03
 *    and ≈ 0 over iterations 1–10 (−0.33 … +0.52). The direction is Liu et al.'s (grpo's wrong
 *    answers get longer); the size is a token or two in 30–45 iterations, smaller than the
 *    iteration-to-iteration noise (±2–3 tokens), so the overlay shows it as a gap in the
 *    averages, not a clean split of the lines. Commands:
 *      npx tsx scripts/experiments/verifiable.ts --scenario static/scenarios/grpo/length-bias-lab.json \
 *        --loss-types grpo,dapo,dr_grpo --eval-samples 8 [--seeds 1 --iterations 45]
 *
 * Writes `<out>/<scenario>-seed<k>[-<lossType>].jsonl` (TRL-named metrics per iteration) and
 * `<out>/<scenario>-summary.json`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { validateGroupScenario, type GroupScenario } from '../../src/lib/data/scenarios';
import { functionRewardSource, RewardFunctionRunner } from '../../src/lib/engine/reward-fn-runner';
import { GrpoTrainer } from '../../src/lib/rlhf/grpo';
import { validateGrpoConfig, type GrpoConfig } from '../../src/lib/rlhf/grpo-config';
import { evaluatePassRate, passRateSplit, type PassRateResult } from '../../src/lib/rlhf/pass-rate';
import { loadModel, readPrompts, setBackend, stats } from './pipeline-common';

const { values: a } = parseArgs({
  options: {
    scenario: { type: 'string' },
    seeds: { type: 'string', default: '0' },
    iterations: { type: 'string' },
    config: { type: 'string', default: '{}' },
    fn: { type: 'string' },
    /** Length lab: only these loss types (comma-separated), e.g. to run them in parallel. */
    'loss-types': { type: 'string' },
    threshold: { type: 'string' },
    'eval-samples': { type: 'string' },
    'eval-seed': { type: 'string', default: '1234' },
    'eval-every': { type: 'string', default: '0' },
    model: { type: 'string', default: 'public/models/tiny-gpt' },
    out: { type: 'string', default: 'runs/verifiable' },
    backend: { type: 'string', default: 'wasm' },
  },
  strict: true,
});

const OUT = resolve(a.out!);

/** Mean of the numbers among `xs` (null where there are none). */
const meanOf = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? stats(v).mean : null;
};
const fmt = (x: unknown, digits = 1) => (typeof x === 'number' ? x.toFixed(digits) : '–');

async function main(): Promise<void> {
  if (!a.scenario) throw new Error('--scenario static/scenarios/<id>.json is required');
  const s = validateGroupScenario(JSON.parse(readFileSync(resolve(a.scenario), 'utf8')), a.scenario);
  const sc: GroupScenario = s;
  await setBackend(a.backend!);
  const { model: base, tok, source } = loadModel(a.model!);
  const functions = a.fn
    ? [{ name: 'reward', code: readFileSync(resolve(a.fn), 'utf8'), weight: 1 }]
    : sc.rewardFunctions;
  const threshold = a.threshold !== undefined ? Number(a.threshold) : sc.passThreshold;
  const iterations = a.iterations !== undefined ? Number(a.iterations) : sc.iterations;
  const evalSamples = a['eval-samples'] !== undefined ? Number(a['eval-samples']) : sc.evalSamples;
  const evalSeed = Number(a['eval-seed']);
  const evalEvery = Number(a['eval-every']);
  const seeds = a.seeds!.split(',').map(Number);
  const all = readPrompts(`static/prompts/${sc.prompts}.json`);
  const { train, heldOut } = passRateSplit(all, sc.seed);
  const lossTypes =
    sc.kind === 'length-lab'
      ? sc.lossTypes.filter((t) => !a['loss-types'] || a['loss-types'].split(',').includes(t))
      : [null];
  mkdirSync(OUT, { recursive: true });
  const runner = new RewardFunctionRunner();
  const reward = functionRewardSource(functions, runner);
  console.log(
    `${sc.id}: weights from ${source}, backend ${tf.getBackend()}; ${train.length} train / ${heldOut.length} held-out prompts (${JSON.stringify(heldOut)}); pass at reward ≥ ${threshold}; ${iterations} iterations; seeds ${seeds.join(',')}`,
  );
  const summary: Record<string, unknown>[] = [];
  for (const seed of seeds)
    for (const lossType of lossTypes) {
      const config: GrpoConfig = validateGrpoConfig({
        ...sc.grpo,
        ...JSON.parse(a.config!),
        ...(lossType ? { lossType } : {}),
        seed,
      });
      const trainer = new GrpoTrainer({ model: base, reward, tokenizer: tok, prompts: train, config });
      const tag = `${sc.id}-seed${seed}${lossType ? `-${lossType}` : ''}`;
      const logFile = join(OUT, `${tag}.jsonl`);
      writeFileSync(logFile, '');
      console.log(`[${tag}] grpo config ${JSON.stringify(trainer.config)}`);
      const evaluate = () =>
        evaluatePassRate(trainer.policy, tok, reward, heldOut, {
          samples: evalSamples,
          seed: evalSeed,
          temperature: trainer.config.temperature,
          maxNewTokens: trainer.config.maxCompletionLength,
          threshold,
          query: (p) => trainer.queryFor(trainer.encodePrompt(p)),
        });
      const show = (what: string, r: PassRateResult) => {
        console.log(
          `[${tag}] ${what}: held-out pass rate ${(r.passRate * 100).toFixed(1)}% (${r.passed}/${r.total}), mean reward ${r.meanReward.toFixed(3)}, mean length ${r.meanLength.toFixed(1)}`,
        );
        for (const e of r.examples.slice(0, 4))
          console.log(`    ${e.pass ? '✓' : '✗'} ${JSON.stringify(e.prompt + '|' + e.text)}`);
      };
      const before = await evaluate();
      show('base', before);
      const t0 = performance.now();
      const curve: { iteration: number; passRate: number }[] = [];
      const passLengths: Record<'lab/length_passing' | 'lab/length_failing', number | null>[] = [];
      for (let i = 0; i < iterations; i++) {
        const { metrics: m, rollout, score } = await trainer.iteration();
        // Mean length (tokens) of the passing and the failing completions: Liu et al. 2025 show
        // GRPO's per-sequence normalisation lengthening the wrong answers.
        const lengthOf = (pass: boolean) => {
          const l = rollout.responseIds.filter((_, k) => score.rewards[k] >= threshold === pass).map((r) => r.length);
          return l.length ? stats(l).mean : null;
        };
        const lab = { 'lab/length_passing': lengthOf(true), 'lab/length_failing': lengthOf(false) };
        passLengths.push(lab);
        appendFileSync(logFile, JSON.stringify({ ...m, ...lab }) + '\n');
        if ((i + 1) % 5 === 0 || i === 0)
          console.log(
            `[${tag}] it ${String(i + 1).padStart(3)} reward ${m.reward.toFixed(2)} zero-std ${m.frac_reward_zero_std.toFixed(2)} len ${m['completions/mean_length'].toFixed(1)} clipped ${m['completions/clipped_ratio'].toFixed(2)} kl ${m.kl === null ? '-' : m.kl.toFixed(3)} ent ${m.entropy.toFixed(2)} | ${m['time/iteration_s'].toFixed(2)} s/it`,
          );
        if (evalEvery > 0 && (i + 1) % evalEvery === 0 && i + 1 < iterations) {
          const r = await evaluate();
          curve.push({ iteration: i + 1, passRate: r.passRate });
          console.log(`[${tag}]   held-out pass rate at ${i + 1}: ${(r.passRate * 100).toFixed(1)}%`);
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const after = await evaluate();
      show(
        `after ${iterations} iterations (${seconds.toFixed(0)} s, ${(seconds / iterations).toFixed(2)} s/it)`,
        after,
      );
      const lengths = trainer.history.map((m) => m['completions/mean_length']);
      summary.push({
        seed,
        lossType: trainer.config.lossType,
        iterations,
        seconds,
        basePassRate: before.passRate,
        finalPassRate: after.passRate,
        curve,
        lengthFirst10: stats(lengths.slice(0, 10)).mean,
        lengthLast10: stats(lengths.slice(-10)).mean,
        klLast10: stats(trainer.history.slice(-10).map((m) => m.kl ?? 0)).mean,
        failingLengthFirst10: meanOf(passLengths.slice(0, 10).map((x) => x['lab/length_failing'])),
        failingLengthLast10: meanOf(passLengths.slice(-10).map((x) => x['lab/length_failing'])),
        passingLengthFirst10: meanOf(passLengths.slice(0, 10).map((x) => x['lab/length_passing'])),
        passingLengthLast10: meanOf(passLengths.slice(-10).map((x) => x['lab/length_passing'])),
        clippedFirst10: stats(trainer.history.slice(0, 10).map((m) => m['completions/clipped_ratio'])).mean,
        clippedLast10: stats(trainer.history.slice(-10).map((m) => m['completions/clipped_ratio'])).mean,
        zeroStdMean: stats(trainer.history.map((m) => m.frac_reward_zero_std)).mean,
        examplesAfter: after.examples,
      });
      trainer.dispose();
    }
  console.log(`\n${sc.id} (${iterations} iterations, ${evalSamples} samples × ${heldOut.length} held-out prompts):`);
  for (const r of summary)
    console.log(
      `  seed ${r.seed}${sc.kind === 'length-lab' ? ` ${String(r.lossType).padEnd(8)}` : ''}: base ${((r.basePassRate as number) * 100).toFixed(1)}% → final ${((r.finalPassRate as number) * 100).toFixed(1)}%, length ${(r.lengthFirst10 as number).toFixed(1)} → ${(r.lengthLast10 as number).toFixed(1)} (failing ${fmt(r.failingLengthFirst10)} → ${fmt(r.failingLengthLast10)}, passing ${fmt(r.passingLengthFirst10)} → ${fmt(r.passingLengthLast10)}; truncated ${fmt(r.clippedFirst10, 2)} → ${fmt(r.clippedLast10, 2)}; zero-spread ${fmt(r.zeroStdMean, 2)}), ${(r.seconds as number).toFixed(0)} s`,
    );
  writeFileSync(
    join(
      OUT,
      `${sc.id}-seeds${seeds.join('_')}${a['loss-types'] ? `-${a['loss-types'].replace(/,/g, '_')}` : ''}-summary.json`,
    ),
    JSON.stringify({ scenario: sc.id, threshold, evalSamples, evalSeed, heldOut, runs: summary }, null, 2) + '\n',
  );
  runner.dispose();
  base.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
