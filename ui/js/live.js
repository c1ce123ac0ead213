// Live updates of open lists and forms: the API's committed writes arrive over the /api/ws
// WebSocket as {"type": "records", "events": [{entity, id, version, op}]} (docs/live.md);
// one socket per tab, opened while something watches (kept 20 s after the last watcher
// goes, for the next page), reconnected with backoff.
//
// A change made before a subscription is in place is never told, so once the server
// confirms a subscription the watchers get {entity, op: 'resync', reconnect} and check
// for themselves (a form compares its record's version; a list reloads after a reconnect).
import { accessToken, refresh } from './api.js';
import { store } from './store.js';

const watchers = new Map();   // entity -> Set(callback)
const shown = new Map();      // entity -> ids on screen (the server then tells their deletes)
const unconfirmed = new Set(); // entities subscribed but not yet confirmed by the server
const LINGER = 20000;
let ws = null;
let retry = 1000;
let timer = null;
let linger = null;
let readyCount = 0;

function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }

function subscribe(entity, confirm) {
  if (confirm) unconfirmed.add(entity);
  send({ type: 'subscribe_records', entity, ids: (shown.get(entity) || []).slice(0, 500) });
}

function tell(entity, ev) { (watchers.get(entity) || []).forEach((fn) => fn(ev)); }

function connect() {
  clearTimeout(timer);
  // the server says whether it sends record events (config.live)
  if (ws || watchers.size === 0 || !accessToken() || !(store.config && store.config.live)) return;
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const sock = new WebSocket(`${proto}://${location.host}/api/ws`);
  ws = sock;
  sock.onopen = () => { retry = 1000; sock.send(JSON.stringify({ type: 'auth', token: accessToken() })); };
  sock.onmessage = (e) => {
    let msg; try { msg = JSON.parse(e.data); } catch { return; }
    if (msg.type === 'ready') {
      readyCount += 1;
      for (const entity of watchers.keys()) subscribe(entity, true);
    } else if (msg.type === 'subscribed_records') {
      for (const entity of msg.entities || []) {
        if (unconfirmed.delete(entity)) tell(entity, { entity, op: 'resync', reconnect: readyCount > 1 });
      }
    } else if (msg.type === 'records') {
      for (const ev of msg.events || []) tell(ev.entity, ev);
    } else if (msg.type === 'error' && msg.code === 401) refresh().catch(() => {});
  };
  sock.onclose = (e) => {
    if (ws === sock) ws = null;
    unconfirmed.clear();
    // 4002: the access token expired; api.js has refreshed it, so reconnect at once
    const wait = e.code === 4002 ? 0 : retry;
    if (watchers.size) { timer = setTimeout(connect, wait); retry = Math.min(retry * 2, 30000); }
  };
}

function closeSocket() {
  clearTimeout(linger); clearTimeout(timer);
  if (ws) { const s = ws; ws = null; s.close(); }
}

/** Call `fn(event)` for each committed change of `entity` ({entity, id, version, op}),
 * and with {entity, op: 'resync', reconnect} once the server confirms the subscription. */
export function watch(entity, fn) {
  clearTimeout(linger);
  const fresh = !watchers.has(entity);
  if (fresh) watchers.set(entity, new Set());
  watchers.get(entity).add(fn);
  if (ws && ws.readyState === 1) { if (fresh) subscribe(entity, true); else tell(entity, { entity, op: 'resync', reconnect: false }); } else connect();
  return () => {
    const set = watchers.get(entity);
    if (set) {
      set.delete(fn);
      if (!set.size) { watchers.delete(entity); unconfirmed.delete(entity); send({ type: 'unsubscribe_records', entity }); }
    }
    if (watchers.size === 0 && ws) linger = setTimeout(closeSocket, LINGER);
  };
}

/** The records of `entity` on screen: a user with a row scope hears of their deletion. */
export function showing(entity, ids) {
  shown.set(entity, ids);
  if (watchers.has(entity)) subscribe(entity, false);
}

export function closeLive() { watchers.clear(); shown.clear(); unconfirmed.clear(); closeSocket(); }
