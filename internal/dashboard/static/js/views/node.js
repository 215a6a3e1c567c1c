// A node's page: its state, port, owner, boot context, its reboot
// history (methods, errors, boot times), a plot of its boot times and,
// for a vnode, its console.

import { h, fmtTime, seconds } from '../dom.js';
import { plot } from '../plot.js';
import { get, url, session, headers } from '../api.js';
import { state, onChange, loadNode, loadTopology, loadPoE } from '../state.js';
import { badge, lastBoot, poeText, errorBox } from './common.js';
import { rebootForm } from './actions.js';

const HISTORY = 200;
const CONSOLE = 64 * 1024;

function historyRow(r) {
  const attempts = (r.attempts || []).map((a) => (a.error ? `✖ ${a.method}: ${a.error}` : `✔ ${a.method}`)).join(' → ');
  return h('tr', { dataset: { method: r.method || '' } },
    h('td', {}, fmtTime(r.requested)), h('td', {}, r.requester || ''), h('td', {}, r.cause || ''),
    h('td', { class: 'method' }, r.ok ? '✔ ' + (r.method || '') : '✖ not rebooted'), h('td', {}, attempts),
    h('td', {}, r.boot_duration ? seconds(r.boot_duration).toFixed(2) + ' s' : r.state === 'running' ? 'running' : '—'));
}

export function render(main, name) {
  const head = h('div', { class: 'node-head' });
  const hist = h('div', {});
  const actions = h('div', { class: 'actions' });
  main.replaceChildren(h('h2', {}, 'Node ', h('span', { id: 'node-name' }, name)), head, actions, hist);
  let refresh = 0, lastState = null;
  // reread reads the node (its boot context) and its history again, a
  // moment after a change.
  const reread = () => {
    clearTimeout(refresh);
    refresh = setTimeout(() => { drawHistory(); loadNode(name).catch(() => {}); }, 300);
  };
  // A reboot's outcome may come after the new boot it caused, and
  // complete that boot's context: read the node again once it is known.
  if (session.loggedIn) actions.append(rebootForm(() => name, reread));
  const consoleOut = h('pre', { class: 'console', id: 'console' });
  let consoleStop = null;
  // followConsole streams the vnode's console into the page, its last
  // CONSOLE characters kept, as text.
  const followConsole = async () => {
    if (consoleStop) return;
    const ctl = new AbortController();
    consoleStop = () => ctl.abort();
    // Below the reboot buttons: a console growing as it streams must not
    // move them under the user's pointer.
    actions.after(consoleOut);
    try {
      const resp = await fetch(url('/vnodes/' + encodeURIComponent(name) + '/console', { follow: true }), { headers: headers({ Accept: 'text/plain' }), signal: ctl.signal });
      if (!resp.ok) throw new Error('console: HTTP ' + resp.status);
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        consoleOut.textContent = (consoleOut.textContent + dec.decode(value, { stream: true })).slice(-CONSOLE);
      }
    } catch (e) {
      if (!ctl.signal.aborted) consoleOut.textContent += '\n⚠ ' + e.message;
    }
    consoleStop = null;
  };
  const drawHead = () => {
    const n = state.nodes.get(name);
    if (!n) { head.replaceChildren(h('p', {}, `No node named ${name}.`)); return; }
    const p = state.ports.get(name);
    const rows = [
      ['State', badge(n)],
      ['Owner', n.owner || 'free'],
      ['Last boot', lastBoot(n) || '—'],
      ['Last reboot method', (n.boot && n.boot.last_reboot_method) || '—'],
      ['Switch port', p ? [`${p.switch} port ${p.port.port}, `, poeText(p.port)] : 'unknown'],
      ['Model', n.model || ''], ['IP', n.ip || ''], ['MAC', n.mac || ''],
      ['Boot context', n.boot_context ? `${n.boot_context.cause}${n.boot_context.method ? ' by ' + n.boot_context.method : ''}${n.boot_context.reboot_outcome ? ' (reboot ' + n.boot_context.reboot_outcome + ': maybe not its cause)' : ''}` : '—'],
    ];
    if (n.vnode || n.virtual) {
      // A button, not a link: the call needs the token, which a link cannot send.
      rows.push(['Console', h('button', { type: 'button', id: 'console-follow', onclick: followConsole }, 'show and follow the console')]);
    }
    head.replaceChildren(h('table', { class: 'kv', id: 'node-info', dataset: { since: (n.boot && n.boot.since) || '' } }, h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))))));
  };
  const drawHistory = async () => {
    try {
      const list = await get('/reboots', { node: name, limit: HISTORY });
      const rs = list.reboots || [];
      const pts = rs.filter((r) => r.boot_duration).map((r) => ({
        x: new Date(r.requested).getTime(), y: seconds(r.boot_duration),
        mark: (r.attempts || []).length > 1 ? 'square' : 'circle',
        label: `${fmtTime(r.requested)}: ${seconds(r.boot_duration).toFixed(2)} s by ${r.method}`,
      })).reverse();
      hist.replaceChildren(h('h3', {}, 'Boot times'), plot(pts, `boot times of ${name}`),
        h('p', { class: 'legend' }, '● first method worked  ■ after a fallback'),
        h('h3', {}, `Reboot history (last ${HISTORY})`),
        rs.length === 0 ? h('p', {}, 'No reboot recorded.') :
          h('table', { id: 'history' }, h('thead', {}, h('tr', {}, ['Requested', 'By', 'Cause', 'Outcome', 'Attempts', 'Boot time'].map((t) => h('th', {}, t)))),
            h('tbody', {}, rs.map(historyRow))));
    } catch (e) { hist.replaceChildren(errorBox(e)); }
  };
  Promise.all([loadNode(name), loadTopology()]).then(() => { drawHead(); return loadPoE(); }).catch((e) => head.replaceChildren(errorBox(e)));
  drawHistory();
  const off = onChange((c) => {
    if (c !== null && !c.has(name)) return;
    drawHead();
    const n = state.nodes.get(name);
    const st = n && n.boot ? n.boot.state + ' ' + n.boot.since + ' ' + (n.boot.last_reboot_method || '') : '';
    if (lastState === null || st === lastState) { lastState = st; return; }
    lastState = st;
    // A new state or reboot method: a new boot completes a reboot
    // record, has a new context.
    reread();
  });
  return () => { off(); clearTimeout(refresh); if (consoleStop) consoleStop(); };
}
