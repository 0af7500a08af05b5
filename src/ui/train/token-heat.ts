/**
 * The colour scale of the per-token heatmaps (`TokenHeatmap`: the latest PPO iteration's samples;
 * `RolloutTokens`: one kept completion of the rollout history), kept in one place so both read
 * alike: blue for positive values, red for negative, one purple hue by magnitude for quantities
 * that have one sign (log-prob, entropy); the opacity grows with |value| / scale, where the scale
 * is the largest finite |value| shown. `HeatLegend.svelte` draws the matching legend.
 */

/** One quantity a heatmap can colour by; `signed: false` colours by magnitude in one hue. */
export interface HeatQuantity<Id extends string = string> {
  id: Id;
  label: string;
  hint: string;
  signed?: boolean;
}

/** The legend swatches: the colours at full scale. */
export const HEAT_SWATCH = {
  pos: 'hsla(215, 80%, 50%, 0.7)',
  neg: 'hsla(10, 85%, 55%, 0.7)',
  mag: 'hsla(275, 60%, 50%, 0.7)',
} as const;

/** The largest finite |value| (at least 1e-6): the value drawn at full colour. */
export function heatScale(values: Iterable<number>): number {
  let m = 1e-6;
  for (const v of values) {
    const a = Math.abs(v);
    if (Number.isFinite(a)) m = Math.max(m, a);
  }
  return m;
}

/** The background of a token with value `v` (transparent when not finite). */
export function heatColour(v: number, scale: number, signed = true): string {
  if (!Number.isFinite(v)) return 'transparent';
  const a = Math.min(1, Math.abs(v) / scale);
  // Unsigned quantities (log-prob ≤ 0, entropy ≥ 0) use one hue by magnitude.
  if (!signed) return `hsla(275, 60%, 50%, ${0.06 + 0.64 * a})`;
  return v >= 0 ? `hsla(215, 80%, 50%, ${0.08 + 0.62 * a})` : `hsla(10, 85%, 55%, ${0.08 + 0.62 * a})`;
}
