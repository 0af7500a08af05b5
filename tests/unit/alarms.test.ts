/**
 * Run-health alarms (src/lib/rlhf/alarms.ts): each alarm driven by a synthetic metric stream
 * that shows its pattern (it fires, with a suggestion the PPO table accepts) and by a healthy one
 * (it stays quiet); noise-awareness (confirmation over iterations, the warm-up, the gold check
 * against the run's own noise, spikes against the window's spread); real histories that must stay
 * quiet: one recorded with `scripts/experiments/ppo.ts` (defaults, sentiment reward), the five
 * healthy scripted scenarios recorded at full size in the app (tests/fixtures/scenario-histories,
 * `scripts/experiments/scenario-histories.ts`), and GRPO/RLOO runs recorded in Node
 * (`scripts/experiments/group-history.ts`); the staged collapse of the over-optimisation scenario
 * fires what it stages; episodes fire once; the rollout statistics; SFT/DPO and GRPO/RLOO alarms.
 */
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  ALARM_SETTINGS,
  AlarmEpisodes,
  alarmTimeline,
  evaluateOfflineAlarms,
  DEFAULT_ALARM_THRESHOLDS,
  entropyCollapse,
  evaluateAlarms,
  evaluateGroupAlarms,
  favouredWords,
  GROUP_ALARM_METRICS,
  gradSpike,
  klRewardPlateau,
  klRunaway,
  lengthDrift,
  lexicalProxy,
  modeCollapse,
  negativeKl,
  pendingAlarms,
  ratioDrift,
  robustStd,
  stepNoise,
  rewardHacking,
  rolloutStats,
  valueLossSpike,
  type Alarm,
  type AlarmCheck,
} from '../../src/lib/rlhf/alarms';
import { defaultLabellerConfig } from '../../src/lib/rlhf/labellers';
import { DEFAULT_PPO_CONFIG, PPO_SETTINGS, type PpoConfig } from '../../src/lib/rlhf/ppo-config';
import { DEFAULT_GRPO_CONFIG, GRPO_SETTINGS } from '../../src/lib/rlhf/grpo-config';
import { RLOO_SETTINGS } from '../../src/lib/rlhf/rloo-config';
import type { RunMetricRow } from '../../src/lib/data/saved';

const config: PpoConfig = { ...DEFAULT_PPO_CONFIG };
/**
 * The scripted scenarios that train a healthy policy (static/scenarios; your-own-taste needs a
 * person's labels). over-optimisation stages a collapse (β = 0, lr 10× the default) and is
 * checked on its own below.
 */
const SCENARIOS = ['positive-reviews', 'be-polite', 'short-and-sweet', 'never-say-x', 'reward-hacking'];

interface ScenarioFixture {
  iterations: number;
  config: PpoConfig;
  history: RunMetricRow[];
}

/** A recorded full-size scenario run, checked to be full size (not ?quick=1). */
function scenarioFixture(id: string): ScenarioFixture {
  const fx = JSON.parse(readFileSync(`tests/fixtures/scenario-histories/${id}.json`, 'utf8')) as ScenarioFixture;
  const scenario = JSON.parse(readFileSync(`static/scenarios/${id}.json`, 'utf8')) as {
    iterations: number;
    ppo: Partial<PpoConfig>;
  };
  expect(fx.iterations).toBe(scenario.iterations);
  expect(fx.config).toMatchObject({ ...scenario.ppo, batchSize: DEFAULT_PPO_CONFIG.batchSize });
  expect(fx.config.maxNewTokens).toBe(DEFAULT_PPO_CONFIG.maxNewTokens);
  const train = fx.history.filter((r) => 'objective/kl' in r.metrics);
  expect(train.length).toBe(scenario.iterations);
  for (const k of ['objective/kl', 'val/ratio', 'policy/approxkl_avg', 'rollouts/distinct_2'])
    expect(k in train[0].metrics, k).toBe(true);
  return fx;
}

/** Every alarm `history` fires, once per episode, evaluated after each of its iterations as the page does. */
function replay(fx: ScenarioFixture): Alarm[] {
  const steps = [...new Set(fx.history.map((r) => r.step))];
  const episodes = new AlarmEpisodes();
  return steps.flatMap((s) =>
    episodes.next(
      evaluateAlarms(
        fx.history.filter((r) => r.step <= s),
        { config: fx.config },
      ),
    ),
  );
}
const ctx = { config };

