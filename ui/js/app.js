// The shell: sign-in, navigation by module (only what the caller may read), global search,
// language switch, offline state and outbox, and the hash router.
import { html, render, useState, useEffect, useRef, useId, parseHash, bus, debounce, go } from './lib.js';
import { t, label, i18n, setLang, setUnits } from './i18n.js';
import { login, logout, hasSession, refresh, get, ApiError } from './api.js';
import { store, loadAll } from './store.js';
import { ListPage } from './list.js';
import { FormPage } from './form.js';
import { Home, SearchPage, AccountPage, ErdPage, DefinitionPage, OutboxPage } from './pages.js';
import { outbox, replay } from './offline.js';
import { closeLive } from './live.js';

function Login({ notice }) {
  const [user, setUser] = useState('');
  const [pw, setPw] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const u = useId('login'); const p = useId('login');
  const submit = async (e) => {
    e.preventDefault(); setBusy(true); setError(null);
    try { await login(user, pw); } catch (err) {
      setError(err.status === 401 ? t('bad_login') : err.offline ? t('offline') : err.message);
    }
    setBusy(false);
  };
  return html`<main id="main" class="login-page">
    <form class="login" onSubmit=${submit} aria-labelledby="login-h">
      <h1 id="login-h">${t('app')}</h1>
      ${notice && html`<p class="msg warn" role="status">${notice}</p>`}
      <div class="field"><label for=${u}>${t('username')}</label>
        <input id=${u} name="username" autocomplete="username" required value=${user} onInput=${(e) => setUser(e.target.value)} /></div>
      <div class="field"><label for=${p}>${t('password')}</label>
        <input id=${p} name="password" type="password" autocomplete="current-password" required value=${pw} onInput=${(e) => setPw(e.target.value)} /></div>
      <div aria-live="assertive">${error && html`<p class="msg error" role="alert">${error}</p>`}</div>
      <button type="submit" class="primary" disabled=${busy}>${t('login')}</button>
      <${LangSwitch} />
    </form>
  </main>`;
}

function LangSwitch() {
  const id = useId('lang');
  return html`<span class="lang"><label for=${id}>${t('language')}</label>
    <select id=${id} value=${i18n.lang} onChange=${(e) => setLang(e.target.value)}>
      <option value="es" selected=${i18n.lang === 'es'}>Español</option><option value="en" selected=${i18n.lang === 'en'}>English</option>
    </select></span>`;
}

function UnitsSwitch() {
  const id = useId('units');
  return html`<span class="lang"><label for=${id}>${t('units')}</label>
    <select id=${id} value=${i18n.units} onChange=${(e) => setUnits(e.target.value)}>
      ${['', 'field', 'metric'].map((u) => html`<option value=${u} selected=${i18n.units === u}>${t(u ? `units_${u}` : 'units_stored')}</option>`)}
    </select></span>`;
}

function GlobalSearch() {
  const [q, setQ] = useState('');
  const [items, setItems] = useState([]);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const id = useId('gsearch');
  const run = useRef(debounce(async (text) => {
    if (text.trim().length < 2) { setItems([]); return; }
    try { setItems((await get(`/api/desk/search?q=${encodeURIComponent(text)}&limit=10`)).items); setActive(-1); } catch { setItems([]); }
  }, 200)).current;
  const goTo = (i) => { setOpen(false); setQ(''); go(`#/f/${i.module}/${i.name}/${i.id}`); };
  const onKey = (e) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); setOpen(true); setActive(Math.min(active + 1, items.length - 1)); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); setActive(Math.max(active - 1, 0)); }
    else if (e.key === 'Enter') { e.preventDefault(); if (active >= 0 && items[active]) goTo(items[active]); else if (q.trim()) { setOpen(false); go(`#/s?q=${encodeURIComponent(q)}`); } }
    else if (e.key === 'Escape') setOpen(false);
  };
  return html`<div class="gsearch combo" role="search">
    <label for=${id} class="sr-only">${t('search')}</label>
    <input id=${id} type="search" role="combobox" aria-expanded=${open && items.length ? 'true' : 'false'} aria-controls=${`${id}-list`}
      aria-autocomplete="list" aria-activedescendant=${active >= 0 ? `${id}-${active}` : undefined}
      placeholder=${t('search_ph')} value=${q} onInput=${(e) => { setQ(e.target.value); setOpen(true); run(e.target.value); }}
      onKeyDown=${onKey} onBlur=${() => setTimeout(() => setOpen(false), 150)} />
    ${open && items.length > 0 && html`<ul id=${`${id}-list`} role="listbox" class="combo-list">
      ${items.map((i, n) => html`<li id=${`${id}-${n}`} role="option" aria-selected=${n === active ? 'true' : 'false'} class=${n === active ? 'active' : ''}
        onMouseDown=${(e) => { e.preventDefault(); goTo(i); }}>${i.title} <span class="muted">· ${label((store.entities.get(i.entity) || {}).label, i.entity)}</span></li>`)}
    </ul>`}
  </div>`;
}

