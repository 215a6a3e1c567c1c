// The API, as the CLI uses it. Actions send the token the user pasted at
// login (kept in sessionStorage) as a bearer token.

const PREFIX = '/api/v1';
const TOKEN = 'walt.token', USER = 'walt.user';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN) || ''; },
  get user() { return sessionStorage.getItem(USER) || ''; },
  login(user, token) { sessionStorage.setItem(USER, user); sessionStorage.setItem(TOKEN, token); },
  logout() { sessionStorage.removeItem(USER); sessionStorage.removeItem(TOKEN); },
  get loggedIn() { return this.user !== ''; },
};

export function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  if (session.token) h.Authorization = 'Bearer ' + session.token;
  return h;
}

// ApiError carries the server's error message.
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || 'HTTP ' + status);
    this.status = status;
    this.code = e.code;
    this.culprits = e.culprits || [];
  }
}

async function check(resp) {
  if (resp.ok) return resp;
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON */ }
  throw new ApiError(resp.status, body);
}

export function url(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v !== '' && v != null) q.set(k, String(v));
  const s = q.toString();
  return PREFIX + path + (s ? '?' + s : '');
}

export async function get(path, query) {
  const resp = await check(await fetch(url(path, query), { headers: headers() }));
  return resp.json();
}

// ndjson calls onLine with each value of an NDJSON answer as it comes.
export async function ndjson(method, path, query, body, onLine) {
  const init = { method, headers: headers(body ? { 'Content-Type': 'application/json' } : {}) };
  if (body) init.body = JSON.stringify(body);
  const resp = await check(await fetch(url(path, query), init));
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) onLine(JSON.parse(line));
    }
    if (done) break;
  }
}

export async function post(path, body) {
  const resp = await check(await fetch(url(path), {
    method: 'POST', headers: headers({ 'Content-Type': 'application/json' }), body: JSON.stringify(body),
  }));
  return resp.status === 204 ? null : resp.json();
}
