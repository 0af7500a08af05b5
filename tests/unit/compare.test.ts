/**
 * The Runs page's overlay of different algorithms (src/lib/data/compare.ts): real PPO and GRPO /
 * RLOO iterations from the engine give the metric rows (so the names mapped are the names the
 * trainers log), saved-record shapes around them (GRPO / RLOO records as the `runs` store will hold
 * them, kind 'grpo' / 'rloo'), a DPO record with evaluation samples; then one chart per shared
 * metric, units converted, runs on different rewards drawn apart.
 */
import { describe, expect, it } from 'vitest';
import { engineWithBundledModel } from './bundled-engine';
import {
  compareCharts,
  rewardGroups,
  rewardOf,
  SHARED_METRICS,
  sharedSeries,
  type CompareRun,
} from '../../src/lib/data/compare';
import { makeEval, type RunMetricRow } from '../../src/lib/data/runs';
import { defaultLabellerConfig } from '../../src/lib/rlhf/labellers';

const PROMPTS = ['The movie was', 'The food was', 'This book', 'My day was'];
const metric = (id: string) => SHARED_METRICS.find((m) => m.id === id)!;
const numbers = (o: object): Record<string, number> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v === 'number' && Number.isFinite(v)));

function record(id: string, kind: string, name: string, config: Record<string, unknown>, history: RunMetricRow[]) {
  return { id, kind, name, config, history, evals: [] } as CompareRun;
}

async function realRuns() {
  const engine = await engineWithBundledModel();
  const length = { kind: 'labeller' as const, labeller: defaultLabellerConfig('length') };
  const sentiment = { kind: 'labeller' as const, labeller: defaultLabellerConfig('sentiment') };

  await engine.ppoCreate({
    prompts: PROMPTS,
    evalPrompts: PROMPTS.slice(0, 2),
    config: { batchSize: 4, maxNewTokens: 4, miniBatches: 1, ppoEpochs: 1, seed: 1 },
    reward: length,
  });
  const ppo: RunMetricRow[] = [];
  await engine.ppoRun('p', { iterations: 2 }, (e) => {
    if (e.kind === 'iteration') ppo.push({ step: e.metrics.iteration, metrics: numbers(e.metrics) });
  });
  await engine.ppoDispose();

  const group = async (algo: 'grpo' | 'rloo', reward: typeof length | typeof sentiment) => {
    await engine.groupCreate({
      algo,
      config: { numGenerations: 2, batchSize: 4, maxCompletionLength: 4, seed: 1 },
      prompts: PROMPTS,
      reward,
    });
    const rows: RunMetricRow[] = [];
    await engine.groupRun(`g-${algo}`, { iterations: 2 }, (e) =>
      rows.push({ step: e.metrics.iteration, metrics: numbers(e.metrics) }),
    );
    await engine.groupDispose();
    return rows;
  };
  const grpo = await group('grpo', length);
  const rloo = await group('rloo', sentiment);
  return {
    ppo: record('ppo-1', 'ppo', 'PPO · reviews · length', { reward: length }, ppo),
    grpo: record('grpo-1', 'grpo', 'GRPO · reviews · length', { reward: length }, grpo),
    rloo: record('rloo-1', 'rloo', 'RLOO · reviews · sentiment', { reward: sentiment }, rloo),
  };
}

const DPO: CompareRun = {
  id: 'dpo-1',
  kind: 'dpo',
  name: 'DPO of tiny-gpt',
  config: { beta: 0.1 },
  history: [1, 2, 3].map((step) => ({ step, metrics: { loss: 0.7 - step * 0.1, 'rewards/margins': step * 0.1 } })),
  evals: [
    makeEval(0, [
      { prompt: 'a', text: 'the the the cat' },
      { prompt: 'b', text: 'the the the dog' },
    ]),
    makeEval(3, [
      { prompt: 'a', text: 'a happy cat sat' },
      { prompt: 'b', text: 'one brown dog ran' },
    ]),
  ],
};