function Nav({ onNavigate }) {
  return html`<nav class="sidebar" aria-label=${t('modules')}>
    <ul>${store.meta.modules.map((m) => html`<li><span class="module">${label(m.label, m.name)}</span><ul>
      ${m.entities.map((e) => html`<li><a href=${`#/l/${e.module}/${e.name}`} onClick=${onNavigate}>${label(e.label, e.name)}</a></li>`)}</ul></li>`)}
      <li><span class="module">${t('tools')}</span><ul><li><a href="#/erd" onClick=${onNavigate}>${t('er_diagram')}</a></li>
        <li><a href="#/outbox" onClick=${onNavigate}>${t('outbox')}</a></li></ul></li>
    </ul></nav>`;
}

function route(parts, query) {
  const [kind, a, b, c] = parts;
  const q = a && b ? `${a}.${b}` : null;
  if (kind === 'l' && store.entities.has(q)) return html`<${ListPage} key=${q} qualname=${q} />`;
  if (kind === 'f' && store.entities.has(q)) return html`<${FormPage} key=${`${q}/${c}`} qualname=${q} id=${c} />`;
  if (kind === 'p' && store.entities.has(q)) return html`<${FormPage} key=${`p${q}/${c}`} qualname=${q} id=${c} printMode=${true} />`;
  if (kind === 'd') return html`<${DefinitionPage} module=${a} name=${b} />`;
  if (kind === 's') return html`<${SearchPage} q=${query.get('q') || ''} />`;
  if (kind === 'account') return html`<${AccountPage} />`;
  if (kind === 'erd') return html`<${ErdPage} />`;
  if (kind === 'outbox') return html`<${OutboxPage} />`;
  if (kind) return html`<p role="alert" class="msg error">${t('not_found')}</p>`;
  return html`<${Home} />`;
}

function Shell() {
  const [hash, setHash] = useState(location.hash);
  const [menu, setMenu] = useState(false);
  const [online, setOnline] = useState(navigator.onLine);
  const [pending, setPending] = useState(outbox().length);
  const [note, setNote] = useState(null);
  useEffect(() => {
    const onHash = () => { setHash(location.hash); setMenu(false); window.scrollTo(0, 0); };
    const on = () => setOnline(true); const off = () => setOnline(false);
    window.addEventListener('hashchange', onHash); window.addEventListener('online', on); window.addEventListener('offline', off);
    const u1 = bus.on('outbox', (items) => setPending(items.length));
    const u2 = bus.on('outbox-result', (r) => setNote(t('outbox_sent', { n: r.sent }) + (r.conflicts ? ` · ${t('outbox_conflict')}` : '')));
    if (outbox().length) replay();
    return () => { window.removeEventListener('hashchange', onHash); window.removeEventListener('online', on); window.removeEventListener('offline', off); u1(); u2(); };
  }, []);
  const [parts, query] = parseHash();
  const me = store.me && store.me.user;
  return html`<div class=${`shell${menu ? ' menu-open' : ''}`}>
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>${t('skip')}</a>
    <header class="topbar">
      <button type="button" class="icon menu-toggle" aria-expanded=${menu ? 'true' : 'false'} aria-controls="sidebar" onClick=${() => setMenu(!menu)}>☰<span class="sr-only">${t('menu')}</span></button>
      <a class="brand" href="#/">${t('app')}</a>
      <${GlobalSearch} />
      ${!online && html`<span class="badge state-orange" role="status">${t('offline')}</span>`}
      ${pending > 0 && html`<a class="badge state-yellow" href="#/outbox">${t('outbox')}: ${pending}</a>`}
      <${LangSwitch} />
      <${UnitsSwitch} />
      <a href="#/account" class="user">${me ? me.username : t('account')}</a>
      <button type="button" onClick=${() => logout()}>${t('logout')}</button>
    </header>
    <div class="layout">
      <div id="sidebar"><${Nav} onNavigate=${() => setMenu(false)} /></div>
      <main id="main" tabindex="-1">
        <div aria-live="polite">${note && html`<p class="msg ok" role="status">${note} <button type="button" class="link" onClick=${() => setNote(null)}>${t('close')}</button></p>`}</div>
        ${route(parts, query)}
      </main>
    </div>
  </div>`;
}

function App() {
  const [state, setState] = useState(hasSession() ? 'loading' : 'login');
  const [notice, setNotice] = useState(null);
  const [, setLangTick] = useState(0);
  const start = async () => {
    setState('loading');
    try { await loadAll(); setState('ready'); } catch (err) {
      if (err instanceof ApiError && err.status === 401) { setState('login'); } else { setNotice(err.message); setState('login'); }
    }
  };
  useEffect(() => {
    const subs = [
      bus.on('login', () => { setNotice(null); start(); }),
      bus.on('logout', () => { closeLive(); setState('login'); }),
      bus.on('expired', () => { closeLive(); setNotice(t('session_expired')); setState('login'); }),
      bus.on('lang', () => setLangTick((n) => n + 1)),
    ];
    if (hasSession()) refresh().then(start).catch((err) => { if (err.offline) start(); });
    return () => subs.forEach((u) => u());
  }, []);
  if (state === 'login') return html`<${Login} notice=${notice} />`;
  if (state === 'loading') return html`<main id="main" class="boot" aria-busy="true"><p>${t('loading')}</p></main>`;
  return html`<${Shell} />`;
}

if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => {});
}
render(html`<${App} />`, document.getElementById('app'));
