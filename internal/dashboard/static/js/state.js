// The dashboard's picture of the testbed: the nodes and the topology from
// the API, kept live by the event stream (GET /api/v1/events).

import { get } from './api.js';
import { fmtTime } from './dom.js';

export const state = {
  nodes: new Map(), // name -> api.Node
  ports: new Map(), // node name -> {switch, port: api.PortInfo}
  topology: { switches: [], unplaced: [] },
  live: false,
};

const listeners = new Set();
let pending = false;
let changedNodes = new Set();

// onChange registers fn(changed), called once per animation frame after
// changes with the names of the nodes changed (null: everything).
export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }

export function changed(name) {
  if (changedNodes !== null) {
    if (name == null) changedNodes = null; else changedNodes.add(name);
  }
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const c = changedNodes;
    changedNodes = new Set();
    for (const fn of listeners) fn(c);
  });
}

export async function loadNodes() {
  const list = await get('/nodes');
  state.nodes = new Map(list.nodes.map((n) => [n.name, n]));
  changed(null);
}

// loadTopology reads the topology again. The PoE state read live
// (loadPoE) stays on the ports read again until the next live read: a
// topology read after a resync does not make it unknown.
export async function loadTopology() {
  const t = await get('/topology');
  const known = new Map();
  for (const sw of (state.topology && state.topology.switches) || []) {
    for (const p of sw.ports || []) if (p.poe) known.set(sw.name + ' ' + p.port, p);
  }
  state.topology = t;
  state.ports = new Map();
  for (const sw of t.switches || []) {
    for (const p of sw.ports || []) {
      const old = known.get(sw.name + ' ' + p.port);
      if (old && !p.poe) Object.assign(p, { poe: old.poe, delivering: old.delivering });
      for (const d of p.devices || []) state.ports.set(d.name, { switch: sw.name, port: p });
    }
  }
  changed(null);
}

// loadPoE reads the switches' ports live (GET /switches/{name}/ports,
// SNMP on the server's side) and merges their PoE state into the
// topology's ports. It returns the errors by switch name.
export async function loadPoE() {
  const errs = new Map();
  await Promise.all((state.topology.switches || []).map(async (sw) => {
    try {
      const pc = await get('/switches/' + encodeURIComponent(sw.name) + '/ports');
      const live = new Map((pc.ports || []).map((p) => [p.port, p]));
      for (const p of sw.ports || []) {
        const l = live.get(p.port);
        p.poe = l ? l.poe : 'unavailable';
        p.delivering = l ? l.delivering : false;
      }
    } catch (e) {
      errs.set(sw.name, e.message);
    }
  }));
  changed(null);
  return errs;
}

// nodeState says a node's state in words and with an icon, never by
// colour alone: key picks the colour, icon and text say the same.
export function nodeState(n) {
  const port = state.ports.get(n.name);
  const b = n.boot || { state: n.booted ? 'booted' : 'down' };
  if (n.quarantine) {
    return { key: 'quarantined', icon: '⚠', text: `quarantined (campaign ${n.quarantine.campaign}: ${n.quarantine.reason})` };
  }
  if (b.state === 'booted') return { key: 'booted', icon: '✔', text: 'booted' };
  if (b.state === 'booting') {
    return { key: 'booting', icon: '↻', text: `booting since ${fmtTime(b.since)}` + (b.method ? ` (${b.method})` : '') };
  }
  if (b.cause === 'powersave' || (port && port.port.poe === 'off')) {
    return { key: 'off', icon: '○', text: 'powered off' + (b.cause ? ` (${b.cause})` : '') };
  }
  let why = b.cause || 'unknown';
  if (b.note) why += ', ' + b.note;
  return { key: 'down', icon: '✖', text: `down (${why})` };
}

// loadNode reads one node again (its boot context, owner, quarantine).
export async function loadNode(name) {
  const list = await get('/nodes', { name });
  const isNew = !state.nodes.has(name);
  for (const n of list.nodes) state.nodes.set(n.name, n);
  changed(isNew ? null : name);
}

// Nodes the stream names that the page does not know yet (new ones): read
// a moment later, one by one if few, all at once if many.
const unknown = new Set();
let unknownTimer = 0;
function readUnknown() {
  unknownTimer = 0;
  const names = [...unknown];
  unknown.clear();
  if (names.length > 20) loadNodes().catch(() => {});
  else for (const name of names) loadNode(name).catch(() => {});
}

// Apply a node event from the stream.
export function applyNodeChange(c) {
  const n = state.nodes.get(c.name);
  if (!n) {
    unknown.add(c.name);
    if (!unknownTimer) unknownTimer = setTimeout(readUnknown, 200);
    return false;
  }
  n.booted = c.booted;
  n.boot = c.boot;
  changed(c.name);
  return true;
}
