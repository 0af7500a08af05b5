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
