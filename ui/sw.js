// Service worker: the shell loads on a flaky link. Static files: cache first, refreshed in
// the background; the model's metadata: network first, cached copy when the link is down.
// Other API calls are never cached (the desk keeps offline writes itself, see offline.js).
const SHELL = 'campo-shell-v1';
const API = 'campo-api';
const FILES = ['/', '/ui/css/desk.css', '/ui/css/print.css', '/ui/vendor/preact/preact.umd.js',
  '/ui/vendor/preact/hooks.umd.js', '/ui/vendor/htm/htm.umd.js', '/ui/js/app.js', '/ui/js/lib.js',
  '/ui/js/i18n.js', '/ui/js/api.js', '/ui/js/store.js', '/ui/js/offline.js', '/ui/js/fields.js',
  '/ui/js/link.js', '/ui/js/grid.js', '/ui/js/form.js', '/ui/js/timeline.js', '/ui/js/live.js',
  '/ui/js/list.js', '/ui/js/filters.js', '/ui/js/importer.js', '/ui/js/pages.js',
  '/manifest.webmanifest', '/ui/icons/icon.svg'];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== API).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== location.origin) return;
  if (url.pathname.startsWith('/api/')) return;  // the desk handles API caching and offline writes
  e.respondWith((async () => {
    const cache = await caches.open(SHELL);
    const key = url.pathname === '/index.html' ? '/' : url.pathname;
    const hit = await cache.match(key);
    const fresh = fetch(e.request).then((resp) => { if (resp.ok) cache.put(key, resp.clone()); return resp; });
    if (hit) { fresh.catch(() => {}); return hit; }
    return fresh;
  })());
});
