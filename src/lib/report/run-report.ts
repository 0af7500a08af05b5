/**
 * Run report (issue 20, item 3): one page per run with its settings, its curves and samples at
 * the start, the peak and the end: what an educator hands out after a demo and a researcher
 * pastes into notes.
 *
 * `buildRunReport` turns a run record (any kind) and, where kept, the rollout history's logs into
 * a plain model; the Report page draws that model with Svelte, and `reportHtml` writes it as one
 * self-contained HTML file: inline CSS and inline SVG charts, no scripts (its Content-Security-Policy
 * forbids them), every piece of user text escaped. Both draw charts from `chartGeometry`, so the
 * page and the file show the same curves.
 *
 * `alarms` (the report page replays them from the run's history, `report-alarms.ts`): given, the
 * report shows a section of the alarms that fired; left out, the section is not drawn.
 */
import { kindLabel } from '../data/compare';
import type { RunRecord } from '../data/saved';
import { rolloutRows, type RolloutLog } from '../data/rollouts';

/** An alarm that fired during the run. */
export interface ReportAlarm {
  iteration: number;
  name: string;
  message: string;
}

export interface ReportChart {
  metric: string;
  points: { x: number; y: number }[];
}

export interface ReportSampleRow {
  prompt: string;
  completion: string;
  reward: number | null;
  gold: number | null;
  kl: number | null;
}

export interface ReportSamples {
  label: 'start' | 'peak' | 'end';
  iteration: number;
  /** Where they come from: the kept rollouts of that iteration, or the run's evaluation samples. */
  source: 'rollouts' | 'evaluation';
  rows: ReportSampleRow[];
}

export interface RunReport {
  title: string;
  runId: string;
  kind: RunRecord['kind'];
  createdAt: number;
  updatedAt: number;
  parent: string;
  /** Last step of the history (iterations for PPO). */
  steps: number;
  settings: [string, string][];
  charts: ReportChart[];
  samples: ReportSamples[];
  /** Undefined: no alarm information (section left out); [] : none fired. */
  alarms?: ReportAlarm[];
  /** The metric that chose the peak, when there was one. */
  peakMetric: string | null;
}

/** Curves shown first when a run has them (TRL names); others follow, up to `MAX_CHARTS`. */
const PREFERRED = [
  'objective/scores',
  'eval/gold_score',
  'objective/kl',
  'objective/rlhf_reward',
  'objective/entropy',
  'response_length',
  'loss/policy_avg',
  'loss/value_avg',
  'eval/score',
  'train/loss',
  'eval/loss',
  'eval/accuracy',
];
export const MAX_CHARTS = 6;
/** Sample rows per section (start / peak / end). */
export const SAMPLE_ROWS = 4;

const fmtValue = (v: unknown): string =>
  v === null || v === undefined
    ? 'off'
    : typeof v === 'object'
      ? JSON.stringify(v)
      : typeof v === 'number' && !Number.isInteger(v)
        ? String(Number(v.toPrecision(6)))
        : String(v);

function series(run: RunRecord, metric: string): { x: number; y: number }[] {
  return run.history
    .filter((r) => metric in r.metrics)
    .map((r) => ({ x: r.step, y: r.metrics[metric] }))
    .sort((a, b) => a.x - b.x);
}

/** The metric whose maximum marks the run's peak. */
function peakMetricOf(run: RunRecord): string | null {
  for (const m of ['eval/gold_score', 'objective/scores', 'eval/score', 'eval/accuracy'])
    if (run.history.some((r) => Number.isFinite(r.metrics[m]))) return m;
  return null;
}

function rowsOfLog(log: RolloutLog): ReportSampleRow[] {
  return rolloutRows(log)
    .slice(0, SAMPLE_ROWS)
    .map((r) => ({ prompt: r.prompt, completion: r.completion, reward: r.reward, gold: r.gold, kl: r.kl }));
}

/**
 * Which kept iterations to show: the first, the one at the peak of `peakMetric` (the kept
 * iteration nearest to the best step), and the last.
 */
export function pickSampleIterations(
  run: RunRecord,
  kept: readonly number[],
): { start: number; peak: number; end: number } | null {
  if (!kept.length) return null;
  const sorted = [...kept].sort((a, b) => a - b);
  const metric = peakMetricOf(run);
  let best = sorted.at(-1)!;
  if (metric) {
    const pts = series(run, metric).filter((p) => Number.isFinite(p.y));
    if (pts.length) {
      const top = pts.reduce((a, b) => (b.y > a.y ? b : a));
      best = sorted.reduce((a, b) => (Math.abs(b - top.x) < Math.abs(a - top.x) ? b : a));
    }
  }
  return { start: sorted[0], peak: best, end: sorted.at(-1)! };
}

