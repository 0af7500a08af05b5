/**
 * The per-token heatmaps' colour scale (src/ui/train/token-heat.ts), shared by the Train page's
 * latest-iteration heatmap and the rollout history's: the scale is the largest finite |value|,
 * signed quantities are blue above 0 and red below, unsigned ones one hue by magnitude, and a
 * value that is not finite is left uncoloured.
 */
import { describe, expect, test } from 'vitest';
import { heatColour, heatScale } from '../../src/ui/train/token-heat';

describe('token heat scale', () => {
  test('the scale is the largest finite |value|, never 0', () => {
    expect(heatScale([0.5, -2, 1])).toBe(2);
    expect(heatScale([NaN, Infinity, -Infinity, 0.25])).toBe(0.25);
    expect(heatScale([])).toBe(1e-6);
    expect(heatScale([0, 0])).toBe(1e-6);
  });

  test('signed values: blue above 0, red below, opacity by |value| / scale, capped at full colour', () => {
    expect(heatColour(2, 2)).toBe('hsla(215, 80%, 50%, 0.7)');
    expect(heatColour(-1, 2)).toBe('hsla(10, 85%, 55%, 0.39)');
    expect(heatColour(0, 2)).toBe('hsla(215, 80%, 50%, 0.08)');
    expect(heatColour(-5, 2)).toBe('hsla(10, 85%, 55%, 0.7)');
  });

  test('unsigned values: one hue by magnitude, whatever the sign', () => {
    expect(heatColour(-2, 2, false)).toBe('hsla(275, 60%, 50%, 0.7)');
    expect(heatColour(0, 2, false)).toBe('hsla(275, 60%, 50%, 0.06)');
  });

  test('values that are not finite are not coloured', () => {
    for (const v of [NaN, Infinity, -Infinity]) expect(heatColour(v, 1)).toBe('transparent');
  });
});
