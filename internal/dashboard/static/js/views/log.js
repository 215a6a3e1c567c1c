// The platform log: the last lines, then each new one as the event
// stream brings it.

import { h, nodeLink, fmtTime } from '../dom.js';
import { ndjson } from '../api.js';
import { on } from '../events.js';
import { errorBox } from './common.js';

const KEEP = 2000; // lines kept on the page
const BACKLOG = 200;

function lineEl(l) {
  return h('li', { dataset: { seq: l.seq } }, h('time', {}, fmtTime(l.at)), ' ',
    l.node ? [nodeLink(l.node), ' '] : '', h('span', {}, l.line));
}

export function render(main) {
  const list = h('ol', { id: 'log', class: 'log' });
  main.replaceChildren(h('h2', {}, 'Platform log'), list);
  let last = -1;
  const add = (l) => {
    if (l.seq <= last) return; // told by both the backlog and the stream
    last = l.seq;
    list.append(lineEl(l));
    while (list.childElementCount > KEEP) list.firstElementChild.remove();
  };
  const backlog = () => {
    const got = [];
    return ndjson('GET', '/logs', { limit: BACKLOG }, null, (l) => got.push(l)).then(() => {
      list.replaceChildren();
      last = -1;
      got.forEach(add);
    }, (e) => list.replaceChildren(errorBox(e)));
  };
  // Lines may come on the stream while the backlog loads: both go by
  // seq, each line once.
  const early = [];
  let loaded = false;
  const offLog = on('log', (l) => (loaded ? add(l) : early.push(l)));
  const offResync = on('resync', (r) => { if (r.what === 'log') backlog(); });
  backlog().then(() => { loaded = true; early.forEach(add); });
  return () => { offLog(); offResync(); };
}
