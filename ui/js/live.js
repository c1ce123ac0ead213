// Live updates of open lists and forms: the API's committed writes arrive over the /api/ws
// WebSocket as {"type": "records", "events": [{entity, id, version, op}]} (docs/live.md);
// one socket per tab, opened only while something watches, reconnected with backoff.
import { accessToken, refresh } from './api.js';
import { store } from './store.js';

const watchers = new Map();   // entity -> Set(callback)
const shown = new Map();      // entity -> ids on screen (the server then tells their deletes)
let ws = null;
let retry = 1000;
let timer = null;

function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }

function subscribe(entity) {
  send({ type: 'subscribe_records', entity, ids: (shown.get(entity) || []).slice(0, 500) });
}

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
    if (msg.type === 'ready') { for (const entity of watchers.keys()) subscribe(entity); }
    else if (msg.type === 'records') {
      for (const ev of msg.events || []) (watchers.get(ev.entity) || []).forEach((fn) => fn(ev));
    } else if (msg.type === 'error' && msg.code === 401) refresh().catch(() => {});
  };
  sock.onclose = (e) => {
    if (ws === sock) ws = null;
    // 4002: the access token expired; api.js has refreshed it, so reconnect at once
    const wait = e.code === 4002 ? 0 : retry;
    if (watchers.size) { timer = setTimeout(connect, wait); retry = Math.min(retry * 2, 30000); }
  };
}

/** Call `fn(event)` for each committed change of `entity` ({entity, id, version, op}). */
export function watch(entity, fn) {
  const fresh = !watchers.has(entity);
  if (fresh) watchers.set(entity, new Set());
  watchers.get(entity).add(fn);
  if (ws && ws.readyState === 1) { if (fresh) subscribe(entity); } else connect();
  return () => {
    const set = watchers.get(entity);
    if (set) { set.delete(fn); if (!set.size) { watchers.delete(entity); send({ type: 'unsubscribe_records', entity }); } }
    if (watchers.size === 0 && ws) { const s = ws; ws = null; s.close(); }
  };
}

/** The records of `entity` on screen: a user with a row scope hears of their deletion. */
export function showing(entity, ids) {
  shown.set(entity, ids);
  if (watchers.has(entity)) subscribe(entity);
}

export function closeLive() { watchers.clear(); shown.clear(); if (ws) { const s = ws; ws = null; s.close(); } }
