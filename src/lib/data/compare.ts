/**
 * Runs of different algorithms on one chart: each trainer logs under its own reference
 * library's names (PPO and online DPO as TRL's `PPOTrainer` / `OnlineDPOTrainer`:
 * `objective/scores`, `objective/kl`, …; GRPO and RLOO as TRL's `GRPOTrainer` / `RLOOTrainer`:
 * `reward`, `kl`, `completions/mean_length`, …; offline DPO and SFT as `Trainer` losses), so
 * "the reward" or "the KL" of a run is found through a table per kind, converted to one unit.
 *
 * Units: PPO's `objective/kl` is the KL summed over a completion's tokens (mean over the batch);
 * GRPO / RLOO log `kl` as a mean per completion token, so it is multiplied by that iteration's
 * `completions/mean_length` (exact when every completion token counts in the KL's mask, i.e.
 * without `mask_truncated_completions`). Entropy is per token everywhere (PPO's
 * `policy/entropy_avg`; `objective/entropy` is per completion).
 *
 * Rewards: a run's reward source (reward model, scripted labeller, the user's functions) is read
 * from its saved config (`config.reward`, the `PpoSetup['reward']` shape). Curves of runs on
 * different rewards are not comparable, so the reward chart is drawn once per reward, and
 * `rewardGroups` says which runs share one. Plain functions over plain records: no DOM.
 */
import type { RunRecord } from './saved';

/** What the compare functions read of a run (a `RunRecord`, or one of a kind added later). */
export type CompareRun = Pick<RunRecord, 'id' | 'name' | 'config' | 'history' | 'evals'> & { kind: string };

/** Where a shared metric comes from in one kind of run. */
export type MetricSource =
  | { name: string }
  | {
      /** Logged names it is computed from (for the legend's note). */
      names: string[];
      derive: (m: Record<string, number>) => number | undefined;
      note: string;
    };

export interface SharedMetric {
  id: string;
  title: string;
  unit: string;
  /** Per run kind; a kind not listed does not log it. */
  from: Partial<Record<string, MetricSource>>;
  /** Why a kind without it has none (shown under the chart). */
  missing?: Partial<Record<string, string>>;
}

const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

const perTokenTimesLength = (key: string): MetricSource => ({
  names: [key, 'completions/mean_length'],
  derive: (m) => (num(m[key]) && num(m['completions/mean_length']) ? m[key] * m['completions/mean_length'] : undefined),
  note: `${key} × completions/mean_length`,
});

const DIVERSITY = (name: string): Partial<Record<string, MetricSource>> =>
  Object.fromEntries(['ppo', 'grpo', 'rloo', 'dpo', 'online-dpo', 'sft'].map((k) => [k, { name }]));

/** The metrics every policy trainer has in some form, in chart order. */
export const SHARED_METRICS: readonly SharedMetric[] = [
  {
    id: 'reward',
    title: 'Reward (score of the reward source)',
    unit: 'mean per completion',
    from: {
      ppo: { name: 'objective/scores' },
      'online-dpo': { name: 'objective/scores' },
      grpo: { name: 'reward' },
      rloo: { name: 'reward' },
    },
    missing: { dpo: 'offline DPO learns from pairs: no reward source scores it', sft: 'SFT has no reward' },
  },
  {
    id: 'gold',
    title: 'Gold score of the evaluation samples',
    unit: 'mean per sample',
    from: { ppo: { name: 'eval/gold' }, grpo: { name: 'eval/gold' }, rloo: { name: 'eval/gold' } },
  },
  {
    id: 'kl',
    title: 'KL to the reference',
    unit: 'nats per completion',
    from: {
      ppo: { name: 'objective/kl' },
      'online-dpo': { name: 'objective/kl' },
      grpo: perTokenTimesLength('kl'),
      rloo: perTokenTimesLength('kl'),
    },
    missing: { dpo: 'offline DPO does not log a KL' },
  },
  {
    id: 'entropy',
    title: 'Entropy of the policy',
    unit: 'nats per token',
    from: {
      ppo: { name: 'policy/entropy_avg' },
      grpo: { name: 'entropy' },
      rloo: { name: 'entropy' },
    },
  },
  {
    id: 'length',
    title: 'Completion length',
    unit: 'tokens',
    from: {
      ppo: { name: 'response_length' },
      grpo: { name: 'completions/mean_length' },
      rloo: { name: 'completions/mean_length' },
      'online-dpo': { name: 'completions/mean_length' },
    },
  },
  {
    id: 'distinct-2',
    title: 'Distinct-2 of the evaluation samples',
    unit: 'fraction',
    from: DIVERSITY('eval/distinct_2'),
  },
  {
    id: 'self-bleu',
    title: 'Self-BLEU of the evaluation samples',
    unit: 'lower = more diverse',
    from: DIVERSITY('eval/self_bleu'),
  },
];

/** How runs of each kind are labelled on charts. */
export const KIND_LABELS: Record<string, string> = {
  reward: 'Reward model',
  pretrain: 'Pretraining',
  sft: 'SFT',
  ppo: 'PPO',
  dpo: 'DPO',
  'online-dpo': 'Online DPO',
  grpo: 'GRPO',
  rloo: 'RLOO',
};

export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? kind.toUpperCase();
}

/** Points of a shared metric in one run: history rows first, else evaluation points; [] if the kind lacks it. */
export function sharedSeries(run: CompareRun, metric: SharedMetric): { x: number; y: number }[] {
  const src = metric.from[run.kind];
  if (!src) return [];
  const value = (m: Record<string, number>) => ('name' in src ? m[src.name] : src.derive(m));
  const pick = (rows: { step: number; metrics: Record<string, number> }[]) =>
    rows.flatMap((r) => {
      const y = value(r.metrics);
      return num(y) ? [{ x: r.step, y }] : [];
    });
  const h = pick(run.history);
  return h.length ? h : pick(run.evals);
}