/** A deterministic wobble in [-1, 1] (no Math.random: same stream every run). */
const wobble = (i: number) => Math.sin(i * 12.9898) * 0.5 + Math.sin(i * 4.1414) * 0.5;

/** A healthy PPO run: score rising, KL rising to the adaptive target and holding, steady others. */
function healthy(i: number): Record<string, number> {
  return {
    'objective/kl': Math.min(4, 0.2 * i) + 0.3 * wobble(i),
    'objective/scores': Math.min(6, 0.3 * i) + 0.8 * wobble(i + 1),
    'policy/entropy_avg': 1.1 + 0.15 * wobble(i + 2),
    'policy/approxkl_avg': 0.02 + 0.01 * wobble(i + 3),
    'val/ratio': 1 + 0.02 * wobble(i + 4),
    'loss/value_avg': 6 + 3 * wobble(i + 5),
    grad_norm: 2 + 0.8 * wobble(i + 6),
    response_length: 12 + 2 * wobble(i + 7),
    'val/num_eos_tokens': 15,
    'rollouts/distinct_2': 0.8 + 0.05 * wobble(i + 8),
    'rollouts/identical_frac': 0,
    'rollouts/favoured_repeat_frac': 0.02 + 0.01 * wobble(i + 9),
  };
}

/** `n` iterations of `healthy` with `patch(i)` over them (rows with step i + 1, as the app logs). */
function run(n: number, patch: (i: number) => Record<string, number | undefined> = () => ({})): RunMetricRow[] {
  // Patches add keys or leave them out (`{}`); none holds undefined.
  return Array.from({ length: n }, (_, i) => ({
    step: i + 1,
    metrics: { ...healthy(i), ...patch(i) } as Record<string, number>,
  }));
}

/** The suggestion is a change the PPO table accepts. */
function expectValidSuggestion(a: Alarm): void {
  expect(a.message.length).toBeGreaterThan(20);
  expect(a.message.trim().endsWith('.')).toBe(true);
  expect(Object.keys(a.suggestion.change).length).toBeGreaterThan(0);
  expect(() => PPO_SETTINGS.validate({ ...config, ...a.suggestion.change })).not.toThrow();
  for (const [k, v] of Object.entries(a.suggestion.change))
    expect(JSON.stringify(v)).not.toBe(JSON.stringify(config[k as keyof PpoConfig]));
}

