// Live updates of open lists and forms: record events from the API's writes arrive over the
// existing /api/ws WebSocket ({"type": "records"}); one socket per tab, reconnected with backoff.
import { accessToken, refresh } from './api.js';
import { store } from './store.js';

const watchers = new Map();   // entity -> Set(callback)
let ws = null;
let retry = 1000;
let timer = null;

function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }

function subscribe() { send({ type: 'watch', entities: [...watchers.keys()] }); }

function connect() {
  clearTimeout(timer);
  // the server says whether it sends record events (config.live); without them no socket is
  // opened: each open WebSocket holds a server thread
  if (ws || watchers.size === 0 || !accessToken() || !(store.config && store.config.live)) return;
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const sock = new WebSocket(`${proto}://${location.host}/api/ws`);
  ws = sock;
  sock.onopen = () => { retry = 1000; sock.send(JSON.stringify({ type: 'auth', token: accessToken() })); };
  sock.onmessage = (e) => {
    let msg; try { msg = JSON.parse(e.data); } catch { return; }
    if (msg.type === 'ready') subscribe();
    else if (msg.type === 'records') {
      for (const ev of msg.events || []) (watchers.get(ev.entity) || []).forEach((fn) => fn(ev));
    } else if (msg.type === 'error' && msg.code === 401) refresh().catch(() => {});
  };
  sock.onclose = () => {
    if (ws === sock) ws = null;
    if (watchers.size) { timer = setTimeout(connect, retry); retry = Math.min(retry * 2, 30000); }
  };
}

/** Call `fn(event)` for each change of `entity` ({entity, id, action, version, user}). */
export function watch(entity, fn) {
  if (!watchers.has(entity)) watchers.set(entity, new Set());
  watchers.get(entity).add(fn);
  if (ws && ws.readyState === 1) subscribe(); else connect();
  return () => {
    const set = watchers.get(entity);
    if (set) { set.delete(fn); if (!set.size) watchers.delete(entity); }
    if (watchers.size === 0 && ws) { const s = ws; ws = null; s.close(); } else subscribe();
  };
}

export function closeLive() { watchers.clear(); if (ws) { const s = ws; ws = null; s.close(); } }
