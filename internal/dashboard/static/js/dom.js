// DOM helpers. Every text from the server goes in as a text node
// (append of a string, textContent), never as HTML.

const SVG = 'http://www.w3.org/2000/svg';

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// h('a', {href: '#/x'}, 'text', child...) makes an HTML element.
export const h = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);

// svg('rect', {...}) makes an SVG element.
export const svg = (tag, attrs, ...children) => fill(document.createElementNS(SVG, tag), attrs, children);

// nodeLink links to a node's page.
export const nodeLink = (name) => h('a', { href: '#/node/' + encodeURIComponent(name) }, name);

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  return d.toLocaleString(undefined, { hour12: false });
}

// seconds parses a Go duration string ("1.5s", "2m3.5s", "150ms").
export function seconds(dur) {
  if (typeof dur !== 'string') return NaN;
  const units = { h: 3600, m: 60, s: 1, ms: 1e-3, 'µs': 1e-6, us: 1e-6, ns: 1e-9 };
  let total = 0, ok = false;
  for (const m of dur.matchAll(/([0-9.]+)(h|ms|m|s|µs|us|ns)/g)) {
    total += parseFloat(m[1]) * units[m[2]];
    ok = true;
  }
  return ok ? total : NaN;
}