const CASES: { name: string; check: AlarmCheck; bad: RunMetricRow[]; id: string; cfg?: Partial<PpoConfig> }[] = [
  {
    name: 'KL far past the adaptive target',
    check: klRunaway,
    id: 'kl-runaway',
    bad: run(12, (i) => (i >= 10 ? { 'objective/kl': 15 } : {})),
  },
  {
    name: 'KL growing while the reward plateaus',
    check: klRewardPlateau,
    id: 'kl-reward-plateau',
    bad: run(20, (i) => ({
      'objective/kl': i < 10 ? 2 : 2 + 0.5 * (i - 10),
      'objective/scores': 3 + 0.6 * ((i % 3) - 1),
    })),
  },
  {
    name: 'entropy collapse',
    check: entropyCollapse,
    id: 'entropy-collapse',
    bad: run(15, (i) => ({ 'policy/entropy_avg': i < 5 ? 1.1 : Math.max(0.05, 1.1 - 0.2 * (i - 4)) })),
  },
  {
    name: 'distinct-2 of the rollouts falling',
    check: modeCollapse,
    id: 'mode-collapse',
    bad: run(15, (i) => ({ 'rollouts/distinct_2': i < 5 ? 0.8 : Math.max(0.1, 0.8 - 0.1 * (i - 4)) })),
  },
  {
    name: 'identical completions across prompts',
    check: modeCollapse,
    id: 'mode-collapse',
    bad: run(10, (i) => ({ 'rollouts/identical_frac': i < 8 ? 0 : 0.75 })),
  },
  {
    name: 'length drift to the maximum (every completion truncated)',
    check: lengthDrift,
    id: 'length-drift',
    bad: run(12, (i) => (i < 6 ? {} : { response_length: config.maxNewTokens, 'val/num_eos_tokens': i < 8 ? 4 : 0 })),
  },
  {
    name: 'length drift to nothing',
    check: lengthDrift,
    id: 'length-drift',
    bad: run(12, (i) => (i < 6 ? {} : { response_length: 0.5 })),
  },
  {
    name: 'negative KL beyond noise',
    check: negativeKl,
    id: 'negative-kl',
    bad: run(8, (i) => (i >= 5 ? { 'objective/kl': -2 } : {})),
  },
  {
    name: 'a gradient-norm spike',
    check: gradSpike,
    id: 'grad-spike',
    bad: run(12, (i) => (i === 11 ? { grad_norm: 40 } : {})),
  },
  {
    name: 'a value-loss spike',
    check: valueLossSpike,
    id: 'value-loss-spike',
    bad: run(12, (i) => (i === 11 ? { 'loss/value_avg': 200 } : {})),
  },
  {
    name: 'val/ratio far from 1',
    check: ratioDrift,
    id: 'ratio-drift',
    bad: run(5, (i) => (i === 4 ? { 'val/ratio': 2.3 } : {})),
  },
  {
    name: 'approximate KL far from 0',
    check: ratioDrift,
    id: 'ratio-drift',
    bad: run(5, (i) => (i === 4 ? { 'policy/approxkl_avg': 0.9 } : {})),
  },
  {
    name: 'a lexical proxy dominating',
    check: lexicalProxy,
    id: 'lexical-proxy',
    bad: run(12, (i) => ({ 'rollouts/favoured_repeat_frac': i < 6 ? 0.02 : 0.5 })),
  },
];

