/**
 * Run-health alarms (src/lib/rlhf/alarms.ts): each alarm driven by a synthetic metric stream
 * that shows its pattern (it fires, with a suggestion the PPO table accepts) and by a healthy one
 * (it stays quiet); a healthy history recorded with `scripts/experiments/ppo.ts` (defaults,
 * sentiment reward) raises none; episodes fire once; the rollout statistics.
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
  favouredWords,
  gradSpike,
  klRewardPlateau,
  klRunaway,
  lengthDrift,
  lexicalProxy,
  modeCollapse,
  negativeKl,
  ratioDrift,
  rewardHacking,
  rolloutStats,
  valueLossSpike,
  type Alarm,
  type AlarmCheck,
} from '../../src/lib/rlhf/alarms';
import { defaultLabellerConfig } from '../../src/lib/rlhf/labellers';
import { DEFAULT_PPO_CONFIG, PPO_SETTINGS, type PpoConfig } from '../../src/lib/rlhf/ppo-config';
import type { RunMetricRow } from '../../src/lib/data/saved';

const config: PpoConfig = { ...DEFAULT_PPO_CONFIG };
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

  test('KL runaway with a fixed β uses the absolute limit and suggests turning adaptive KL on', () => {
    const fixed = { ...config, adaptiveKl: null, klCoef: 0 };
    expect(
      klRunaway(
        run(5, () => ({ 'objective/kl': 9 })),
        { config: fixed },
      ),
    ).toBeNull();
    const a = klRunaway(
      run(5, () => ({ 'objective/kl': 25 })),
      { config: fixed },
    )!;
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

  test('reward hacking: proxy up and gold down over the evaluations, read from eval rows', () => {
    const evalRows = (score: number[], gold: number[]): RunMetricRow[] =>
      score.map((s, i) => ({ step: i * 5, metrics: { 'eval/score': s, 'eval/gold_score': gold[i] } }));
    const hacked = [...run(20), ...evalRows([1, 2, 3, 4], [2, 1.5, 1, 0.5])].sort((a, b) => a.step - b.step);
    const a = rewardHacking(hacked, ctx)!;
    expect(a.id).toBe('reward-hacking');
    expect(a.iteration).toBe(15);
    expect(a.message).toMatch(/^Reward hacking\? Over the last 4 evaluations the reward rose \(1\.00 → 4\.00\)/);
    expectValidSuggestion(a);
    expect(rewardHacking(evalRows([1, 2, 3, 4], [1, 1.5, 2, 2.5]), ctx)).toBeNull();
    expect(rewardHacking(evalRows([1, 2], [2, 1]), ctx)).toBeNull();
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