/**
 * The report of `run`. `logs` are kept rollout logs by iteration (those of `pickSampleIterations`);
 * without them the samples are the run's evaluation samples (first, best by `eval/score`, last).
 */
export function buildRunReport(
  run: RunRecord,
  logs: ReadonlyMap<number, RolloutLog> = new Map(),
  alarms?: readonly ReportAlarm[],
): RunReport {
  const names = new Set(run.history.flatMap((r) => Object.keys(r.metrics)));
  const ordered = [...PREFERRED.filter((m) => names.has(m)), ...[...names].filter((m) => !PREFERRED.includes(m))];
  const charts = ordered
    .map((metric) => ({ metric, points: series(run, metric) }))
    .filter((c) => c.points.filter((p) => Number.isFinite(p.y)).length >= 1)
    .slice(0, MAX_CHARTS);

  const samples: ReportSamples[] = [];
  const picked = pickSampleIterations(run, [...logs.keys()]);
  if (picked) {
    for (const label of ['start', 'peak', 'end'] as const) {
      const it = picked[label];
      samples.push({ label, iteration: it, source: 'rollouts', rows: rowsOfLog(logs.get(it)!) });
    }
  } else if (run.evals.length) {
    const evals = [...run.evals].sort((a, b) => a.step - b.step);
    const score = (e: (typeof evals)[number]) => e.metrics['eval/gold'] ?? e.metrics['eval/score'] ?? -Infinity;
    const peak = evals.reduce((a, b) => (score(b) > score(a) ? b : a));
    for (const [label, e] of [
      ['start', evals[0]],
      ['peak', peak],
      ['end', evals.at(-1)!],
    ] as const) {
      samples.push({
        label,
        iteration: e.step,
        source: 'evaluation',
        rows: e.samples
          .slice(0, SAMPLE_ROWS)
          .map((s) => ({ prompt: s.prompt, completion: s.text, reward: null, gold: null, kl: null })),
      });
    }
  }

  const settings = Object.entries(run.config)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => [k, fmtValue(v)] as [string, string]);
  return {
    title: run.name,
    runId: run.id,
    kind: run.kind,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    parent: run.parent.kind === 'run' ? `run “${run.parent.name}”` : run.parent.name,
    steps: run.history.reduce((m, r) => Math.max(m, r.step), 0),
    settings,
    charts,
    samples,
    ...(alarms ? { alarms: [...alarms] } : {}),
    peakMetric: peakMetricOf(run),
  };
}

// ------------------------------------------------------------------------------ charts

export interface ChartGeometry {
  width: number;
  height: number;
  /** SVG path data of the curve (segments broken at non-finite values). */
  path: string;
  /** Single points (a series of one value) drawn as dots. */
  dots: { x: number; y: number }[];
  /** Plot area. */
  left: number;
  right: number;
  top: number;
  bottom: number;
  yMin: string;
  yMax: string;
  xMin: string;
  xMax: string;
}

const tick = (v: number) =>
  !Number.isFinite(v)
    ? '–'
    : Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0)
      ? v.toExponential(1)
      : v.toFixed(2);

/** Pixel geometry of one line chart (shared by the page and the HTML file). */
export function chartGeometry(points: readonly { x: number; y: number }[], width = 320, height = 150): ChartGeometry {
  const left = 44;
  const right = width - 8;
  const top = 8;
  const bottom = height - 20;
  const ok = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  let x0 = Math.min(...ok.map((p) => p.x));
  let x1 = Math.max(...ok.map((p) => p.x));
  let y0 = Math.min(...ok.map((p) => p.y));
  let y1 = Math.max(...ok.map((p) => p.y));
  if (!ok.length) [x0, x1, y0, y1] = [0, 1, 0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const px = (x: number) => left + ((x - x0) / (x1 - x0)) * (right - left);
  const py = (y: number) => bottom - ((y - y0) / (y1 - y0)) * (bottom - top);
  let path = '';
  let pen = false;
  const dots: { x: number; y: number }[] = [];
  points.forEach((p, i) => {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) {
      pen = false;
      return;
    }
    const x = px(p.x).toFixed(1);
    const y = py(p.y).toFixed(1);
    path += `${pen ? 'L' : 'M'}${x} ${y} `;
    const prev = points[i - 1];
    const next = points[i + 1];
    const alone = !(prev && Number.isFinite(prev.y)) && !(next && Number.isFinite(next.y));
    if (alone) dots.push({ x: Number(x), y: Number(y) });
    pen = true;
  });
  return {
    width,
    height,
    path: path.trim(),
    dots,
    left,
    right,
    top,
    bottom,
    yMin: tick(y0),
    yMax: tick(y1),
    xMin: ok.length ? String(x0) : '',
    xMax: ok.length ? String(x1) : '',
  };
}

