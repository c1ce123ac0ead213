// A list of records generated from /api/meta: columns (model, per-list layout, user's
// choice), typed filters, sort, keyset pages, saved views, group-by counts (aggregate),
// CSV export and import, bulk delete and workflow actions, live refresh.
import { html, useState, useEffect, useMemo, useRef, useId, qs, go, debounce, download } from './lib.js';
import { t, label, fmtNumber } from './i18n.js';
import { get, post, del, fetchBlob } from './api.js';
import { entity, can, store, defaultColumns, listable, titleOf } from './store.js';
import { display, enumLabel } from './fields.js';
import { FilterBar, filterParams } from './filters.js';
import { ImportDialog } from './importer.js';
import { titleFor } from './link.js';
import { showing, watch } from './live.js';

const PAGE = 50;
const GROUPABLE = ['enum', 'link', 'bool', 'string', 'date', 'int'];

function initialConfig(ent) {
  const lay = store.layouts.lists[ent.qualname];
  return { filters: [], sort: (lay && lay.sort) || '-id', columns: defaultColumns(ent), groupBy: (lay && lay.group_by[0]) || '' };
}

function GroupPanel({ ent, field, params, onPick }) {
  const [groups, setGroups] = useState(null);
  const [names, setNames] = useState({});
  useEffect(() => {
    if (!field) { setGroups(null); return; }
    let live = true;
    get(`${ent.url}/aggregate${qs({ ...params, group_by: field.name, count: '' })}`).then(async (r) => {
      if (!live) return;
      setGroups(r.items);
      if (field.type === 'link') {
        const out = {};
        for (const g of r.items) if (g.group[field.name] != null) out[g.group[field.name]] = await titleFor(field.link, g.group[field.name]);
        if (live) setNames(out);
      }
    }).catch(() => setGroups([]));
    return () => { live = false; };
  }, [field && field.name, JSON.stringify(params)]);
  if (!field || !groups) return null;
  const text = (v) => (v == null ? '—' : field.type === 'link' ? (names[v] || `#${v}`) : field.type === 'enum' ? enumLabel(field, v) : display(field, v, {}));
  return html`<aside class="groups" aria-label=${`${t('group_by')}: ${label(field.label, field.name)}`}>
    <h2>${label(field.label, field.name)}</h2>
    <ul>${groups.map((g) => html`<li><button type="button" class="link" onClick=${() => onPick(g.group[field.name])}>
      <span>${text(g.group[field.name])}</span> <span class="count">${fmtNumber(g.count, 0)}</span></button></li>`)}</ul>
  </aside>`;
}

function ViewsMenu({ ent, config, onApply }) {
  const [views, setViews] = useState([]);
  const [name, setName] = useState('');
  const id = useId('views');
  const nameId = useId('view-name');
  const load = () => get(`/api/desk/views${qs({ entity: ent.qualname })}`).then((r) => setViews(r.items)).catch(() => {});
  useEffect(() => { load(); }, [ent.qualname]);
  const pick = (e) => {
    const v = views.find((x) => String(x.id) === e.target.value);
    onApply(v ? v.config : initialConfig(ent));
  };
  const save = async (e) => {
    e.preventDefault();
    if (!name.trim()) return;
    await post('/api/desk/views', { entity: ent.qualname, name, config });
    setName(''); load();
  };
  return html`<div class="views">
    <label for=${id}>${t('views')}</label>
    <select id=${id} onChange=${pick}><option value="">${t('default_view')}</option>
      ${views.map((v) => html`<option value=${v.id}>${v.name}</option>`)}</select>
    <form class="inline" onSubmit=${save}>
      <label for=${nameId} class="sr-only">${t('view_name')}</label>
      <input id=${nameId} placeholder=${t('view_name')} value=${name} onInput=${(e) => setName(e.target.value)} />
      <button type="submit">${t('save_view')}</button>
    </form>
    ${views.length > 0 && html`<details class="manage"><summary>${t('delete_view')}</summary>
      ${views.map((v) => html`<button type="button" class="link" onClick=${async () => { await del(`/api/desk/views/${v.id}`); load(); }}>× ${v.name}</button>`)}
    </details>`}
  </div>`;
}

