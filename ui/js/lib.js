// Shared helpers: Preact + htm from the vendored UMD builds (no build step, no CDN).
const P = window.preact;
const H = window.preactHooks;
export const h = P.h;
export const render = P.render;
export const Fragment = P.Fragment;
export const html = window.htm.bind(P.h);
export const { useState, useEffect, useRef, useMemo, useCallback, useReducer, useLayoutEffect } = H;

let uid = 0;
/** A unique id for label/input pairs. */
export function useId(prefix = 'f') {
  const ref = useRef(null);
  if (ref.current === null) ref.current = `${prefix}-${++uid}`;
  return ref.current;
}

/** Call `fn` once `ms` have passed without another call. */
export function debounce(fn, ms) {
  let t = null;
  const wrapped = (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  wrapped.cancel = () => clearTimeout(t);
  return wrapped;
}

/** Query string from an object (arrays repeat the key, null/'' left out). */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x)); else u.append(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** The hash route as [parts, query]. */
export function parseHash() {
  const raw = (location.hash || '#/').slice(1);
  const [path, query] = raw.split('?');
  return [path.split('/').filter(Boolean).map(decodeURIComponent), new URLSearchParams(query || '')];
}

export function go(path) { location.hash = path; }

/** A tiny global event emitter. */
export const bus = {
  subs: new Map(),
  on(name, fn) { if (!this.subs.has(name)) this.subs.set(name, new Set()); this.subs.get(name).add(fn); return () => this.subs.get(name).delete(fn); },
  emit(name, data) { (this.subs.get(name) || []).forEach((fn) => fn(data)); },
};

export function deepEqual(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

/** Download `blob` as `name` (used by CSV export). */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url; a.download = name; document.body.appendChild(a); a.click();
  setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 1000);
}
