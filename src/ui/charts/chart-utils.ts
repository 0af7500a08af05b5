/** Helpers for the metric charts: smoothing, CSV, and SVG → PNG export. No DOM beyond what export needs. */
export { download } from '../../state/data.svelte';

export interface Point {
  x: number;
  y: number;
}

/** Exponential moving average with bias correction (as TensorBoard's smoothing slider). */
export function smooth(points: Point[], weight: number): Point[] {
  if (weight <= 0) return points;
  let last = 0;
  let n = 0;
  return points.map((p) => {
    if (!Number.isFinite(p.y)) return p;
    last = last * weight + (1 - weight) * p.y;
    n++;
    return { x: p.x, y: last / (1 - Math.pow(weight, n)) };
  });
}

/** A number for people: 4 significant-ish digits, exponent for the very small and very large. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toFixed(a < 1 ? 4 : 3);
}

/**
 * The direction of the last `window` finite points: the least-squares slope times the span of
 * steps, compared with the spread of all values (under 5 % of the range counts as flat).
 */
export function trend(points: Point[], window = 20): 'rising' | 'falling' | 'flat' {
  const finite = points.filter((p) => Number.isFinite(p.y));
  const tail = finite.slice(-window);
  if (tail.length < 2) return 'flat';
  const mx = tail.reduce((a, p) => a + p.x, 0) / tail.length;
  const my = tail.reduce((a, p) => a + p.y, 0) / tail.length;
  let num = 0;
  let den = 0;
  for (const p of tail) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  if (den === 0) return 'flat';
  const change = (num / den) * (tail[tail.length - 1].x - tail[0].x);
  const ys = finite.map((p) => p.y);
  const range = Math.max(...ys) - Math.min(...ys);
  if (range === 0 || Math.abs(change) < 0.05 * range) return 'flat';
  return change > 0 ? 'rising' : 'falling';
}

/** The text a screen reader gets for a line chart: latest value, min, max and trend. */
export function describeSeries(title: string, points: Point[], unit = ''): string {
  const finite = points.filter((p) => Number.isFinite(p.y));
  if (!finite.length) return `${title}: no data yet.`;
  const last = finite[finite.length - 1];
  let lo = finite[0];
  let hi = finite[0];
  for (const p of finite) {
    if (p.y < lo.y) lo = p;
    if (p.y > hi.y) hi = p;
  }
  const n = Math.min(finite.length, 20);
  return (
    `${title}: latest ${formatValue(last.y)}${unit} at step ${last.x}; ` +
    `minimum ${formatValue(lo.y)}${unit} at step ${lo.x}, maximum ${formatValue(hi.y)}${unit} at step ${hi.x}; ` +
    `${trend(finite)} over the last ${n} point${n === 1 ? '' : 's'} (${finite.length} in all).`
  );
}

/** Rows of `{ step, ...metrics }` as CSV, metrics in the given order. */
export function toCsv(rows: { step: number; metrics: Record<string, number> }[], keys: string[]): string {
  const esc = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [['step', ...keys].map(esc).join(',')];
  for (const r of rows) lines.push([r.step, ...keys.map((k) => (k in r.metrics ? r.metrics[k] : ''))].join(','));
  return lines.join('\n') + '\n';
}

/** Render an SVG element to a PNG (2× for sharpness) with the page's background. */
export async function svgToPng(svg: SVGSVGElement): Promise<Blob> {
  const { width, height } = svg.getBoundingClientRect();
  const clone = svg.cloneNode(true) as SVGSVGElement;
  const style = getComputedStyle(svg);
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  clone.setAttribute('width', String(width));
  clone.setAttribute('height', String(height));
  clone.style.color = style.color;
  clone.style.fontFamily = style.fontFamily;
  const text = new XMLSerializer().serializeToString(clone);
  const url = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    await new Promise<void>((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error('could not render the chart'));
      img.src = url;
    });
    const canvas = document.createElement('canvas');
    canvas.width = Math.ceil(width * 2);
    canvas.height = Math.ceil(height * 2);
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = getComputedStyle(document.body).backgroundColor || '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.scale(2, 2);
    ctx.drawImage(img, 0, 0, width, height);
    return await new Promise<Blob>((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('PNG export failed'))), 'image/png'),
    );
  } finally {
    URL.revokeObjectURL(url);
  }
}
