// Campaigns: the list, and a campaign's page with its live progress (the
// events of GET /api/v1/events?campaign=ID, those walt campaign follow
// reads), its statistics and a plot of its boot times.

import { h, nodeLink, fmtTime, seconds } from '../dom.js';
import { get, session } from '../api.js';
import { on, follow } from '../events.js';
import { plot } from '../plot.js';
import { errorBox } from './common.js';
import { campaignForm, stopCampaign } from './actions.js';

const stateIcon = { running: '↻', done: '✔', stopped: '■', active: '↻', finished: '✔', quarantined: '⚠', taken: '⇄' };
const label = (s) => (stateIcon[s] || '•') + ' ' + s;
const campLink = (c) => h('a', { href: '#/campaign/' + encodeURIComponent(c.id) }, `#${c.id}${c.name ? ' ' + c.name : ''}`);

export function renderList(main) {
  const body = h('div', {}, h('p', {}, 'Loading campaigns…'));
  main.replaceChildren(h('h2', {}, 'Campaigns'),
    session.loggedIn ? campaignForm((c) => { location.hash = '#/campaign/' + encodeURIComponent(c.id); }) : '', body);
  get('/campaigns', { limit: 100 }).then((l) => {
    const cs = l.campaigns || [];
    body.replaceChildren(cs.length === 0 ? h('p', {}, 'No campaign yet.') : h('table', { id: 'campaigns' },
      h('thead', {}, h('tr', {}, ['Campaign', 'By', 'Set', 'State', 'Round', 'Started'].map((t) => h('th', {}, t)))),
      h('tbody', {}, cs.map((c) => h('tr', { dataset: { campaign: c.id } }, h('td', {}, campLink(c)), h('td', {}, c.requester),
        h('td', {}, c.set), h('td', { class: 'st-' + c.state }, label(c.state)), h('td', {}, `${c.round} of ${c.repeat}`),
        h('td', {}, fmtTime(c.created)))))));
  }, (e) => body.replaceChildren(errorBox(e)));
}

function summary(s) {
  if (!s) return '—';
  return `median ${s.median.toFixed(2)} s, p95 ${s.p95.toFixed(2)} s (${s.n} boots, ${s.min.toFixed(2)}–${s.max.toFixed(2)} s)`;
}

const methods = (m) => Object.entries(m || {}).map(([k, v]) => `${k}: ${v}`).join(', ');

