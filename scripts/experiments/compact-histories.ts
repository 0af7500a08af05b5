/**
 * Compact the full-size scenario histories that `scenario-histories.ts` dumped into the unit-test
 * fixtures of the run-health alarms: only the metrics the PPO alarms read (`PPO_ALARM_METRICS`),
 * rounded to 4 significant digits, plus the run's settings and a summary. Each evaluation row gets
 * the standard errors the Train page logs with it (`evalScoreMetrics` over the evaluation's own
 * saved samples: the page built for the measurement predates those two metrics).
 *
 *   npx tsx scripts/experiments/compact-histories.ts runs/scenario-histories tests/fixtures/scenario-histories
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunMetricRow } from '../../src/lib/data/saved';
import type { PpoEvalSample } from '../../src/lib/engine/types';
import { evalScoreMetrics, PPO_ALARM_METRICS } from '../../src/lib/rlhf/alarms';

const [from = 'runs/scenario-histories', to = 'tests/fixtures/scenario-histories'] = process.argv.slice(2);
mkdirSync(to, { recursive: true });
const keep = new Set<string>(PPO_ALARM_METRICS);
const round = (x: number) => Number(x.toPrecision(4));

for (const f of readdirSync(from).filter((x) => x.endsWith('.json'))) {
  const d = JSON.parse(readFileSync(join(from, f), 'utf8')) as {
    scenario: string;
    seconds: number;
    iterations: number;
    stages?: string[];
    config: unknown;
    history: RunMetricRow[];
    evals: { iteration: number; samples: PpoEvalSample[] }[];
  };
  const evalAt = new Map(d.evals.map((e) => [e.iteration, e.samples]));
  const history = d.history.map((r) => {
    let m = r.metrics;
    if ('eval/score' in m && evalAt.has(r.step)) m = { ...m, ...evalScoreMetrics(evalAt.get(r.step)!) };
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(m)) if (keep.has(k) && Number.isFinite(v)) metrics[k] = round(v);
    return { step: r.step, metrics };
  });
  const train = d.history.filter((r) => 'objective/kl' in r.metrics);
  const evals = d.history.filter((r) => 'eval/gold_score' in r.metrics);
  const last = train.at(-1)?.metrics ?? {};
  const out = {
    scenario: d.scenario,
    recordedWith: `E2E_OUT_DIR=dist-measure npx tsx scripts/experiments/scenario-histories.ts ${d.scenario} (full size, the scenario's defaults, headless Chromium, wasm)`,
    seconds: Math.round(d.seconds),
    iterations: d.iterations,
    stages: d.stages ?? null,
    final: {
      'objective/kl': round(last['objective/kl'] ?? NaN),
      'objective/scores': round(last['objective/scores'] ?? NaN),
      'eval/score': evals.length ? round(evals.at(-1)!.metrics['eval/score']) : null,
      'eval/gold_score': evals.length ? round(evals.at(-1)!.metrics['eval/gold_score']) : null,
    },
    config: d.config,
    history,
  };
  writeFileSync(join(to, f), JSON.stringify(out) + '\n');
  console.log(`${d.scenario}: ${d.iterations} iterations, ${history.length} rows → ${join(to, f)}`);
}