export function ListPage({ qualname }) {
  const ent = entity(qualname);
  const [config, setConfig] = useState(() => initialConfig(ent));
  const [page, setPage] = useState(null);
  const [cursors, setCursors] = useState([null]);
  const [count, setCount] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [note, setNote] = useState(null);
  const [importing, setImporting] = useState(false);
  const [loading, setLoading] = useState(true);
  const colsId = useId('cols');
  const groupId = useId('group');
  const bulkId = useId('bulk');

  useEffect(() => { setConfig(initialConfig(ent)); setCursors([null]); setSelected(new Set()); }, [qualname]);
  const fieldsByName = useMemo(() => new Map(ent.fields.map((f) => [f.name, f])), [qualname]);
  const columns = config.columns.filter((c) => fieldsByName.has(c));
  const params = filterParams(config.filters);
  const links = columns.filter((c) => fieldsByName.get(c).type === 'link');
  const cursor = cursors[cursors.length - 1];

  const load = async () => {
    setLoading(true);
    const query = { ...params, sort: config.sort, limit: PAGE, fields: columns.join(',') || undefined, expand: links.join(',') || undefined, cursor: cursor || undefined, count: cursor ? undefined : 'estimated' };
    try {
      const r = await get(`${ent.url}${qs(query)}`);
      setPage(r); setError(null); showing(ent.qualname, r.items.map((i) => i.id));
      if (!cursor) setCount(r.count);
    } catch (err) { setError(err.message); }
    setLoading(false);
  };
  useEffect(() => { load(); }, [qualname, JSON.stringify(config), cursor]);
  const reload = useRef(null);
  reload.current = load;
  useEffect(() => {
    const later = debounce(() => reload.current(), 300);
    // a resync after a reconnect: changes may have been missed while the socket was down
    return watch(ent.qualname, (ev) => { if (ev.op !== 'resync' || ev.reconnect) later(); });
  }, [qualname]);

  const update = (patch) => { setConfig({ ...config, ...patch }); setCursors([null]); setSelected(new Set()); };
  const sortBy = (name) => update({ sort: config.sort === name ? `-${name}` : name });
  const toggle = (id) => { const s = new Set(selected); if (s.has(id)) s.delete(id); else s.add(id); setSelected(s); };
  const items = page ? page.items : [];
  const allOn = items.length > 0 && items.every((r) => selected.has(r.id));

  const exportCsv = async () => {
    const blob = await fetchBlob(`${ent.url}/export${qs({ ...params, format: 'csv', sort: config.sort, fields: columns.join(',') })}`);
    download(blob, `${ent.module}_${ent.name}.csv`);
  };
  const bulk = async (what) => {
    const rows = items.filter((r) => selected.has(r.id));
    let ok = 0; let bad = 0;
    for (const r of rows) {
      try {
        if (what === 'delete') await del(`${ent.url}/${r.id}`);
        else await post(`${ent.url}/${r.id}/actions/${what}`, {});
        ok += 1;
      } catch { bad += 1; }
    }
    setNote(t('bulk_done', { ok, bad })); setSelected(new Set()); load();
  };
  const groupField = config.groupBy ? fieldsByName.get(config.groupBy) : null;
  const pickGroup = (v) => {
    const f = groupField;
    const flt = f.type === 'enum' ? { field: f.name, type: f.type, values: [v] }
      : ['int', 'date'].includes(f.type) ? { field: f.name, type: f.type, from: v, to: v }
        : { field: f.name, type: f.type, value: v };
    update({ filters: [...config.filters.filter((x) => x.field !== f.name), flt] });
  };
  const actionsList = ent.workflow ? [...new Map(ent.workflow.transitions.map((tr) => [tr.action, tr])).values()] : [];

  return html`<div class="list-page">
    <div class="page-head">
      <p class="crumbs">${label(ent.moduleLabel)}</p>
      <h1>${label(ent.label)}</h1>
      <div class="toolbar">
        ${can(ent, 'create') && html`<a class="button primary" href=${`#/f/${ent.module}/${ent.name}/new`}>${t('new')}</a>`}
        ${can(ent, 'export') && html`<button type="button" onClick=${exportCsv}>${t('export_csv')}</button>`}
        ${can(ent, 'create') && html`<button type="button" onClick=${() => setImporting(true)}>${t('import_csv')}</button>`}
        <a class="button" href=${`#/d/${ent.module}/${ent.name}`}>${t('definition')}</a>
      </div>
    </div>
    <div class="list-controls">
      <${FilterBar} ent=${ent} filters=${config.filters} onChange=${(filters) => update({ filters })} />
      <div class="list-options">
        <${ViewsMenu} ent=${ent} config=${config} onApply=${(c) => update(c)} />
        <details class="columns-menu"><summary>${t('columns')}</summary>
          <fieldset><legend class="sr-only">${t('columns')}</legend>
          ${listable(ent).map((f) => html`<label class="check"><input type="checkbox" id=${`${colsId}-${f.name}`} checked=${columns.includes(f.name)}
            onChange=${(e) => update({ columns: e.target.checked ? [...columns, f.name] : columns.filter((c) => c !== f.name) })} /> ${label(f.label, f.name)}</label>`)}
          </fieldset></details>
        <label for=${groupId}>${t('group_by')}</label>
        <select id=${groupId} value=${config.groupBy} onChange=${(e) => update({ groupBy: e.target.value })}>
          <option value="">${t('none')}</option>
          ${ent.fields.filter((f) => GROUPABLE.includes(f.type) && f.stored !== false).map((f) => html`<option value=${f.name} selected=${f.name === config.groupBy}>${label(f.label, f.name)}</option>`)}
        </select>
      </div>
    </div>
    ${selected.size > 0 && html`<div class="bulk" role="group" aria-label=${t('selected', { n: selected.size })}>
      <span>${t('selected', { n: selected.size })}</span>
      ${can(ent, 'delete') && html`<button type="button" class="danger" onClick=${() => { if (window.confirm(t('confirm_delete'))) bulk('delete'); }}>${t('bulk_delete')}</button>`}
      ${actionsList.length > 0 && html`<label for=${bulkId} class="sr-only">${t('actions')}</label>
        <select id=${bulkId} onChange=${(e) => { const a = e.target.value; e.target.value = ''; if (a) bulk(a); }}>
          <option value="">${t('actions')}…</option>
          ${actionsList.map((a) => html`<option value=${a.action}>${label(a.label, a.action)}</option>`)}
        </select>`}
    </div>`}
    <div aria-live="polite">${note && html`<p class="msg ok" role="status">${note}</p>`}${error && html`<p class="msg error" role="alert">${error}</p>`}</div>
    <div class="list-body">
      <div class="table-wrap">
        <table class="records" aria-busy=${loading ? 'true' : 'false'}>
          <caption class="sr-only">${label(ent.label)}</caption>
          <thead><tr>
            <th scope="col" class="sel"><input type="checkbox" aria-label=${t('select_all')} checked=${allOn}
              onChange=${() => setSelected(allOn ? new Set() : new Set(items.map((r) => r.id)))} /></th>
            ${columns.map((c) => {
              const f = fieldsByName.get(c);
              const dir = config.sort === c ? 'ascending' : config.sort === `-${c}` ? 'descending' : 'none';
              return html`<th scope="col" aria-sort=${dir}><button type="button" class="sort" onClick=${() => sortBy(c)}>
                ${label(f.label, c)}${dir === 'ascending' ? ' ▲' : dir === 'descending' ? ' ▼' : ''}</button></th>`;
            })}
          </tr></thead>
          <tbody>
            ${items.map((r, i) => html`<tr key=${r.id} data-id=${r.id}>
              <td class="sel"><input type="checkbox" aria-label=${t('select_row', { n: i + 1 })} checked=${selected.has(r.id)} onChange=${() => toggle(r.id)} /></td>
              ${columns.map((c, j) => {
                const f = fieldsByName.get(c);
                const text = display(f, r[c], r);
                const num = ['int', 'decimal', 'float'].includes(f.type);
                return html`<td class=${num ? 'num' : ''}>${j === 0 ? html`<a href=${`#/f/${ent.module}/${ent.name}/${r.id}`}>${text || titleOf(ent, r)}</a>` : text}</td>`;
              })}
            </tr>`)}
          </tbody>
        </table>
        ${page && items.length === 0 && html`<p class="empty">${t('no_rows')}</p>`}
        <nav class="pager" aria-label=${t('records')}>
          <button type="button" disabled=${cursors.length <= 1} onClick=${() => setCursors(cursors.slice(0, -1))}>${t('prev')}</button>
          <span>${count != null ? t('about_n', { n: fmtNumber(count, 0) }) : t('page_rows', { n: items.length })}</span>
          <button type="button" disabled=${!page || !page.next_cursor} onClick=${() => setCursors([...cursors, page.next_cursor])}>${t('next')}</button>
        </nav>
      </div>
      <${GroupPanel} ent=${ent} field=${groupField} params=${params} onPick=${pickGroup} />
    </div>
    ${importing && html`<${ImportDialog} ent=${ent} onClose=${(done) => { setImporting(false); if (done) load(); }} />`}
  </div>`;
}
