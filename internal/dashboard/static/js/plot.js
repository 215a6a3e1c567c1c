// Plots drawn as inline SVG.

import { svg, fmtTime } from './dom.js';

// secs writes a tick's seconds with the digits that tell ticks apart.
const secs = (v) => (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2)) + ' s';

// plot draws points {x, y, mark, label} (y: seconds) as an inline SVG.
// opts.xfmt labels the x axis' ends (default: x is a time in ms);
// opts.line joins the points in order (default true).
export function plot(points, title, opts = {}) {
  const xfmt = opts.xfmt || ((x) => fmtTime(new Date(x).toISOString()));
  const W = 640, H = 200, L = 48, B = 28, T = 10, R = 10;
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'plot', role: 'img', 'aria-label': title });
  g.append(svg('title', {}, title));
  if (points.length === 0) {
    g.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no boot time yet'));
    return g;
  }
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const x0 = xs.reduce((a, b) => Math.min(a, b)), x1 = xs.reduce((a, b) => Math.max(a, b));
  const y1 = ys.reduce((a, b) => Math.max(a, b)) * 1.1 || 1;
  const px = (x) => L + (x1 === x0 ? (W - L - R) / 2 : ((x - x0) / (x1 - x0)) * (W - L - R));
  const py = (y) => H - B - (y / y1) * (H - B - T);
  g.append(svg('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }),
    svg('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }));
  for (const f of [0, 0.5, 1]) {
    g.append(svg('text', { x: L - 4, y: py(y1 * f) + 4, 'text-anchor': 'end', class: 'tick' }, secs(y1 * f)));
  }
  g.append(svg('text', { x: L, y: H - 8, class: 'tick' }, xfmt(x0)),
    svg('text', { x: W - R, y: H - 8, 'text-anchor': 'end', class: 'tick' }, xfmt(x1)));
  if (points.length > 1 && opts.line !== false) {
    g.append(svg('polyline', { class: 'line', points: points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ') }));
  }
  for (const p of points) {
    // A fallback boot is a square, a first-try one a circle: the shape
    // says it, not only the colour.
    const cx = px(p.x), cy = py(p.y);
    const m = p.mark === 'square' ? svg('rect', { x: cx - 4, y: cy - 4, width: 8, height: 8, class: 'pt pt-square' }) :
      svg('circle', { cx, cy, r: 4, class: 'pt' });
    m.append(svg('title', {}, p.label));
    g.append(m);
  }
  return g;
}
