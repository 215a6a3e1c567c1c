// The event stream: GET /api/v1/events, read with fetch (not EventSource,
// which cannot send the bearer token), reopened with ?campaign= while a
// campaign page is shown, and after a cut with the last log line's seq
// (?after=). Events go to the handlers the views register; a node event
// updates the shared state.

import { url, headers, session } from './api.js';
import { state, applyNodeChange, loadNodes, loadTopology } from './state.js';

const handlers = { log: new Set(), campaign: new Set(), resync: new Set(), open: new Set() };
let current = null; // {campaign, abort}
let liveEl = null;
const RETRY = [500, 1000, 2000, 5000]; // ms before reconnecting, by failures in a row

export function on(type, fn) { handlers[type].add(fn); return () => handlers[type].delete(fn); }

function emit(type, v) { for (const fn of handlers[type]) fn(v); }

function setLive(on, text) {
  state.live = on;
  liveEl = liveEl || document.getElementById('live');
  if (liveEl) {
    liveEl.textContent = (on ? '● live' : '○ ') + (text || '');
    liveEl.dataset.live = on ? 'yes' : 'no';
  }
}

function dispatch(type, data, seen) {
  const v = JSON.parse(data);
  switch (type) {
    case 'hello':
      setLive(true, '');
      // A stream opened again may have missed changes: read the nodes.
      if (seen.opened) loadNodes().catch(() => {});
      seen.opened = true;
      emit('open', v);
      break;
    case 'log': seen.seq = v.seq; emit('log', v); break;
    case 'node': applyNodeChange(v); break;
    case 'campaign': emit('campaign', v); break;
    case 'resync':
      if (v.what === 'nodes') { loadNodes().catch(() => {}); loadTopology().catch(() => {}); }
      emit('resync', v);
      break;
  }
}

// read parses the stream's events until it ends.
async function read(resp, seen) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '', type = '', data = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === '') {
        if (type && data) dispatch(type, data, seen);
        type = data = '';
      } else if (line.startsWith('event: ')) type = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
      // "id:" repeats the log line's seq; ":" starts a comment.
    }
  }
}

async function run(cur) {
  const seen = { opened: false, seq: -1 };
  let failures = 0;
  while (!cur.abort.signal.aborted) {
    try {
      const q = { campaign: cur.campaign };
      if (seen.seq >= 0) q.after = seen.seq;
      const resp = await fetch(url('/events', q), { headers: headers({ Accept: 'text/event-stream' }), signal: cur.abort.signal });
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      failures = 0;
      await read(resp, seen);
    } catch (e) {
      if (cur.abort.signal.aborted) return;
      failures++;
    }
    setLive(false, 'reconnecting');
    await new Promise((r) => setTimeout(r, RETRY[Math.min(failures, RETRY.length - 1)]));
  }
}

// follow (re)opens the stream, following campaign id if not empty.
export function follow(id) {
  const campaign = id || '';
  if (!session.loggedIn) return;
  if (current && current.campaign === campaign) return;
  if (current) current.abort.abort();
  current = { campaign, abort: new AbortController() };
  run(current);
}

// restart opens the stream again (after a login: with the new token).
export function restart() {
  const campaign = current ? current.campaign : '';
  if (current) current.abort.abort();
  current = null;
  follow(campaign);
}

// stop closes the stream (at logout).
export function stop() {
  if (current) current.abort.abort();
  current = null;
  setLive(false, 'logged out');
}
