// Pages beside lists and forms: home, search results, my account, the ER diagram, an
// entity's effective definition, the outbox of offline writes.
import { html, useState, useEffect, useId, useMemo } from './lib.js';
import { t, label, fmtDateTime } from './i18n.js';
import { get, post, del, logout } from './api.js';
import { store, entity } from './store.js';
import { outbox, replay, discard } from './offline.js';

export function Home() {
  return html`<div class="home"><h1>${t('app')}</h1><p>${t('welcome')}</p>
    <ul class="cards">${store.meta.modules.map((m) => html`<li class="card"><h2>${label(m.label, m.name)}</h2><ul>
      ${m.entities.map((e) => html`<li><a href=${`#/l/${e.module}/${e.name}`}>${label(e.label, e.name)}</a></li>`)}</ul></li>`)}</ul>
    <p><a href="#/erd">${t('er_diagram')}</a></p></div>`;
}

export function SearchPage({ q }) {
  const [items, setItems] = useState(null);
  useEffect(() => { get(`/api/desk/search?q=${encodeURIComponent(q)}`).then((r) => setItems(r.items)).catch(() => setItems([])); }, [q]);
  return html`<div><h1>${t('search')}: ${q}</h1>
    ${items === null ? html`<p aria-busy="true">${t('loading')}</p>` : items.length === 0 ? html`<p>${t('no_results')}</p>`
      : html`<ul class="results">${items.map((i) => html`<li><a href=${`#/f/${i.module}/${i.name}/${i.id}`}>${i.title}</a>
        <span class="muted"> · ${label((entity(i.entity) || {}).label, i.entity)}</span></li>`)}</ul>`}</div>`;
}

export function AccountPage() {
  const [sessions, setSessions] = useState([]);
  const [cur, setCur] = useState('');
  const [next, setNext] = useState('');
  const [msg, setMsg] = useState(null);
  const a = useId('pw'); const b = useId('pw');
  const load = () => get('/api/desk/account/sessions').then((r) => setSessions(r.items)).catch(() => {});
  useEffect(() => { load(); }, []);
  const change = async (e) => {
    e.preventDefault();
    try { await post('/api/auth/password', { current_password: cur, new_password: next }); setMsg({ kind: 'ok', text: t('password_changed') }); setCur(''); setNext(''); load(); } catch (err) {
      const f = err.fields; setMsg({ kind: 'error', text: (f.current_password || f.new_password || [err.message]).join('; ') });
    }
  };
  const end = async (s) => { await del(`/api/desk/account/sessions/${s.id}`); if (s.current) logout(); else load(); };
  const me = store.me || {};
  return html`<div class="account"><h1>${t('account')}: ${me.user ? me.user.username : ''}</h1>
    <p class="muted">${(me.roles || []).join(', ')}</p>
    <section aria-labelledby="pw-h"><h2 id="pw-h">${t('change_password')}</h2>
      <form class="narrow" onSubmit=${change}>
        <div class="field"><label for=${a}>${t('current_password')}</label><input id=${a} type="password" autocomplete="current-password" value=${cur} onInput=${(e) => setCur(e.target.value)} /></div>
        <div class="field"><label for=${b}>${t('new_password')}</label><input id=${b} type="password" autocomplete="new-password" minlength="8" value=${next} onInput=${(e) => setNext(e.target.value)} /></div>
        <button type="submit" class="primary">${t('change_password')}</button>
      </form>
      <div aria-live="polite">${msg && html`<p class=${`msg ${msg.kind}`}>${msg.text}</p>`}</div>
    </section>
    <section aria-labelledby="ss-h"><h2 id="ss-h">${t('sessions')}</h2>
      <table class="records"><thead><tr><th scope="col">${t('started')}</th><th scope="col">${t('last_seen')}</th><th scope="col">IP</th><th scope="col"><span class="sr-only">${t('actions')}</span></th></tr></thead>
      <tbody>${sessions.map((s) => html`<tr><td>${fmtDateTime(s.created_at)}${s.current ? ` (${t('this_session')})` : ''}</td>
        <td>${fmtDateTime(s.last_seen_at)}</td><td>${s.ip || ''}</td>
        <td><button type="button" onClick=${() => end(s)}>${t('end_session')}</button></td></tr>`)}</tbody></table>
    </section></div>`;
}

export function OutboxPage() {
  const [items, setItems] = useState(outbox());
  const refreshList = () => setItems(outbox());
  return html`<div><h1>${t('outbox')}</h1>
    <button type="button" class="primary" onClick=${async () => { await replay(); refreshList(); }}>${t('send_now')}</button>
    <ul class="outbox">${items.map((i) => html`<li class=${`ob-${i.state}`}>
      <strong>${label((entity(i.entity) || {}).label, i.entity)}</strong> ${i.title} · ${fmtDateTime(i.at)}
      ${i.state === 'conflict' && html`<p class="msg error">${t('outbox_conflict')}: ${i.error}
        ${i.recordId && html` <a href=${`#/f/${i.entity.replace('.', '/')}/${i.recordId}`}>${t('reload')}</a>`}</p>`}
      ${i.state === 'error' && html`<p class="msg error">${i.error}</p>`}
      <button type="button" onClick=${() => { discard(i.id); refreshList(); }}>${t('discard')}</button>
    </li>`)}</ul></div>`;
}

/** Boxes per entity laid out per module (one column each), arrows for links. */
export function ErdPage() {
  const ents = [...store.entities.values()].filter((e) => e.fields);
  const mods = [...new Set(ents.map((e) => e.qualname.split('.')[0]))];
  const W = 210; const GAP = 70; const ROW = 18; const HEAD = 26;
  const pos = new Map();
  mods.forEach((m, mi) => {
    let y = 40;
    ents.filter((e) => e.qualname.startsWith(`${m}.`)).forEach((e) => {
      const shown = e.fields.filter((f) => f.type === 'link' || f.type === 'table').length;
      const h = HEAD + Math.max(1, shown) * ROW + 8;
      pos.set(e.qualname, { x: 20 + mi * (W + GAP), y, h, e });
      y += h + 30;
    });
  });
  const width = 40 + mods.length * (W + GAP);
  const height = Math.max(...[...pos.values()].map((p) => p.y + p.h), 200) + 40;
  const edges = [];
  for (const p of pos.values()) {
    p.e.fields.filter((f) => f.type === 'link' || f.type === 'table').forEach((f, i) => {
      const target = f.type === 'link' ? f.link.entity : f.table.entity;
      const q = pos.get(target);
      if (!q) return;
      const y1 = p.y + HEAD + i * ROW + ROW / 2;
      const x1 = q.x >= p.x ? p.x + W : p.x;
      const x2 = q.x > p.x ? q.x : q.x === p.x ? q.x + W : q.x + W;
      const y2 = q.y + HEAD / 2;
      const bend = q.x === p.x ? 40 : 0;
      edges.push({ d: `M${x1},${y1} C${x1 + (x2 >= x1 ? 30 : -30) + bend},${y1} ${x2 + (x2 >= x1 ? -30 : 30) + bend},${y2} ${x2},${y2}`, kind: f.type });
    });
  }
  return html`<div class="erd"><h1>${t('er_diagram')}</h1>
    <div class="erd-scroll"><svg role="img" aria-labelledby="erd-title" viewBox=${`0 0 ${width} ${height}`} width=${width} height=${height}>
      <title id="erd-title">${t('er_diagram')}</title>
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#475569" /></marker></defs>
      ${mods.map((m, mi) => html`<text x=${20 + mi * (W + GAP)} y="24" class="erd-module">${label((store.meta.modules.find((x) => x.name === m) || {}).label, m)}</text>`)}
      ${edges.map((e) => html`<path d=${e.d} class=${`erd-edge ${e.kind}`} marker-end="url(#arrow)" />`)}
      ${[...pos.values()].map((p) => html`<a href=${p.e.child ? '#/erd' : `#/d/${p.e.qualname.replace('.', '/')}`}>
        <rect x=${p.x} y=${p.y} width=${W} height=${p.h} rx="6" class=${p.e.child ? 'erd-box child' : 'erd-box'} />
        <text x=${p.x + 8} y=${p.y + 18} class="erd-title">${label(p.e.label, p.e.qualname)}</text>
        ${p.e.fields.filter((f) => f.type === 'link' || f.type === 'table').map((f, i) => html`<text x=${p.x + 10} y=${p.y + HEAD + i * ROW + 13} class="erd-field">
          ${f.type === 'table' ? '▤ ' : '→ '}${f.name}</text>`)}
      </a>`)}
    </svg></div></div>`;
}

export function DefinitionPage({ module, name }) {
  const [data, setData] = useState(null);
  const [err, setErr] = useState(null);
  useEffect(() => { get(`/api/desk/definition/${module}/${name}`).then(setData).catch((e) => setErr(e.message)); }, [module, name]);
  const rows = useMemo(() => (data ? Object.entries(data.sources) : []), [data]);
  if (err) return html`<p role="alert" class="msg error">${err}</p>`;
  if (!data) return html`<p aria-busy="true">${t('loading')}</p>`;
  const ent = entity(data.entity);
  return html`<div class="definition"><p class="crumbs"><a href=${`#/l/${module}/${name}`}>${label(ent && ent.label, data.entity)}</a></p>
    <h1>${t('effective_definition')}: ${data.entity}</h1>
    <p class="muted">${t('source')}: ${data.location}${data.overlays.length ? ` + ${data.overlays.join(', ')}` : ''}</p>
    <pre class="yaml" tabindex="0" aria-label=${t('definition')}>${data.text}</pre>
    <details><summary>${t('source')} (${rows.length})</summary><table class="records"><thead><tr><th scope="col">key</th><th scope="col">${t('source')}</th></tr></thead>
      <tbody>${rows.map(([k, v]) => html`<tr><td><code>${k}</code></td><td><code>${v}</code></td></tr>`)}</tbody></table></details></div>`;
}
