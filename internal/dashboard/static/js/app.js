// The dashboard: a router over the views (#/topology, #/nodes,
// #/node/NAME, #/campaigns, #/campaign/ID, #/log), one event stream, and
// the login corner.

import { follow, restart, stop } from './events.js';
import { session } from './api.js';
import { h } from './dom.js';
import { loginBox } from './views/actions.js';
import * as topology from './views/topology.js';
import * as nodes from './views/nodes.js';
import * as node from './views/node.js';
import * as campaigns from './views/campaigns.js';
import * as log from './views/log.js';

let cleanup = null;

function route() {
  const main = document.getElementById('main');
  if (cleanup) cleanup();
  cleanup = null;
  if (!session.loggedIn) { // every call but the page's own needs a token
    main.replaceChildren(h('p', { id: 'need-login' }, 'Log in with your token (walt login prints where it keeps it; an admin makes one with walt-server user add NAME) to see the testbed.'));
    return;
  }
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const arg = parts[1] ? decodeURIComponent(parts.slice(1).join('/')) : '';
  for (const a of document.querySelectorAll('header nav a')) {
    a.toggleAttribute('aria-current', a.getAttribute('href') === '#/' + parts[0]);
  }
  switch (parts[0]) {
    case 'nodes': cleanup = nodes.render(main); break;
    case 'node': cleanup = node.render(main, arg); break;
    case 'campaigns': cleanup = campaigns.renderList(main); break;
    case 'campaign': cleanup = campaigns.render(main, arg); break;
    case 'log': cleanup = log.render(main); break;
    default: cleanup = topology.render(main);
  }
}

const login = document.getElementById('login');
loginBox(login, () => { if (session.loggedIn) restart(); else stop(); route(); });
if (session.loggedIn) follow('');
window.addEventListener('hashchange', route);
route();