/** The logged name(s) a run's line is read from, for the legend ("objective/scores", "kl × completions/mean_length"). */
export function sourceName(kind: string, metric: SharedMetric): string | null {
  const src = metric.from[kind];
  return src ? ('name' in src ? src.name : src.note) : null;
}

/** A run's reward source: a stable key (same key = same reward) and a label. null: the run has none. */
export interface RewardIdentity {
  key: string;
  label: string;
}

function stable(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(stable).join(',')}]`;
  if (x && typeof x === 'object')
    return `{${Object.keys(x)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((x as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(x) ?? 'null';
}

/**
 * The reward a run trained on, from its saved config (`config.reward`, as PPO / GRPO / RLOO runs
 * save it). null for kinds that train on no reward source (DPO, SFT, reward models, kinds unknown here).
 */
export function rewardOf(run: CompareRun): RewardIdentity | null {
  if (!SHARED_METRICS[0].from[run.kind]) return null;
  const cfg = run.config ?? {};
  const r = (cfg.reward ?? (cfg.setup as Record<string, unknown> | undefined)?.reward) as
    Record<string, unknown> | undefined;
  if (!r || typeof r !== 'object' || typeof r.kind !== 'string')
    return { key: 'unknown', label: 'reward not recorded' };
  if (r.kind === 'labeller' && r.labeller && typeof r.labeller === 'object') {
    const l = r.labeller as Record<string, unknown>;
    const noise = num(l.noise) && l.noise > 0 ? `, noise ${l.noise}` : '';
    return { key: `labeller:${stable(l)}`, label: `${String(l.kind)} labeller${noise}` };
  }
  if (r.kind === 'function' && Array.isArray(r.functions)) {
    const fns = r.functions as Record<string, unknown>[];
    return {
      key: `function:${stable(fns.map((f) => [f.name, f.code, f.weight ?? 1]))}`,
      label: `JS ${fns.map((f) => String(f.name)).join(' + ')}`,
    };
  }
  if (r.kind === 'reward-model') {
    // Which reward model: saved by newer runs as config.rewardModel; older PPO runs only name it ("… · RM <name>").
    const rm = cfg.rewardModel as { id?: string; name?: string } | string | undefined;
    const name =
      typeof rm === 'string' ? rm : (rm?.name ?? rm?.id ?? /· RM (.+?)(?: · |$)/.exec(run.name)?.[1]?.trim() ?? '');
    return name
      ? { key: `reward-model:${name}`, label: `reward model ${name}` }
      : { key: 'reward-model:?', label: 'a reward model (which one not recorded)' };
  }
  return { key: `other:${stable(r)}`, label: String(r.kind) };
}

export interface RewardGroup extends RewardIdentity {
  runIds: string[];
}

/** Runs grouped by the reward they trained on (runs without one are left out), in first-seen order. */
export function rewardGroups(runs: readonly CompareRun[]): RewardGroup[] {
  const groups = new Map<string, RewardGroup>();
  for (const run of runs) {
    const r = rewardOf(run);
    if (!r) continue;
    const g = groups.get(r.key) ?? { ...r, runIds: [] };
    g.runIds.push(run.id);
    groups.set(r.key, g);
  }
  return [...groups.values()];
}

export interface CompareSeries {
  runId: string;
  /** "GRPO · my run". */
  name: string;
  /** Logged name(s) read. */
  source: string;
  points: { x: number; y: number }[];
}

export interface CompareChart {
  metric: SharedMetric;
  /** Set on reward charts when the selected runs trained on different rewards: the one drawn here. */
  reward: RewardGroup | null;
  series: CompareSeries[];
  /** Selected runs without this metric, and why. */
  absent: { runId: string; name: string; why: string }[];
}

/**
 * One chart per shared metric that at least one selected run logs (reward charts: one per
 * reward when the runs trained on different ones). Series follow the selection order.
 */
export function compareCharts(runs: readonly CompareRun[]): CompareChart[] {
  const label = (r: CompareRun) => `${kindLabel(r.kind)} · ${r.name}`;
  const groups = rewardGroups(runs);
  const charts: CompareChart[] = [];
  for (const metric of SHARED_METRICS) {
    const series = runs.flatMap((r) => {
      const points = sharedSeries(r, metric);
      return points.length ? [{ runId: r.id, name: label(r), source: sourceName(r.kind, metric)!, points }] : [];
    });
    if (!series.length) continue;
    const absent = runs
      .filter((r) => !series.some((s) => s.runId === r.id))
      .map((r) => ({
        runId: r.id,
        name: label(r),
        why:
          metric.missing?.[r.kind] ??
          (metric.from[r.kind] ? 'not logged by this run' : `${kindLabel(r.kind)} does not log it`),
      }));
    if (metric.id === 'reward' && groups.length > 1) {
      for (const g of groups) {
        const part = series.filter((s) => g.runIds.includes(s.runId));
        if (part.length) charts.push({ metric, reward: g, series: part, absent: [] });
      }
      const drawn = new Set(charts.filter((c) => c.metric === metric).flatMap((c) => c.series.map((s) => s.runId)));
      const last = charts.at(-1)!;
      last.absent = absent.concat(
        series
          .filter((s) => !drawn.has(s.runId))
          .map((s) => ({ runId: s.runId, name: s.name, why: 'reward not recorded' })),
      );
    } else charts.push({ metric, reward: null, series, absent });
  }
  return charts;
}