// ------------------------------------------------------------------------------ HTML file

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function chartSvg(c: ReportChart): string {
  const g = chartGeometry(c.points);
  const e = escapeHtml;
  return `<figure class="chart"><figcaption>${e(c.metric)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${g.width} ${g.height}" width="${g.width}" height="${g.height}" role="img" aria-label="${e(c.metric)}">
<line x1="${g.left}" y1="${g.bottom}" x2="${g.right}" y2="${g.bottom}" stroke="#999"/><line x1="${g.left}" y1="${g.top}" x2="${g.left}" y2="${g.bottom}" stroke="#999"/>
<text x="${g.left - 4}" y="${g.top + 8}" text-anchor="end" font-size="10">${e(g.yMax)}</text><text x="${g.left - 4}" y="${g.bottom}" text-anchor="end" font-size="10">${e(g.yMin)}</text>
<text x="${g.left}" y="${g.height - 5}" font-size="10">${e(g.xMin)}</text><text x="${g.right}" y="${g.height - 5}" text-anchor="end" font-size="10">${e(g.xMax)}</text>
${g.path ? `<path d="${g.path}" fill="none" stroke="#1f6feb" stroke-width="1.6"/>` : ''}${g.dots.map((d) => `<circle cx="${d.x}" cy="${d.y}" r="2.5" fill="#1f6feb"/>`).join('')}
</svg></figure>`;
}

const num = (x: number | null) => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(2));
export const SAMPLE_LABEL: Record<ReportSamples['label'], string> = { start: 'Start', peak: 'Peak', end: 'End' };

/** The report as one self-contained HTML document (no scripts, no external resources). */
export function reportHtml(r: RunReport, generatedAt = Date.now()): string {
  const e = escapeHtml;
  const date = (t: number) => new Date(t).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const settings = r.settings.map(([k, v]) => `<tr><th>${e(k)}</th><td>${e(v)}</td></tr>`).join('\n');
  const charts = r.charts.length ? r.charts.map(chartSvg).join('\n') : '<p>No curves recorded.</p>';
  const samples = r.samples.length
    ? r.samples
        .map(
          (s) =>
            `<section class="samples"><h3>${SAMPLE_LABEL[s.label]} — step ${s.iteration} <small>(${s.source === 'rollouts' ? 'rollouts' : 'evaluation samples'})</small></h3>
<table><thead><tr><th>Prompt</th><th>Completion</th><th>Reward</th><th>Gold</th><th>KL</th></tr></thead><tbody>
${s.rows.map((x) => `<tr><td>${e(x.prompt)}</td><td class="text">${e(x.completion)}</td><td>${num(x.reward)}</td><td>${num(x.gold)}</td><td>${num(x.kl)}</td></tr>`).join('\n')}
</tbody></table></section>`,
        )
        .join('\n')
    : '<p>No samples kept for this run.</p>';
  const alarms =
    r.alarms === undefined
      ? ''
      : `<section class="alarms"><h2>Alarms</h2>${
          r.alarms.length
            ? `<ul>${r.alarms.map((a) => `<li><strong>${e(a.name)}</strong> at step ${a.iteration}: ${e(a.message)}</li>`).join('')}</ul>`
            : '<p>No alarm fired.</p>'
        }</section>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(r.title)} — run report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;color:#111;max-width:960px;margin:1.5rem auto;padding:0 1rem}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.4rem 0 .4rem;border-bottom:1px solid #ddd}h3{font-size:.95rem;margin:.8rem 0 .3rem}
.meta{color:#555}table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border:1px solid #ddd;padding:.2rem .4rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
.settings th{width:35%;font-weight:500;color:#333}.text{white-space:pre-wrap}.charts{display:flex;flex-wrap:wrap;gap:.6rem}
.chart{margin:0;break-inside:avoid}figcaption{font-size:.8rem;color:#333}svg{max-width:100%;height:auto}section{break-inside:avoid-page}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}}
</style>
</head>
<body>
<h1>${e(r.title)}</h1>
<p class="meta">${e(kindLabel(r.kind))} run · started from ${e(r.parent)} · ${r.steps} steps · started ${date(r.createdAt)} · last saved ${date(r.updatedAt)} · id ${e(r.runId)}</p>
<h2>Settings</h2>
<table class="settings"><tbody>
${settings}
</tbody></table>
<h2>Curves</h2>
<div class="charts">
${charts}
</div>
${alarms}
<h2>Samples${r.peakMetric ? ` <small>(peak by ${e(r.peakMetric)})</small>` : ''}</h2>
${samples}
<p class="meta">Made by RLHF Playground on ${date(generatedAt)}.</p>
</body>
</html>
`;
}
