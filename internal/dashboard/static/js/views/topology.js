// Switches, their ports and the nodes on them, with each node's state,
// owner, last boot and the port's PoE state.

import { h, nodeLink } from '../dom.js';
import { state, onChange, loadTopology, loadNodes, loadPoE } from '../state.js';
import { badge, lastBoot, poeText, errorBox } from './common.js';

function nodeCell(name, cells) {
  const n = state.nodes.get(name);
  if (!n) return h('td', { class: 'device' }, name);
  const td = h('td', { class: 'device', dataset: { node: name } });
  const fillCell = () => {
    const n = state.nodes.get(name);
    td.replaceChildren(nodeLink(name), ' ', badge(n),
      n.owner ? h('span', { class: 'owner' }, ' owner: ' + n.owner) : h('span', { class: 'owner' }, ' free'),
      lastBoot(n) ? h('span', { class: 'since' }, ' booted at ' + lastBoot(n)) : '');
  };
  fillCell();
  cells.set(name, fillCell);
  return td;
}

const POE_EVERY = 10000; // ms between two readings of the ports' PoE state

export function render(main) {
  const cells = new Map();
  let poeErrs = new Map();
  const body = h('div', { id: 'topology' }, h('p', {}, 'Loading topology…'));
  main.replaceChildren(h('h2', {}, 'Topology'), body);
  const draw = () => {
    cells.clear();
    const t = state.topology;
    const out = [];
    for (const sw of t.switches || []) {
      const rows = (sw.ports || []).map((p) => h('tr', { dataset: { port: p.port } },
        h('td', {}, String(p.port) + (p.name ? ' ' + p.name : '')),
        h('td', { class: 'poe', dataset: { poe: p.poe || '' } }, poeText(p)),
        (p.devices || []).length === 0 ? h('td', { class: 'device empty' }, '(nothing seen)') :
          (p.devices || []).map((d) => (d.type === 'node' ? nodeCell(d.name, cells) : h('td', { class: 'device' }, `${d.name} (${d.type})`)))));
      out.push(h('section', { class: 'switch', dataset: { switch: sw.name } },
        h('h3', {}, `switch ${sw.name}`, h('span', { class: 'dim' }, ` ${sw.ip} ${sw.mac}`)),
        poeErrs.has(sw.name) ? h('p', { class: 'error' }, '⚠ PoE state unknown: ' + poeErrs.get(sw.name)) : '',
        h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Port'), h('th', {}, 'PoE'), h('th', {}, 'Device'))), h('tbody', {}, rows))));
    }
    if ((t.unplaced || []).length) {
      out.push(h('section', { class: 'switch unplaced' }, h('h3', {}, 'Nodes on no known port'),
        h('table', {}, h('tbody', {}, t.unplaced.map((name) => h('tr', {}, nodeCell(name, cells)))))));
    }
    if (out.length === 0) out.push(h('p', {}, 'No switch is known.'));
    body.replaceChildren(...out);
  };
  let timer = 0, stopped = false;
  const poe = () => loadPoE().then((errs) => {
    if (stopped) return;
    poeErrs = errs;
    draw();
    timer = setTimeout(poe, POE_EVERY);
  });
  Promise.all([loadNodes(), loadTopology()]).then(() => { draw(); poe(); }, (e) => body.replaceChildren(errorBox(e)));
  const off = onChange((c) => {
    if (c === null) { draw(); return; }
    for (const name of c) { const f = cells.get(name); if (f) f(); }
  });
  return () => { stopped = true; off(); clearTimeout(timer); };
}
