// The REST client: tokens (access in memory, refresh token on the device so a reload or a
// link that comes back does not need a new sign-in), refresh before expiry, one retry on 401,
// Accept-Language for server messages, and a device cache of the metadata for offline use.
import { bus } from './lib.js';
import { i18n } from './i18n.js';

const REFRESH_KEY = 'campo.refresh';
const CACHE_PREFIX = 'campo.cache.';
const auth = { access: null, refresh: localStorage.getItem(REFRESH_KEY), exp: 0, timer: null, pending: null };

export class ApiError extends Error {
  constructor(status, body, offline = false) {
    super((body && body.message) || (offline ? 'offline' : `HTTP ${status}`));
    this.status = status; this.body = body || {}; this.offline = offline;
  }
  /** Per-field messages of a 4xx answer (`errors.json`). */
  get fields() { return (this.body.errors && this.body.errors.json) || {}; }
}

function decodeExp(token) {
  try { return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp * 1000; } catch { return 0; }
}

function setTokens(data) {
  auth.access = data.access_token; auth.exp = decodeExp(data.access_token);
  if (data.refresh_token) { auth.refresh = data.refresh_token; localStorage.setItem(REFRESH_KEY, data.refresh_token); }
  clearTimeout(auth.timer);
  const wait = Math.max(5000, auth.exp - Date.now() - 60000);
  auth.timer = setTimeout(() => { refresh().catch(() => {}); }, wait);
}

function clearTokens() {
  auth.access = null; auth.refresh = null; auth.exp = 0; clearTimeout(auth.timer);
  localStorage.removeItem(REFRESH_KEY);
}

export function hasSession() { return Boolean(auth.refresh); }
export function accessToken() { return auth.access; }

async function raw(method, url, { body, headers = {}, token = auth.access, contentType } = {}) {
  const h = { 'Accept-Language': i18n.lang, ...(i18n.units ? { 'X-Units': i18n.units } : {}), ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== 'string') {
    h['Content-Type'] = 'application/json'; payload = JSON.stringify(body);
  } else if (contentType) h['Content-Type'] = contentType;
  try {
    return await fetch(url, { method, headers: h, body: payload, cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, { message: String(err) }, true);
  }
}

async function parse(resp) {
  if (resp.status === 204) return null;
  const type = resp.headers.get('Content-Type') || '';
  if (type.includes('json')) return resp.json();
  return resp.text();
}

/** Exchange the refresh token for a new pair (one request at a time). */
export function refresh() {
  if (!auth.refresh) return Promise.reject(new ApiError(401, { message: 'no session' }));
  if (auth.pending) return auth.pending;
  auth.pending = (async () => {
    const resp = await raw('POST', '/api/auth/refresh', { token: auth.refresh });
    if (!resp.ok) {
      const body = await parse(resp).catch(() => ({}));
      clearTokens(); bus.emit('expired');
      throw new ApiError(resp.status, body);
    }
    setTokens(await resp.json());
  })().finally(() => { auth.pending = null; });
  return auth.pending;
}

export async function login(username, password) {
  const resp = await raw('POST', '/api/auth/login', { body: { username, password }, token: null });
  const body = await parse(resp);
  if (!resp.ok) throw new ApiError(resp.status, body);
  setTokens(body);
  bus.emit('login');
}

export async function logout() {
  try { if (auth.access) await raw('POST', '/api/auth/logout'); } catch { /* offline: forget locally */ }
  clearTokens();
  Object.keys(localStorage).filter((k) => k.startsWith(CACHE_PREFIX)).forEach((k) => localStorage.removeItem(k));
  if (window.caches) caches.delete('campo-api').catch(() => {});
  bus.emit('logout');
}

/** One API call; JSON in and out; ApiError for anything but 2xx. */
export async function api(method, url, options = {}) {
  if (!auth.access && auth.refresh) await refresh();
  let resp = await raw(method, url, options);
  if (resp.status === 401 && auth.refresh) {
    await refresh();
    resp = await raw(method, url, options);
  }
  const body = await parse(resp).catch(() => null);
  if (!resp.ok) {
    if (resp.status === 401) { clearTokens(); bus.emit('expired'); }
    throw new ApiError(resp.status, body);
  }
  return options.withResponse ? { body, resp } : body;
}

export const get = (url, o) => api('GET', url, o);
export const post = (url, body, o = {}) => api('POST', url, { ...o, body });
export const put = (url, body, o = {}) => api('PUT', url, { ...o, body });
export const patch = (url, body, o = {}) => api('PATCH', url, { ...o, body });
export const del = (url, o) => api('DELETE', url, o);

/** A GET whose last answer is kept on the device and served when the link is down. */
export async function cachedGet(url) {
  try {
    const body = await get(url);
    try { localStorage.setItem(CACHE_PREFIX + url, JSON.stringify(body)); } catch { /* quota */ }
    return body;
  } catch (err) {
    const kept = localStorage.getItem(CACHE_PREFIX + url);
    if (err.offline && kept) return JSON.parse(kept);
    throw err;
  }
}

/** A GET returning the raw Response (CSV export). */
export async function fetchBlob(url) {
  if (!auth.access && auth.refresh) await refresh();
  let resp = await raw('GET', url);
  if (resp.status === 401 && auth.refresh) { await refresh(); resp = await raw('GET', url); }
  if (!resp.ok) throw new ApiError(resp.status, await parse(resp).catch(() => null));
  return resp.blob();
}