describe('compare runs of different algorithms', () => {
  it('maps PPO, GRPO and RLOO metric names onto shared charts, in one unit, rewards apart', async () => {
    const { ppo, grpo, rloo } = await realRuns();
    // The mapped names are what the trainers logged.
    for (const k of ['objective/scores', 'objective/kl', 'policy/entropy_avg', 'response_length'])
      expect(ppo.history[0].metrics[k]).toBeTypeOf('number');
    for (const k of ['reward', 'kl', 'entropy', 'completions/mean_length'])
      expect(grpo.history[0].metrics[k]).toBeTypeOf('number');

    // Reward: PPO's objective/scores and GRPO's reward are the same quantity, read as logged.
    expect(sharedSeries(ppo, metric('reward'))).toEqual(
      ppo.history.map((r) => ({ x: r.step, y: r.metrics['objective/scores'] })),
    );
    expect(sharedSeries(grpo, metric('reward')).map((p) => p.y)).toEqual(grpo.history.map((r) => r.metrics.reward));
    // KL: GRPO's per-token kl × mean length = nats per completion, as PPO's objective/kl.
    const kl = sharedSeries(grpo, metric('kl'));
    expect(kl).toHaveLength(2);
    kl.forEach((p, i) =>
      expect(p.y).toBeCloseTo(grpo.history[i].metrics.kl * grpo.history[i].metrics['completions/mean_length'], 10),
    );
    expect(sharedSeries(ppo, metric('length')).map((p) => p.y)).toEqual(
      ppo.history.map((r) => r.metrics.response_length),
    );

    // Two rewards among the selection: length (PPO, GRPO) and sentiment (RLOO).
    const runs = [ppo, grpo, rloo, DPO];
    const groups = rewardGroups(runs);
    expect(groups.map((g) => [g.label, g.runIds])).toEqual([
      ['length labeller', ['ppo-1', 'grpo-1']],
      ['sentiment labeller', ['rloo-1']],
    ]);
    const charts = compareCharts(runs);
    const rewardCharts = charts.filter((c) => c.metric.id === 'reward');
    expect(rewardCharts.map((c) => [c.reward?.label, c.series.map((s) => s.name)])).toEqual([
      ['length labeller', ['PPO · PPO · reviews · length', 'GRPO · GRPO · reviews · length']],
      ['sentiment labeller', ['RLOO · RLOO · reviews · sentiment']],
    ]);
    expect(rewardCharts[1].absent).toEqual([
      { runId: 'dpo-1', name: 'DPO · DPO of tiny-gpt', why: expect.stringMatching(/offline DPO/) },
    ]);
    const klChart = charts.find((c) => c.metric.id === 'kl')!;
    expect(klChart.reward).toBeNull();
    expect(klChart.series.map((s) => [s.runId, s.source])).toEqual([
      ['ppo-1', 'objective/kl'],
      ['grpo-1', 'kl × completions/mean_length'],
      ['rloo-1', 'kl × completions/mean_length'],
    ]);
    // DPO shares the diversity of its evaluation samples.
    const d2 = charts.find((c) => c.metric.id === 'distinct-2')!;
    expect(d2.series.map((s) => s.runId)).toEqual(['dpo-1']);
    expect(d2.series[0].points.map((p) => p.x)).toEqual([0, 3]);
    expect(d2.absent.map((a) => a.runId)).toEqual(['ppo-1', 'grpo-1', 'rloo-1']);
  }, 180_000);

  it('one reward: a single reward chart; reward models and functions are told apart', () => {
    const row = (m: Record<string, number>) => [{ step: 1, metrics: m }];
    const a = record(
      'a',
      'ppo',
      'PPO · reviews · RM first',
      { reward: { kind: 'reward-model' } },
      row({ 'objective/scores': 1 }),
    );
    const b = record(
      'b',
      'grpo',
      'GRPO run',
      { reward: { kind: 'reward-model' }, rewardModel: { id: 'x', name: 'first' } },
      row({ reward: 2 }),
    );
    expect(rewardOf(a)).toEqual({ key: 'reward-model:first', label: 'reward model first' });
    expect(rewardOf(b)).toEqual(rewardOf(a));
    const charts = compareCharts([a, b]);
    expect(charts.filter((c) => c.metric.id === 'reward')).toHaveLength(1);
    expect(charts[0].reward).toBeNull();
    expect(charts[0].series.map((s) => s.points)).toEqual([[{ x: 1, y: 1 }], [{ x: 1, y: 2 }]]);

    const fn = (code: string) =>
      record('f', 'rloo', 'r', { reward: { kind: 'function', functions: [{ name: 'bang', code, weight: 1 }] } }, []);
    expect(rewardOf(fn('return 1'))!.label).toBe('JS bang');
    expect(rewardOf(fn('return 1'))!.key).not.toBe(rewardOf(fn('return 2'))!.key);
    expect(rewardOf(record('n', 'ppo', 'x', {}, []))).toEqual({ key: 'unknown', label: 'reward not recorded' });
    expect(rewardOf(DPO)).toBeNull();
    // A kind the table does not know (added later) is listed as not logging the metric, not a crash.
    const odd = record('o', 'kto', 'KTO run', {}, row({ loss: 1 }));
    const rewardChart = compareCharts([a, odd]).find((c) => c.metric.id === 'reward')!;
    expect(rewardChart.absent).toEqual([{ runId: 'o', name: 'KTO · KTO run', why: 'KTO does not log it' }]);
  });
});