export function render(main, id) {
  let camp = null;
  const head = h('div', { id: 'campaign-head' }, h('p', {}, 'Loading…'));
  const progress = h('div', { id: 'campaign-progress', role: 'status' });
  const nodes = h('div', {});
  const stats = h('div', { id: 'campaign-stats' });
  const plotBox = h('div', {});
  main.replaceChildren(h('h2', {}, `Campaign #${id}`), head, progress, nodes, h('h3', {}, 'Statistics'), stats, h('h3', {}, 'Boot times'), plotBox);
  const rows = new Map(); // node -> tr

  const drawHead = () => {
    const c = camp;
    const stop = session.loggedIn && c.state === 'running' ?
      h('button', { type: 'button', id: 'campaign-stop', onclick: () => stopCampaign(id).catch((e) => head.append(errorBox(e))) }, '■ Stop') : '';
    head.replaceChildren(h('p', {}, `${c.name || ''} by ${c.requester} on ${c.set}: ${c.mode}, ${c.repeat} × ${c.hard ? 'hard reboot' : 'reboot'}; `,
      h('strong', { id: 'campaign-state', dataset: { state: c.state } }, label(c.state)), c.finished ? ` (ended ${fmtTime(c.finished)})` : ''), stop);
  };
  const drawProgress = () => {
    const ns = camp.nodes || [];
    let done = 0, booted = 0, failed = 0;
    const by = {};
    for (const n of ns) { done += n.booted + n.failed; booted += n.booted; failed += n.failed; by[n.state] = (by[n.state] || 0) + 1; }
    const total = ns.length * camp.repeat;
    const bar = h('progress', { max: total || 1, value: done });
    progress.replaceChildren(h('p', {}, bar, ` ${done} of ${total} iterations: ${booted} booted, ${failed} failed; round ${camp.round}; nodes `,
      Object.entries(by).map(([k, v]) => `${label(k)} ${v}`).join(', ')));
  };
  const nodeRow = (n) => h('tr', { dataset: { node: n.node, state: n.state } }, h('td', {}, nodeLink(n.node)), h('td', {}, label(n.state)),
    h('td', {}, String(n.iteration)), h('td', {}, `${n.booted} booted, ${n.failed} failed`),
    h('td', {}, n.last_boot ? seconds(n.last_boot).toFixed(2) + ' s' : '—'), h('td', {}, n.phase || ''), h('td', {}, n.reason || ''));
  const drawNodes = () => {
    rows.clear();
    const tb = h('tbody', {}, (camp.nodes || []).map((n) => { const r = nodeRow(n); rows.set(n.node, r); return r; }));
    nodes.replaceChildren(h('table', { id: 'campaign-nodes' }, h('thead', {}, h('tr', {},
      ['Node', 'State', 'Iteration', 'So far', 'Last boot', 'Phase', 'Reason'].map((t) => h('th', {}, t)))), tb));
  };
  const drawAll = () => { drawHead(); drawProgress(); drawNodes(); };
  const loadStats = async () => {
    try {
      const [st, boots] = await Promise.all([get(`/campaigns/${encodeURIComponent(id)}/stats`), get(`/campaigns/${encodeURIComponent(id)}/boots`)]);
      const a = st.all;
      stats.replaceChildren(h('table', { class: 'kv' }, h('tbody', {},
        h('tr', {}, h('th', {}, 'Attempted'), h('td', {}, String(a.attempted))),
        h('tr', {}, h('th', {}, 'Completed'), h('td', {}, String(a.completed))),
        h('tr', {}, h('th', {}, 'Failed'), h('td', {}, String(a.failed))),
        h('tr', {}, h('th', {}, 'Methods'), h('td', {}, methods(a.methods))),
        h('tr', {}, h('th', {}, 'Fallbacks'), h('td', {}, String(a.fallbacks))),
        h('tr', {}, h('th', {}, 'Boot time'), h('td', {}, summary(a.boot_time))))),
      h('table', { id: 'campaign-node-stats' }, h('thead', {}, h('tr', {}, ['Node', 'Completed', 'Failed', 'Methods', 'Boot time', 'Note'].map((t) => h('th', {}, t)))),
        h('tbody', {}, (st.nodes || []).map((n) => h('tr', {}, h('td', {}, nodeLink(n.node)), h('td', {}, String(n.completed)), h('td', {}, String(n.failed)),
          h('td', {}, methods(n.methods)), h('td', {}, summary(n.boot_time)), h('td', {}, n.outlier ? '⚠ outlier: ' + n.outlier_note : ''))))));
      const pts = (boots.boots || []).filter((b) => b.boot_duration).map((b) => ({
        x: b.iteration, y: seconds(b.boot_duration), mark: b.fallback ? 'square' : 'circle',
        label: `${b.node} iteration ${b.iteration}: ${seconds(b.boot_duration).toFixed(2)} s by ${b.method}`,
      }));
      plotBox.replaceChildren(plot(pts, `boot times of campaign ${id}`, { xfmt: (x) => 'iteration ' + x, line: false }),
        h('p', { class: 'legend' }, '● first method worked  ■ after a fallback'));
    } catch (e) { stats.replaceChildren(errorBox(e)); }
  };
  let statsTimer = 0;
  const statsSoon = () => { if (!statsTimer) statsTimer = setTimeout(() => { statsTimer = 0; loadStats(); }, 1000); };

  get(`/campaigns/${encodeURIComponent(id)}`).then((c) => { camp = c; drawAll(); loadStats(); }, (e) => head.replaceChildren(errorBox(e)));
  follow(id);
  const off = on('campaign', (ev) => {
    if (ev.type === 'state') { camp = ev.campaign; drawAll(); statsSoon(); return; }
    if (!camp) return;
    if (ev.type === 'round') { camp.round = ev.round; drawProgress(); }
    if (ev.type === 'node') {
      const i = camp.nodes.findIndex((n) => n.node === ev.node.node);
      if (i >= 0) camp.nodes[i] = ev.node;
      const r = rows.get(ev.node.node);
      if (r) { const nr = nodeRow(ev.node); r.replaceWith(nr); rows.set(ev.node.node, nr); }
      drawProgress();
    }
    if (ev.type === 'boot') statsSoon();
    if (ev.type === 'end') { get(`/campaigns/${encodeURIComponent(id)}`).then((c) => { camp = c; drawAll(); }); loadStats(); }
  });
  return () => { off(); clearTimeout(statsTimer); follow(''); };
}