describe('each alarm on a synthetic stream', () => {
  test.each(CASES)('$name: fires with a valid suggestion, and is quiet on a healthy run', (c) => {
    const a = c.check(c.bad, ctx);
    expect(a, c.name).not.toBeNull();
    expect(a!.id).toBe(c.id);
    expect(a!.iteration).toBe(c.bad.at(-1)!.step);
    expectValidSuggestion(a!);
    expect(c.check(run(c.bad.length), ctx)).toBeNull();
    expect(c.check(run(60), ctx)).toBeNull();
  });

  test('KL runaway with a fixed β uses the per-token limit and suggests turning adaptive KL on', () => {
    const fixed = { ...config, adaptiveKl: null, klCoef: 0 };
    // 12-token completions: 40 nats is 3.3 per token (a loose leash), 90 is 7.5 (degenerate).
    expect(
      klRunaway(
        run(5, () => ({ 'objective/kl': 40, response_length: 12 })),
        { config: fixed },
      ),
    ).toBeNull();
    // The same KL on 6-token completions is past the limit.
    expect(
      klRunaway(
        run(5, () => ({ 'objective/kl': 40, response_length: 6 })),
        { config: fixed },
      ),
    ).not.toBeNull();
    const a = klRunaway(
      run(5, () => ({ 'objective/kl': 90, response_length: 12 })),
      { config: fixed },
    )!;
    expect(a.message).toMatch(/^KL to the reference is 90\.00 nats with a fixed β of 0, 7\.5 nats per token/);
    expect(a.suggestion.change.adaptiveKl).toEqual({ target: 4, horizon: 64 });
    expect(a.suggestion.change.klCoef).toBeGreaterThan(0);
    expect(a.suggestion.change.lr).toBeLessThan(fixed.lr);
  });

  test('a rising reward with a rising KL is not a plateau', () => {
    const rows = run(20, (i) => ({ 'objective/kl': 0.5 * i, 'objective/scores': 0.5 * i + 0.3 * wobble(i) }));
    expect(klRewardPlateau(rows, ctx)).toBeNull();
  });

  test('a length that was always at the maximum is not drift', () => {
    const rows = run(12, () => ({ response_length: config.maxNewTokens, 'val/num_eos_tokens': 0 }));
    expect(lengthDrift(rows, ctx)).toBeNull();
  });

  test('the over-long penalty is suggested for length drift to the maximum, and raised when on', () => {
    const rows = CASES.find((c) => c.name.startsWith('length drift to the maximum'))!.bad;
    expect(lengthDrift(rows, ctx)!.suggestion.change).toEqual({ missingEosPenalty: 1 });
    expect(lengthDrift(rows, { config: { ...config, missingEosPenalty: 1 } })!.suggestion.change).toEqual({
      missingEosPenalty: 2,
    });
  });

  test('negative KL names the sampling settings and suggests k3; brief dips are noise', () => {
    const a = negativeKl(
      run(8, (i) => (i >= 5 ? { 'objective/kl': -2 } : {})),
      ctx,
    )!;
    expect(a.message).toMatch(/sampling settings/);
    expect(a.suggestion.change).toEqual({ klEstimator: 'k3' });
    expect(
      negativeKl(
        run(8, (i) => (i === 7 ? { 'objective/kl': -3 } : { 'objective/kl': -0.2 })),
        ctx,
      ),
    ).toBeNull();
  });

  test('reward hacking: proxy up and gold down beyond their noise, confirmed at two evaluations, read from eval rows', () => {
    const evalRows = (score: number[], gold: number[]): RunMetricRow[] =>
      score.map((s, i) => ({ step: i * 2, metrics: { 'eval/score': s, 'eval/gold_score': gold[i] } }));
    const n = 16;
    const proxy = Array.from({ length: n }, (_, i) => 0.3 * i + 0.1 * wobble(i + 3));
    // Gao et al.: the gold score rises, peaks at evaluation 8 and falls while the proxy keeps rising.
    const goldArc = Array.from({ length: n }, (_, i) => (i < 8 ? 0.5 * i : 4 - 0.6 * (i - 8)) + 0.2 * wobble(i));
    const hacked = [...run(2 * n), ...evalRows(proxy, goldArc)].sort((a, b) => a.step - b.step);
    const a = rewardHacking(hacked, ctx)!;
    expect(a.id).toBe('reward-hacking');
    expect(a.iteration).toBe(2 * (n - 1));
    expect(a.message).toMatch(/^Reward hacking\? Since iteration 1[46] the reward of the evaluation samples rose/);
    expectValidSuggestion(a);
    expect(evaluateAlarms(hacked, ctx).map((x) => x.id)).toEqual(['reward-hacking']);
    // The same fall seen at one evaluation only is not confirmed yet.
    const firstFall = goldArc.findIndex((g, i) => i > 9 && g < 3);
    const once = evalRows(proxy.slice(0, firstFall + 1), [...goldArc.slice(0, firstFall), -5]);
    expect(rewardHacking(evalRows(proxy.slice(0, firstFall), goldArc.slice(0, firstFall)), ctx)).toBeNull();
    expect(rewardHacking(once, ctx)).toBeNull();
    // Gold that only wobbles (noise as large as the dips), gold that rises, too few evaluations: quiet.
    const noisy = Array.from({ length: n }, (_, i) => 3 + 1.2 * wobble(i * 7 + 1));
    expect(rewardHacking(evalRows(proxy, noisy), ctx)).toBeNull();
    expect(
      rewardHacking(
        evalRows(
          proxy,
          proxy.map((x, i) => x + 0.2 * wobble(i)),
        ),
        ctx,
      ),
    ).toBeNull();
    expect(rewardHacking(evalRows([1, 2, 3, 4], [2, 1.5, 1, 0.5]), ctx)).toBeNull();
    // The proxy falling with the gold (a collapse, not hacking) is not this alarm.
    expect(rewardHacking(evalRows(goldArc, goldArc), ctx)).toBeNull();
    // Without a gold score there is nothing to compare.
    expect(rewardHacking([{ step: 0, metrics: { 'eval/score': 1 } }], ctx)).toBeNull();
  });
});

