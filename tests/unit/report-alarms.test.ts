/**
 * The run report's alarms are the saved history replayed through the Train page's checks
 * (src/lib/report/report-alarms.ts): the recorded full-size scenario runs (tests/fixtures/
 * scenario-histories) as saved PPO run records, and a GRPO record with every completion truncated.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { replayAlarms } from '../../src/lib/report/report-alarms';
import { buildRunReport, reportHtml } from '../../src/lib/report/run-report';
import type { RunMetricRow, RunRecord } from '../../src/lib/data/saved';

function record(kind: RunRecord['kind'], config: Record<string, unknown>, history: RunMetricRow[]): RunRecord {
  return {
    version: 1,
    id: `run-${kind}`,
    kind,
    name: `a ${kind} run`,
    createdAt: 0,
    updatedAt: 0,
    config,
    parent: { kind: 'base', name: 'tiny-gpt' },
    checkpointId: null,
    history,
    evals: [],
    status: 'done',
  } as unknown as RunRecord;
}

const fixture = (id: string) =>
  JSON.parse(readFileSync(`tests/fixtures/scenario-histories/${id}.json`, 'utf8')) as {
    config: Record<string, unknown>;
    history: RunMetricRow[];
  };

describe('report alarms', () => {
  test('a saved PPO run that collapsed lists what fired, in order, with one sentence each; the report shows them', () => {
    const fx = fixture('over-optimisation');
    const alarms = replayAlarms(record('ppo', fx.config, fx.history))!;
    const names = alarms.map((a) => a.name);
    for (const n of ['kl runaway', 'entropy collapse', 'length drift', 'reward hacking']) expect(names).toContain(n);
    expect(alarms.map((a) => a.iteration)).toEqual([...alarms.map((a) => a.iteration)].sort((a, b) => a - b));
    for (const a of alarms) expect(a.message.length).toBeGreaterThan(20);
    const report = buildRunReport(record('ppo', fx.config, fx.history), new Map(), alarms);
    const html = reportHtml(report);
    expect(html).toContain('kl runaway');
    expect(html).not.toContain('No alarm fired.');
  });

  test('a healthy saved PPO run lists none, and its report says so', () => {
    const fx = fixture('positive-reviews');
    const r = record('ppo', fx.config, fx.history);
    expect(replayAlarms(r)).toEqual([]);
    expect(reportHtml(buildRunReport(r, new Map(), replayAlarms(r)))).toContain('No alarm fired.');
  });

  test('a GRPO run whose completions all hit the limit lists the truncation alarm; a reward model has no section', () => {
    const history: RunMetricRow[] = Array.from({ length: 12 }, (_, i) => ({
      step: i + 1,
      metrics: {
        reward: 0.5,
        frac_reward_zero_std: 0.2,
        'completions/mean_length': 24,
        'completions/clipped_ratio': 1,
        entropy: 1,
        kl: 0.01,
      },
    }));
    const alarms = replayAlarms(record('grpo', { temperature: 1, beta: 0.04, learningRate: 1e-5 }, history))!;
    expect(alarms.map((a) => a.name)).toContain('all truncated');
    expect(replayAlarms(record('reward', {}, []))).toBeUndefined();
  });
});
