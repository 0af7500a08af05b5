/**
 * Run report (issue 20, item 3): the model picks start / peak / end samples (kept rollouts first,
 * evaluation samples otherwise), the charts come from the history, and the HTML file is
 * self-contained, has no script, and escapes every piece of user text.
 */
import { describe, expect, it } from 'vitest';
import {
  buildRunReport,
  chartGeometry,
  escapeHtml,
  pickSampleIterations,
  reportHtml,
} from '../../src/lib/report/run-report';
import { packRolloutLog, type RolloutLog } from '../../src/lib/data/rollouts';
import type { RunRecord } from '../../src/lib/data/saved';

const EVIL = `<script>alert("x")</script><img src=x onerror=alert(1)> & 'quoted'`;

function run(over: Partial<RunRecord> = {}): RunRecord {
  const scores = [0.1, 0.5, 0.9, 0.4, 0.3];
  return {
    version: 1,
    id: 'run-1',
    kind: 'ppo',
    name: `PPO ${EVIL}`,
    createdAt: Date.UTC(2026, 0, 2, 3, 4),
    updatedAt: Date.UTC(2026, 0, 2, 4, 5),
    config: { lr: 3e-5, klCoef: 0.05, reward: { kind: 'labeller', note: EVIL }, adaptiveKl: null },
    parent: { kind: 'base', name: 'bundled tiny' },
    checkpointId: 'run-1',
    history: scores.map((s, i) => ({
      step: i + 1,
      metrics: { 'objective/scores': s, 'objective/kl': i * 0.2, 'custom/metric': i },
    })),
    evals: [
      { step: 0, samples: [{ prompt: 'p0', text: 'first' }], metrics: { 'eval/score': 0 } },
      { step: 5, samples: [{ prompt: 'p5', text: EVIL }], metrics: { 'eval/score': 1 } },
    ],
    status: 'paused',
    ...over,
  };
}

function log(iteration: number, completion = `text ${iteration}`): RolloutLog {
  return packRolloutLog('run-1', iteration, 'ppo', {
    prompts: [`prompt ${EVIL}`],
    completions: [completion],
    finished: [true],
    reward: [iteration / 10],
    sources: [{ name: 'sentiment', scores: [iteration / 10] }],
    gold: [0.5],
    tokens: [['a', 'b']],
    logprob: [[-1, -2]],
    refLogprob: [[-1, -1]],
    kl: [[0, 1]],
    advantage: [[0.5, -0.5]],
    entropy: [[1, 1]],
  });
}

describe('run report model', () => {
  it('picks the first, the kept iteration nearest the peak, and the last', () => {
    expect(pickSampleIterations(run(), [1, 2, 4, 5])).toEqual({ start: 1, peak: 2, end: 5 }); // peak step 3 → 2 (tie keeps the first)
    expect(pickSampleIterations(run(), [3, 5])).toEqual({ start: 3, peak: 3, end: 5 });
    expect(pickSampleIterations(run(), [])).toBeNull();
  });

  it('uses kept rollouts for samples, curves from the history, settings as text', () => {
    const logs = new Map([1, 3, 5].map((i) => [i, log(i)]));
    const r = buildRunReport(run(), logs);
    expect(r.samples.map((s) => [s.label, s.iteration, s.source])).toEqual([
      ['start', 1, 'rollouts'],
      ['peak', 3, 'rollouts'],
      ['end', 5, 'rollouts'],
    ]);
    expect(r.samples[1].rows[0]).toMatchObject({ completion: 'text 3', gold: 0.5 });
    expect(r.samples[1].rows[0].kl).toBeCloseTo(1, 6);
    expect(r.charts.map((c) => c.metric)).toEqual(['objective/scores', 'objective/kl', 'custom/metric']);
    expect(r.charts[0].points).toHaveLength(5);
    expect(Object.fromEntries(r.settings)).toMatchObject({ lr: '0.00003', klCoef: '0.05', adaptiveKl: 'off' });
    expect(r.steps).toBe(5);
    expect(r.alarms).toBeUndefined();
  });

  it('falls back to the evaluation samples when no rollouts were kept', () => {
    const r = buildRunReport(run());
    expect(r.samples.map((s) => [s.label, s.iteration, s.source])).toEqual([
      ['start', 0, 'evaluation'],
      ['peak', 5, 'evaluation'],
      ['end', 5, 'evaluation'],
    ]);
  });

  it('chart geometry maps the range onto the plot and breaks the line at NaN', () => {
    const g = chartGeometry(
      [
        { x: 1, y: 0 },
        { x: 2, y: NaN },
        { x: 3, y: 1 },
        { x: 4, y: 0.5 },
      ],
      100,
      60,
    );
    expect(g.path.match(/M/g)).toHaveLength(2);
    expect(g.path.startsWith(`M${g.left.toFixed(1)} ${g.bottom.toFixed(1)}`)).toBe(true);
    expect(g.dots).toHaveLength(1); // the lone first point
    expect([g.yMin, g.yMax, g.xMin, g.xMax]).toEqual(['0.00', '1.00', '1', '4']);
  });
});

describe('report HTML file', () => {
  const html = reportHtml(buildRunReport(run(), new Map([1, 3, 5].map((i) => [i, log(i, EVIL)])), []));

  it('escapes user text everywhere (name, settings, prompts, completions)', () => {
    expect(escapeHtml(EVIL)).toBe(
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &#39;quoted&#39;',
    );
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).toContain(`<title>PPO ${escapeHtml(EVIL)} — run report</title>`);
    expect(html.split(escapeHtml(EVIL)).length - 1).toBeGreaterThanOrEqual(1 + 1 + 3 + 3);
  });

  it('is self-contained: inline SVG charts, a CSP that forbids scripts, nothing fetched', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html.match(/<svg /g)).toHaveLength(3);
    expect(html).not.toMatch(/\b(src|href)=["']?(https?:|\/\/)/);
    expect(html).toContain('@media print');
    expect(html).toContain('<h2>Alarms</h2><p>No alarm fired.</p>');
  });

  it('shows the alarms given to the hook, escaped; none given, no section', () => {
    const withAlarm = reportHtml(
      buildRunReport(run(), new Map(), [{ iteration: 4, name: 'KL growing', message: `KL ${EVIL}` }]),
    );
    expect(withAlarm).toContain(`<strong>KL growing</strong> at step 4: KL ${escapeHtml(EVIL)}`);
    expect(reportHtml(buildRunReport(run()))).not.toContain('Alarms');
  });
});
