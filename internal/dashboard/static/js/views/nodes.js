// The node table: every node, filtered by words, narrowed to a node set
// the server resolves, sorted by a column. Only the rows in sight are in
// the document (a window of ROW-high rows over a spacer), so 10000 nodes
// cost what 40 do; a change to a node redraws its row if it is in sight.

import { h, nodeLink } from '../dom.js';
import { get, session } from '../api.js';
import { state, onChange, loadNodes, loadTopology, nodeState } from '../state.js';
import { badge, lastBoot, errorBox } from './common.js';
import { rebootForm } from './actions.js';

const ROW = 28; // px, as in style.css (.vt-row)
const EXTRA = 10; // rows drawn beyond the visible ones

const columns = [
  { key: 'name', title: 'Node', value: (n) => n.name },
  { key: 'state', title: 'State', value: (n) => nodeState(n).text },
  { key: 'owner', title: 'Owner', value: (n) => n.owner || '' },
  { key: 'model', title: 'Model', value: (n) => n.model || '' },
  { key: 'port', title: 'Switch port', value: (n) => { const p = state.ports.get(n.name); return p ? `${p.switch}:${String(p.port.port).padStart(4, '0')}` : ''; } },
  { key: 'since', title: 'Last boot', value: (n) => (n.boot && n.boot.state === 'booted' ? n.boot.since : '') },
  { key: 'method', title: 'Last reboot method', value: (n) => (n.boot && n.boot.last_reboot_method) || '' },
];

const collator = new Intl.Collator(undefined, { numeric: true });

export function render(main) {
  let sortKey = 'name', sortDir = 1, words = '', setNames = null, rows = [];
  const count = h('span', { id: 'node-count', role: 'status' });
  const setMsg = h('span', { class: 'set-msg', role: 'status' });
  const filter = h('input', { id: 'node-filter', type: 'search', placeholder: 'filter: words in name, state, owner, model' });
  const setInput = h('input', { id: 'node-set', type: 'search', placeholder: 'node set, e.g. node[1-20],my-nodes' });
  const head = h('div', { class: 'vt-head vt-row', role: 'row' });
  const spacer = h('div', { class: 'vt-spacer' });
  const win = h('div', { class: 'vt-window', role: 'rowgroup' });
  const scroller = h('div', { class: 'vt-scroll', id: 'node-table', role: 'table', 'aria-label': 'nodes' }, spacer, win);
  const drawn = new Map(); // name -> row element in sight
  const actions = h('div', { class: 'actions' });
  // The set typed, else the nodes the filter leaves.
  if (session.loggedIn) actions.append(rebootForm(() => setInput.value.trim() || rows.map((n) => n.name).join(',')));

  const cell = (c, n) => {
    if (c.key === 'name') return nodeLink(n.name);
    if (c.key === 'state') return badge(n);
    if (c.key === 'since') return lastBoot(n);
    if (c.key === 'owner') return n.owner || 'free';
    if (c.key === 'port') { const p = state.ports.get(n.name); return p ? `${p.switch} port ${p.port.port}` : ''; }
    return c.value(n);
  };
  const rowEl = (n, i) => {
    const r = h('div', { class: 'vt-row', role: 'row', dataset: { node: n.name, since: (n.boot && n.boot.since) || '' } },
      columns.map((c) => h('span', { class: 'c-' + c.key, role: 'cell' }, cell(c, n))));
    r.style.transform = `translateY(${i * ROW}px)`;
    return r;
  };
  const drawWindow = () => {
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - EXTRA);
    const last = Math.min(rows.length, Math.ceil((scroller.scrollTop + scroller.clientHeight) / ROW) + EXTRA);
    drawn.clear();
    const els = [];
    for (let i = first; i < last; i++) {
      const el = rowEl(rows[i], i);
      drawn.set(rows[i].name, { el, i });
      els.push(el);
    }
    win.replaceChildren(...els);
  };
  const drawHead = () => head.replaceChildren(...columns.map((c) => h('button', {
    class: 'c-' + c.key, role: 'columnheader', type: 'button', dataset: { sort: c.key },
    'aria-sort': c.key === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none',
    onclick: () => { if (sortKey === c.key) sortDir = -sortDir; else { sortKey = c.key; sortDir = 1; } drawHead(); refilter(); },
  }, c.title + (c.key === sortKey ? (sortDir > 0 ? ' ▲' : ' ▼') : ''))));
  const refilter = () => {
    const ws = words.toLowerCase().split(/\s+/).filter(Boolean);
    const col = columns.find((c) => c.key === sortKey);
    rows = [];
    for (const n of state.nodes.values()) {
      if (setNames && !setNames.has(n.name)) continue;
      if (ws.length) {
        const text = `${n.name} ${nodeState(n).text} ${n.owner || 'free'} ${n.model || ''}`.toLowerCase();
        if (!ws.every((w) => text.includes(w))) continue;
      }
      rows.push(n);
    }
    const keyed = rows.map((n) => [col.value(n), n]);
    keyed.sort((a, b) => sortDir * (collator.compare(a[0], b[0]) || collator.compare(a[1].name, b[1].name)));
    rows = keyed.map((k) => k[1]);
    spacer.style.height = rows.length * ROW + 'px';
    count.textContent = `${rows.length} of ${state.nodes.size} nodes`;
    drawWindow();
  };
  let timer = 0;
  filter.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { words = filter.value; refilter(); }, 100); });
  setInput.addEventListener('change', async () => {
    const set = setInput.value.trim();
    setMsg.textContent = '';
    if (!set) { setNames = null; refilter(); return; }
    try {
      const r = await get('/node-sets', { set, requester: session.user });
      setNames = new Set(r.nodes);
      setMsg.textContent = `set: ${r.nodes.length} nodes`;
    } catch (e) {
      setNames = new Set();
      setMsg.textContent = '⚠ ' + e.message;
    }
    refilter();
  });
  scroller.addEventListener('scroll', () => requestAnimationFrame(drawWindow), { passive: true });

  drawHead();
  main.replaceChildren(h('h2', {}, 'Nodes'), h('div', { class: 'toolbar' }, filter, setInput, setMsg, count), actions, head, scroller);
  const ready = Promise.all([loadNodes(), loadTopology()]).then(() => {
    refilter();
    document.body.dataset.nodesRendered = String(performance.now());
  }, (e) => main.append(errorBox(e)));
  const off = onChange((c) => {
    if (c === null) { refilter(); return; }
    // A node whose row is in sight is redrawn in place; the order
    // (sorted by state, say) is redone at the next filter or sort.
    for (const name of c) {
      const d = drawn.get(name);
      if (d) { const el = rowEl(state.nodes.get(name), d.i); d.el.replaceWith(el); d.el = el; }
    }
  });
  void ready;
  return off;
}