describe('the whole set', () => {
  test('a healthy synthetic run of 100 iterations raises no alarm at any iteration', () => {
    const rows = run(100);
    for (let n = 1; n <= rows.length; n++) expect(evaluateAlarms(rows.slice(0, n), ctx)).toEqual([]);
  });

  test('the healthy history recorded with scripts/experiments/ppo.ts (defaults) raises no alarm', () => {
    const fixture = JSON.parse(readFileSync('tests/fixtures/ppo-healthy-history.json', 'utf8')) as {
      config: PpoConfig;
      history: RunMetricRow[];
    };
    expect(fixture.history.length).toBeGreaterThanOrEqual(30);
    expect(fixture.history[0].metrics['rollouts/distinct_2']).toBeGreaterThan(0);
    for (let n = 1; n <= fixture.history.length; n++)
      expect(evaluateAlarms(fixture.history.slice(0, n), { config: fixture.config })).toEqual([]);
  });

  test.each(SCENARIOS)('the %s scenario, recorded at full size in the app, raises no alarm at any iteration', (id) => {
    const fx = scenarioFixture(id);
    expect(fx.history.filter((r) => 'eval/gold_score_se' in r.metrics).length).toBeGreaterThan(10);
    expect(replay(fx)).toEqual([]);
  });

  test('the over-optimisation scenario at full size (β = 0, a staged collapse) raises the alarms of what it stages', () => {
    const fx = scenarioFixture('over-optimisation');
    const fired = replay(fx);
    const at = (id: string) => fired.find((a) => a.id === id)?.iteration;
    // Recorded: KL 186 nats (7.8 per token), entropy 1.18 → 0.04, every completion at 24 tokens,
    // gold 0.24 → 0 while the proxy rose 6 points; each of these is what the scenario shows.
    for (const id of ['kl-runaway', 'entropy-collapse', 'length-drift', 'mode-collapse', 'reward-hacking'])
      expect(at(id), id).toBeGreaterThan(5);
    // Reward hacking only once the gold has turned down from its peak.
    const evals = fx.history.filter((r) => 'eval/gold_score' in r.metrics);
    const peak = evals.reduce((p, r) => (r.metrics['eval/gold_score'] > p.metrics['eval/gold_score'] ? r : p));
    expect(at('reward-hacking')!).toBeGreaterThan(peak.step + 10);
    // No alarm during the warm-up iterations.
    expect(fired.every((a) => a.iteration > DEFAULT_ALARM_THRESHOLDS.warmupIterations)).toBe(true);
  });

  test('a condition fires only when it held after confirmIterations iterations running; pending meanwhile', () => {
    const once = run(12, (i) => (i === 11 ? { 'objective/kl': 15 } : {}));
    expect(klRunaway(once, ctx)).not.toBeNull();
    expect(evaluateAlarms(once, ctx)).toEqual([]);
    expect(pendingAlarms(once, ctx).map((a) => a.id)).toEqual(['kl-runaway']);
    // A one-iteration excursion that comes back is never confirmed.
    const back = run(14, (i) => (i === 11 ? { 'objective/kl': 15 } : {}));
    for (let n = 1; n <= back.length; n++) expect(evaluateAlarms(back.slice(0, n), ctx)).toEqual([]);
    const twice = run(13, (i) => (i >= 11 ? { 'objective/kl': 15 } : {}));
    expect(evaluateAlarms(twice, ctx).map((a) => [a.id, a.iteration])).toEqual([['kl-runaway', 13]]);
    const three = { config, thresholds: { ...DEFAULT_ALARM_THRESHOLDS, confirmIterations: 3 } };
    expect(evaluateAlarms(twice, three)).toEqual([]);
    expect(
      evaluateAlarms(
        run(14, (i) => (i >= 11 ? { 'objective/kl': 15 } : {})),
        three,
      ),
    ).toHaveLength(1);
  });

  test('val/ratio and approximate KL are not judged during the warm-up iterations', () => {
    const early = run(3, (i) => (i <= 1 ? { 'policy/approxkl_avg': 0.9, 'val/ratio': 2 } : {}));
    for (let n = 1; n <= early.length; n++) {
      expect(ratioDrift(early.slice(0, n), ctx)).toBeNull();
      expect(evaluateAlarms(early.slice(0, n), ctx)).toEqual([]);
    }
    const late = run(8, (i) => (i >= 6 ? { 'policy/approxkl_avg': 0.9 } : {}));
    expect(evaluateAlarms(late, ctx).map((a) => a.id)).toEqual(['ratio-drift']);
    const none = { config, thresholds: { ...DEFAULT_ALARM_THRESHOLDS, warmupIterations: 0 } };
    expect(ratioDrift(early.slice(0, 1), none)!.id).toBe('ratio-drift');
  });

  test('a spike within the noise of a wildly swinging metric is not a spike', () => {
    // Value loss swinging between 1 and 40: 30 is 5× its median but within its spread.
    const swing = run(12, (i) => ({ 'loss/value_avg': i === 11 ? 30 : i % 2 ? 40 : 1 }));
    expect(valueLossSpike(swing, ctx)).toBeNull();
    expect(
      valueLossSpike(
        run(12, (i) => (i === 11 ? { 'loss/value_avg': 200 } : {})),
        ctx,
      ),
    ).not.toBeNull();
  });

  test('stepNoise estimates the noise of one point, not the trend', () => {
    const trend = Array.from({ length: 40 }, (_, i) => 2 * i + 0.5 * wobble(i));
    const flat = Array.from({ length: 40 }, (_, i) => 0.5 * wobble(i));
    expect(stepNoise(trend)).toBeCloseTo(stepNoise(flat), 10);
    expect(stepNoise(flat)).toBeGreaterThan(0.1);
    expect(stepNoise(flat)).toBeLessThan(0.6);
    expect(stepNoise([1, 2])).toBeNaN();
    expect(robustStd([1, 1, 1, 100])).toBe(0);
  });

  test('the thresholds are one settings table with a help line each', () => {
    for (const k of ALARM_SETTINGS.keys) expect(ALARM_SETTINGS.help(k).length).toBeGreaterThan(20);
    expect(ALARM_SETTINGS.validate({})).toEqual(DEFAULT_ALARM_THRESHOLDS);
    expect(() => ALARM_SETTINGS.validate({ window: 1 })).toThrow(/window/);
  });

  test('thresholds from the table change what fires', () => {
    const rows = run(12, (i) => (i >= 10 ? { 'objective/kl': 15 } : {}));
    expect(klRunaway(rows, { config, thresholds: { ...DEFAULT_ALARM_THRESHOLDS, klRunawayFactor: 5 } })).toBeNull();
  });
});

