import { h, fmtTime } from '../dom.js';
import { nodeState } from '../state.js';

// badge shows a node's state: icon and words, the colour only repeats them.
export function badge(n) {
  const s = nodeState(n);
  return h('span', { class: 'st st-' + s.key, dataset: { state: s.key } }, s.icon + ' ' + s.text);
}

// lastBoot is when the node last booted, if it is booted.
export const lastBoot = (n) => (n.boot && n.boot.state === 'booted' ? fmtTime(n.boot.since) : '');

export function poeText(p) {
  if (!p || !p.poe) return 'PoE not read yet';
  let t = 'PoE ' + p.poe;
  if (p.delivering) t += ', delivering';
  if (p.poe_off) t += ` (off: ${p.poe_off})`;
  return t;
}

export function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, '⚠ ' + (err && err.message ? err.message : String(err)));
}
