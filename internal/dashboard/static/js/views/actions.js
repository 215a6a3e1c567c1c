// Actions of a logged-in user: login with a token, reboot and hard reboot
// of a node set (after a confirmation, with the ownership rules the API
// enforces), start and stop of a campaign. Each goes to the API the CLI
// uses, with the token as a bearer token.

import { h, nodeLink } from '../dom.js';
import { ndjson, post, session, url } from '../api.js';

// loginBox fills the header's login corner: a token, checked with GET
// /api/v1/whoami, which names its user.
export function loginBox(el, onChange) {
  const draw = (msg) => {
    if (session.loggedIn) {
      el.replaceChildren(h('span', { id: 'whoami' }, 'logged in as ' + session.user + ' '),
        h('button', { type: 'button', id: 'logout', onclick: () => { session.logout(); draw(); onChange(); } }, 'Log out'));
      return;
    }
    const token = h('input', { id: 'login-token', type: 'password', placeholder: 'token (walt login)', autocomplete: 'current-password', required: true });
    const form = h('form', { id: 'login-form', class: 'login' }, token, h('button', { type: 'submit' }, 'Log in'),
      msg ? h('span', { class: 'error', role: 'alert' }, ' ⚠ ' + msg) : '');
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const tok = token.value.trim();
      if (!tok) return;
      try {
        const resp = await fetch(url('/whoami'), { headers: { Accept: 'application/json', Authorization: 'Bearer ' + tok } });
        const body = await resp.json();
        if (!resp.ok) throw new Error((body.error && body.error.message) || 'HTTP ' + resp.status);
        session.login(body.user, tok);
        draw();
        onChange();
      } catch (err) { draw(err.message); }
    });
    el.replaceChildren(form);
  };
  draw();
}

function outcomeRow(r) {
  if (r.ok) return h('li', { dataset: { node: r.node, ok: 'yes' } }, '✔ ', nodeLink(r.node), ` rebooted by ${r.method}`);
  const last = (r.attempts || []).map((a) => `${a.method}: ${a.error || 'ok'}`).join('; ');
  return h('li', { dataset: { node: r.node, ok: 'no' } }, '✖ ', nodeLink(r.node), ` not rebooted (${last || 'no method'})`);
}

// rebootForm offers a reboot of the set getSet() returns; ended(), if
// given, is called once a reboot's answer has ended.
export function rebootForm(getSet, ended) {
  const box = h('div', { class: 'reboot' });
  const out = h('div', { class: 'reboot-out', role: 'status' });
  const run = async (set, hard, force) => {
    const list = h('ul', { class: 'outcomes' });
    const head = h('p', {}, `${hard ? 'Hard reboot' : 'Reboot'} of ${set}…`);
    out.replaceChildren(head, list);
    try {
      await ndjson('POST', '/reboots', null, { set, hard, force, requester: session.user }, (ev) => {
        if (ev.type === 'start') head.textContent = `${hard ? 'Hard reboot' : 'Reboot'}: ${ev.total} nodes`;
        if (ev.type === 'node') list.append(outcomeRow(ev.node));
        if (ev.type === 'done') head.textContent = `Done: ${ev.rebooted || 0} rebooted, ${ev.failed || 0} failed.`;
        if (ev.type === 'error') out.append(h('p', { class: 'error', role: 'alert' }, '⚠ ' + ev.error.message));
      });
    } catch (e) {
      out.replaceChildren(h('p', { class: 'error', role: 'alert' }, '⚠ ' + e.message));
      if (e.code === 'not_owned' && !force) {
        out.append(h('button', { type: 'button', id: 'reboot-force', onclick: () => run(set, hard, true) }, `${hard ? 'Hard reboot' : 'Reboot'} them anyway (force)`));
      }
    }
    if (ended) ended();
  };
  const ask = (hard) => {
    const set = getSet();
    if (!set) return;
    const what = hard ? 'Hard reboot (power cycle)' : 'Reboot';
    out.replaceChildren(h('p', { class: 'confirm' }, `${what} ${set.length > 200 ? set.slice(0, 200) + '…' : set}?`),
      h('button', { type: 'button', id: 'reboot-confirm', onclick: () => run(set, hard, false) }, `Yes, ${what.toLowerCase()}`),
      ' ', h('button', { type: 'button', id: 'reboot-cancel', onclick: () => out.replaceChildren() }, 'Cancel'));
  };
  box.append(h('button', { type: 'button', id: 'reboot', onclick: () => ask(false) }, '↻ Reboot…'), ' ',
    h('button', { type: 'button', id: 'hard-reboot', onclick: () => ask(true) }, '↯ Hard reboot…'), out);
  return box;
}

// campaignForm starts a campaign; done(c) gets the campaign started.
export function campaignForm(done) {
  const set = h('input', { id: 'camp-set', placeholder: 'node set', required: true });
  const name = h('input', { id: 'camp-name', placeholder: 'name (optional)', maxlength: 64 });
  const repeat = h('input', { id: 'camp-repeat', type: 'number', min: 1, max: 10000, value: 3 });
  const hard = h('input', { id: 'camp-hard', type: 'checkbox' });
  const msg = h('span', { role: 'status' });
  const form = h('form', { class: 'campaign-form' }, 'Start a campaign: ', set, name, 'rounds ', repeat,
    h('label', {}, hard, ' hard'), h('button', { type: 'submit' }, 'Start'), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.textContent = '';
    try {
      const c = await post('/campaigns', { set: set.value.trim(), name: name.value.trim(), repeat: Number(repeat.value), hard: hard.checked, requester: session.user });
      done(c);
    } catch (err) { msg.textContent = '⚠ ' + err.message; }
  });
  return form;
}

export async function stopCampaign(id) {
  return post('/campaigns/' + encodeURIComponent(id) + '/stop', { requester: session.user });
}