describe('AlarmEpisodes', () => {
  const kl = run(12, (i) => (i >= 10 ? { 'objective/kl': 15 } : {}));
  const alarm = klRunaway(kl, ctx)!;

  test('fires once per episode, again only after the condition was quiet long enough', () => {
    const ep = new AlarmEpisodes(3);
    expect(ep.next([alarm])).toEqual([alarm]);
    expect(ep.next([alarm])).toEqual([]);
    expect(ep.next([])).toEqual([]);
    expect(ep.next([alarm])).toEqual([]); // a flicker continues the episode
    expect(ep.next([])).toEqual([]);
    expect(ep.next([])).toEqual([]);
    expect(ep.next([])).toEqual([]);
    expect(ep.next([alarm])).toEqual([alarm]); // quiet 3 times: a new episode
    ep.reset();
    expect(ep.next([alarm])).toEqual([alarm]);
  });

  test('different alarms have their own episodes', () => {
    const ep = new AlarmEpisodes();
    const other = { ...alarm, id: 'grad-spike' as const };
    expect(ep.next([alarm])).toEqual([alarm]);
    expect(ep.next([alarm, other])).toEqual([other]);
  });
});

describe('rolloutStats and favouredWords', () => {
  test('distinct-n, identical completions and repeated favoured words', () => {
    const texts = ['great great great movie', 'great great great movie', 'a dull plot', 'fine acting here'];
    const favoured = favouredWords(defaultLabellerConfig('sentiment'))!;
    expect(favoured('great')).toBe(true);
    expect(favoured('dull')).toBe(false);
    expect(favoured('movie')).toBe(false);
    const s = rolloutStats(texts, favoured);
    expect(s['rollouts/identical_frac']).toBe(0.5);
    // 14 words; "great" repeated twice in each of the first two texts.
    expect(s['rollouts/favoured_repeat_frac']).toBeCloseTo(4 / 14, 12);
    expect(s['rollouts/distinct_1']).toBeCloseTo(8 / 14, 12);
    expect(rolloutStats([])).toEqual({});
    expect('rollouts/favoured_repeat_frac' in rolloutStats(texts)).toBe(false);
  });

  test('keyword labellers favour their included words; length has no lexicon', () => {
    const kw = favouredWords(defaultLabellerConfig('keyword'))!;
    expect(kw('please')).toBe(true);
    expect(kw('thank')).toBe(true);
    expect(kw('hate')).toBe(false);
    expect(favouredWords(defaultLabellerConfig('length'))).toBeNull();
    expect(favouredWords({ ...defaultLabellerConfig('sentiment'), polarity: 'negative' } as never)!('awful')).toBe(
      true,
    );
  });
});

