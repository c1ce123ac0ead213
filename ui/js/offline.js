// Writes made while the link is down are kept on the device (localStorage) and sent, in
// order, when it returns. Each carries the version the user edited, so the server refuses a
// write over someone else's change (409): it stays here, marked, for the user to resolve.
// Nothing is ever sent without its version, so nothing is silently overwritten.
import { api } from './api.js';
import { bus } from './lib.js';

const KEY = 'campo.outbox';

export function outbox() {
  try { return JSON.parse(localStorage.getItem(KEY) || '[]'); } catch { return []; }
}
function saveBox(items) { localStorage.setItem(KEY, JSON.stringify(items)); bus.emit('outbox', items); }

/** Keep a write for later: {method, url, body, entity, recordId, title}. */
export function enqueue(item) {
  const items = outbox();
  items.push({ ...item, id: `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, at: new Date().toISOString(), state: 'waiting' });
  saveBox(items);
}

export function discard(id) { saveBox(outbox().filter((i) => i.id !== id)); }

let running = false;
let retryIn = 1000;
let retryTimer = null;
/** Send what is waiting; returns {sent, conflicts, failed}. When the link is not there yet
 * (the browser says online before requests get through) it tries again, 1 s then doubling
 * up to 30 s, while the browser says online. */
export async function replay() {
  if (running) return { sent: 0, conflicts: 0, failed: 0 };
  running = true;
  clearTimeout(retryTimer);
  const result = { sent: 0, conflicts: 0, failed: 0 };
  let unreachable = false;
  try {
    for (const item of outbox()) {
      if (item.state === 'conflict' || item.state === 'error') continue;
      try {
        const saved = await api(item.method, item.url, { body: item.body });
        saveBox(outbox().filter((i) => i.id !== item.id));
        result.sent += 1;
        bus.emit('outbox-sent', { item, saved });
      } catch (err) {
        if (err.offline) { unreachable = true; break; }
        const items = outbox();
        const kept = items.find((i) => i.id === item.id);
        if (kept) {
          kept.state = err.status === 409 ? 'conflict' : 'error';
          kept.error = err.body && err.body.message; kept.fields = err.fields;
          saveBox(items);
        }
        if (err.status === 409) result.conflicts += 1; else result.failed += 1;
      }
    }
  } finally { running = false; }
  if (unreachable && navigator.onLine) {
    retryTimer = setTimeout(replay, retryIn); retryIn = Math.min(retryIn * 2, 30000);
  } else if (!unreachable) retryIn = 1000;
  if (result.sent || result.conflicts || result.failed) bus.emit('outbox-result', result);
  return result;
}

window.addEventListener('online', () => { replay(); });
