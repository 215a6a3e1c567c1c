// The event stream: one EventSource on GET /api/v1/events, reopened with
// ?campaign= while a campaign page is shown. Events go to the handlers
// the views register; a node event updates the shared state.

import { url } from './api.js';
import { state, applyNodeChange, loadNodes, loadTopology } from './state.js';

const handlers = { log: new Set(), campaign: new Set(), resync: new Set(), open: new Set() };
let source = null;
let campaign = '';
let liveEl = null;

export function on(type, fn) { handlers[type].add(fn); return () => handlers[type].delete(fn); }

function emit(type, v) { for (const fn of handlers[type]) fn(v); }

function setLive(on, text) {
  state.live = on;
  if (liveEl) {
    liveEl.textContent = (on ? '● live' : '○ ') + (text || '');
    liveEl.dataset.live = on ? 'yes' : 'no';
  }
}

// follow (re)opens the stream, following campaign id if not empty.
export function follow(id) {
  if (source && campaign === (id || '')) return;
  campaign = id || '';
  if (source) source.close();
  liveEl = document.getElementById('live');
  const es = new EventSource(url('/events', { campaign }));
  source = es;
  let opened = false;
  es.addEventListener('hello', (e) => {
    setLive(true, '');
    // A reopened stream may have missed changes: reload the nodes.
    if (opened) loadNodes().catch(() => {});
    opened = true;
    emit('open', JSON.parse(e.data));
  });
  es.addEventListener('log', (e) => emit('log', JSON.parse(e.data)));
  es.addEventListener('node', (e) => applyNodeChange(JSON.parse(e.data)));
  es.addEventListener('campaign', (e) => emit('campaign', JSON.parse(e.data)));
  es.addEventListener('resync', (e) => {
    const r = JSON.parse(e.data);
    if (r.what === 'nodes') { loadNodes().catch(() => {}); loadTopology().catch(() => {}); }
    emit('resync', r);
  });
  es.onerror = () => setLive(false, 'reconnecting');
}