describe('SFT and DPO alarms', () => {
  const cfg = { learningRate: 1e-4, epochs: 3 };
  /** Steps with a falling training loss and steady gradients; an eval row after each epoch of 10 steps. */
  function offline(
    steps: number,
    evalLoss: number[],
    patch: (i: number) => Record<string, number | undefined> = () => ({}),
  ) {
    const rows: RunMetricRow[] = [];
    for (let i = 1; i <= steps; i++) {
      rows.push({
        step: i,
        metrics: { loss: 2 - i * 0.02, grad_norm: 1 + 0.2 * wobble(i), ...patch(i) } as Record<string, number>,
      });
      if (i % 10 === 0 && evalLoss[i / 10 - 1] !== undefined)
        rows.push({ step: i, metrics: { eval_loss: evalLoss[i / 10 - 1] } });
    }
    return rows;
  }

  test('a gradient-norm spike warns with a lower learning rate for the next run', () => {
    const rows = offline(20, [], (i) => (i === 20 ? { grad_norm: 12 } : {}));
    const [a] = evaluateOfflineAlarms(rows, cfg);
    expect(a.id).toBe('offline-grad-spike');
    expect(a.iteration).toBe(20);
    expect(a.suggestion.change).toEqual({ learningRate: 5e-5 });
    expect(evaluateOfflineAlarms(offline(20, []), cfg)).toEqual([]);
  });

  test('held-out loss rising while the training loss falls is over-fitting; a falling one is not', () => {
    const over = evaluateOfflineAlarms(offline(30, [1.5, 1.4, 1.7]), cfg);
    expect(over.map((a) => a.id)).toEqual(['offline-overfit']);
    expect(over[0].suggestion.change).toEqual({ epochs: 2, learningRate: 5e-5 });
    expect(evaluateOfflineAlarms(offline(30, [1.5, 1.4, 1.3]), cfg)).toEqual([]);
    // Within the noise allowance (10 % over the best).
    expect(evaluateOfflineAlarms(offline(30, [1.5, 1.4, 1.45]), cfg)).toEqual([]);
  });

  test('alarmTimeline fires each episode once over a whole history', () => {
    const rows = offline(40, [], (i) => (i === 20 || i === 21 ? { grad_norm: 12 } : {}));
    const fired = alarmTimeline(rows, (h) => evaluateOfflineAlarms(h, cfg));
    expect(fired.map((a) => [a.id, a.iteration])).toEqual([['offline-grad-spike', 20]]);
  });
});

describe('GRPO and RLOO alarms', () => {
  const gcfg = { temperature: 0.7, beta: 0.04, learningRate: 5e-5, maskTruncatedCompletions: false };
  /** A healthy GRPO run in TRL's names: reward rising, some zero-spread groups, KL per token small. */
  function group(n: number, patch: (i: number) => Record<string, number | undefined> = () => ({})): RunMetricRow[] {
    return Array.from({ length: n }, (_, i) => ({
      step: i + 1,
      metrics: {
        reward: Math.min(4, 0.1 * i) + 1.5 * wobble(i),
        frac_reward_zero_std: 0.25 + 0.25 * wobble(i + 1),
        'completions/mean_length': 13 + 2 * wobble(i + 2),
        'completions/clipped_ratio': 0.06 + 0.06 * wobble(i + 3),
        entropy: 1.1 + 0.15 * wobble(i + 4),
        kl: Math.min(0.1, 0.004 * i) + 0.01 * wobble(i + 5),
        ...patch(i),
      } as Record<string, number>,
    }));
  }
  const ids = (rows: RunMetricRow[], cfg = gcfg) => evaluateGroupAlarms(rows, cfg).map((a) => a.id);

  test('a healthy synthetic run of 100 iterations raises none at any iteration', () => {
    const rows = group(100);
    for (let n = 1; n <= rows.length; n++) expect(evaluateGroupAlarms(rows.slice(0, n), gcfg)).toEqual([]);
  });

  test('every group with zero spread (frac_reward_zero_std → 1) fires, confirmed, with a live change', () => {
    const rows = group(12, (i) => (i >= 8 ? { frac_reward_zero_std: 1 } : {}));
    // 3 iterations running make the condition (at 11); confirmed one iteration later.
    expect(ids(rows.slice(0, 11))).toEqual([]);
    const [a] = evaluateGroupAlarms(rows.slice(0, 12), gcfg);
    expect(a.id).toBe('zero-spread');
    expect(a.iteration).toBe(12);
    expect(a.message).toMatch(/100 % of the groups gave every completion the same reward/);
    expect(a.suggestion.change).toEqual({ temperature: 1.05 });
    expect(() => GRPO_SETTINGS.validate({ ...DEFAULT_GRPO_CONFIG, ...a.suggestion.change })).not.toThrow();
  });

  test('every completion truncated (clipped_ratio → 1) fires; the suggestion masks them, or lowers temperature when masked', () => {
    const rows = group(12, (i) => (i >= 7 ? { 'completions/clipped_ratio': 1 } : {}));
    const [a] = evaluateGroupAlarms(rows, gcfg);
    expect(a.id).toBe('all-truncated');
    expect(a.suggestion.change).toEqual({ maskTruncatedCompletions: true });
    const masked = evaluateGroupAlarms(rows, { ...gcfg, maskTruncatedCompletions: true })[0];
    expect(masked.suggestion.change).toEqual({ temperature: 0.56 });
    expect(masked.suggestion.text).toMatch(/over-long penalty/);
  });

  test('entropy collapse reads TRL’s entropy and suggests a higher β and a lower learning rate', () => {
    const rows = group(16, (i) => ({ entropy: i < 5 ? 1.1 : Math.max(0.05, 1.1 - 0.2 * (i - 4)) }));
    const [a] = evaluateGroupAlarms(rows, gcfg);
    expect(a.id).toBe('entropy-collapse');
    expect(a.suggestion.change).toEqual({ beta: 0.08, learningRate: 2.5e-5 });
    expect(() => RLOO_SETTINGS.validate({ ...RLOO_SETTINGS.defaults, ...a.suggestion.change })).not.toThrow();
  });

  test('KL per completion growing while the reward plateaus fires; none without a KL (β = 0)', () => {
    const rows = group(24, (i) => ({
      kl: i < 10 ? 0.02 : 0.02 + 0.04 * (i - 10),
      reward: 3 + 0.6 * ((i % 3) - 1),
    }));
    expect(ids(rows)).toEqual(['kl-reward-plateau']);
    expect(evaluateGroupAlarms(rows, gcfg)[0].message).toMatch(/nats per completion/);
    const noKl = rows.map((r) => {
      const { kl: _kl, ...rest } = r.metrics;
      return { step: r.step, metrics: rest };
    });
    expect(ids(noKl)).toEqual([]);
  });

  test('healthy GRPO and RLOO histories recorded in Node (defaults, sentiment reward) raise none', () => {
    for (const algo of ['grpo', 'rloo']) {
      const fx = JSON.parse(readFileSync(`tests/fixtures/${algo}-healthy-history.json`, 'utf8')) as {
        config: typeof gcfg;
        history: RunMetricRow[];
      };
      expect(fx.history.length).toBeGreaterThanOrEqual(100);
      for (const k of GROUP_ALARM_METRICS) expect(k in fx.history[0].metrics, `${algo} ${k}`).toBe(true);
      for (let n = 1; n <= fx.history.length; n++)
        expect(evaluateGroupAlarms(fx.history.slice(0, n), fx.config), `${algo} at ${n}`).toEqual([]);
    }
  });
});
