// A record's form, generated from /api/meta (+ an optional layout from screens/layouts):
// every field type, child grids, live rules from the server (/api/desk/evaluate), field
// errors from the server, optimistic-lock conflicts, workflow buttons, timeline, print.
import { html, useState, useEffect, useRef, useMemo, debounce, go, bus } from './lib.js';
import { t, label } from './i18n.js';
import { get, post, put, del, cachedGet } from './api.js';
import { entity, can, titleOf, store } from './store.js';
import { Field, AttachmentField, display } from './fields.js';
import { Grid } from './grid.js';
import { Timeline } from './timeline.js';
import { enqueue } from './offline.js';
import { showing, watch } from './live.js';

/** Nested error objects ({lines: {1: {qty: [..]}}}) as dotted keys (lines.1.qty). */
export function flattenErrors(obj, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (Array.isArray(v)) out[key] = v.map(String);
    else if (v && typeof v === 'object') flattenErrors(v, key, out);
    else out[key] = [String(v)];
  }
  return out;
}

/** Tabs of sections for an entity: its layout (plus the fields it leaves out) or a default. */
export function formLayout(ent) {
  const fields = ent.fields.filter((f) => !f.hidden);
  const byName = new Map(fields.map((f) => [f.name, f]));
  const lay = store.layouts.forms[ent.qualname];
  const sectionsOf = (names, extra) => ({ fields: names.filter((n) => byName.has(n)).map((n) => byName.get(n)), ...extra });
  if (lay) {
    const placed = new Set();
    const tabs = lay.tabs.map((tab) => ({
      label: tab.label,
      sections: tab.sections.map((s) => { s.fields.forEach((n) => placed.add(n)); return sectionsOf(s.fields, { label: s.label, columns: s.columns, collapsible: s.collapsible, collapsed: s.collapsed }); }),
    }));
    const rest = fields.filter((f) => !placed.has(f.name));
    if (rest.length) tabs[tabs.length - 1].sections.push({ label: { es: t('other'), en: t('other') }, columns: 2, fields: rest });
    return tabs;
  }
  const plain = fields.filter((f) => f.type !== 'table');
  const sections = [{ label: null, columns: 2, fields: plain }];
  for (const f of fields.filter((x) => x.type === 'table')) sections.push({ label: null, columns: 1, fields: [f] });
  return [{ label: null, sections }];
}

function editableBody(ent, draft) {
  const ro = new Set(ent.readonly_fields || []);
  const body = {};
  for (const f of ent.fields) {
    if (f.readonly || ro.has(f.name) || (f.computed && !f.stored)) continue;
    if (!(f.name in draft)) continue;
    if (f.type === 'table') {
      body[f.name] = (draft[f.name] || []).map((r) => {
        const row = r.id ? { id: r.id } : {};
        for (const cf of f.table.fields) if (!cf.readonly && !cf.computed && cf.name in r) row[cf.name] = r[cf.name];
        return row;
      });
    } else body[f.name] = draft[f.name];
  }
  return body;
}

function staticDefaults(ent) {
  const out = {};
  for (const f of ent.fields) {
    if (f.readonly || f.type === 'table') { if (f.type === 'table') out[f.name] = []; continue; }
    if (f.default !== null && f.default !== undefined && !f.default_expression) out[f.name] = f.default;
  }
  return out;
}

function changedFields(a, b, names) {
  return names.filter((n) => JSON.stringify(a[n] ?? null) !== JSON.stringify(b[n] ?? null));
}

function WorkflowBar({ ent, record, actions, onRun, busy }) {
  if (!ent.workflow || !record) return null;
  const wf = ent.workflow;
  const state = wf.states.find((s) => s.name === record[wf.field]);
  const visible = (actions || []).filter((a) => a.allowed);
  return html`<div class="workflow" role="group" aria-label=${t('workflow')}>
    <span class=${`badge state-${(state && state.color) || 'grey'}`}>${state ? label(state.label, state.name) : record[wf.field]}</span>
    ${visible.map((a) => {
      const reasons = Object.values(flattenErrors(a.problems || {})).flat();
      const why = reasons.length ? reasons.join('; ') : '';
      return html`<span class="action-wrap">
        <button type="button" class="secondary" data-action=${a.action} disabled=${busy || !a.ready}
          aria-describedby=${why ? `why-${a.action}` : undefined} onClick=${() => onRun(a)}>${label(a.label, a.action)}</button>
        ${why && html`<small id=${`why-${a.action}`} class="why">${why}</small>`}
      </span>`;
    })}
  </div>`;
}

function ConflictDialog({ conflict, onReapply, onDiscard }) {
  const ref = useRef(null);
  useEffect(() => { if (ref.current) ref.current.focus(); }, []);
  return html`<div class="dialog" role="alertdialog" aria-modal="true" aria-labelledby="conflict-title" aria-describedby="conflict-text">
    <div class="dialog-box">
      <h2 id="conflict-title">${t('conflict_title')}</h2>
      <p id="conflict-text">${t('conflict_text', { mine: conflict.mine, theirs: conflict.theirs ?? '?' })}</p>
      ${conflict.both.length > 0 && html`<p class="warn">${t('conflict_both', { fields: conflict.both.join(', ') })}</p>`}
      <div class="buttons">
        <button ref=${ref} type="button" class="primary" onClick=${onReapply}>${t('conflict_reapply')}</button>
        <button type="button" onClick=${onDiscard}>${t('conflict_discard')}</button>
      </div>
    </div>
  </div>`;
}

function Section({ section, children }) {
  const cls = `section cols-${section.columns || 2}`;
  const heading = section.label ? label(section.label) : null;
  if (section.collapsible) {
    return html`<details class=${cls} open=${!section.collapsed}><summary>${heading || t('details')}</summary><div class="section-body">${children}</div></details>`;
  }
  return html`<section class=${cls} aria-label=${heading || undefined}>${heading && html`<h3>${heading}</h3>`}<div class="section-body">${children}</div></section>`;
}

export function FormPage({ qualname, id, printMode }) {
  const ent = entity(qualname);
  const isNew = id === 'new';
  const recordId = isNew ? null : Number(id);
  const [record, setRecord] = useState(null);
  const [draft, setDraft] = useState(null);
  const [errors, setErrors] = useState({});
  const [message, setMessage] = useState(null);
  const [rules, setRules] = useState({ values: {}, rows: {}, visible: {}, required: {}, readonly: {}, row_states: {} });
  const [actions, setActions] = useState([]);
  const [busy, setBusy] = useState(false);
  const [conflict, setConflict] = useState(null);
  const [tab, setTab] = useState(0);
  const [remote, setRemote] = useState(null);
  const [tlKey, setTlKey] = useState(0);
  const touched = useRef(new Set());
  const draftRef = useRef(null);
  draftRef.current = draft;
  const recordRef = useRef(null);
  recordRef.current = record;
  const loadRef = useRef(null);

  const canWrite = isNew ? can(ent, 'create') : can(ent, 'update');
  const readOnly = printMode || !canWrite;

  const evaluate = useMemo(() => debounce(async (d) => {
    if (!ent || readOnly) return;
    try {
      const r = await post(`/api/desk/evaluate/${ent.module}/${ent.name}`, { record: editableBody(ent, d), id: recordId });
      setRules(r);
      if (isNew) {
        setDraft((cur) => {
          const next = { ...cur };
          let changed = false;
          for (const f of ent.fields) {
            if (f.default_expression && !touched.current.has(f.name) && r.values[f.name] !== undefined && next[f.name] !== r.values[f.name]) {
              next[f.name] = r.values[f.name]; changed = true;
            }
          }
          return changed ? next : cur;
        });
      }
    } catch { /* offline or mid-typing: keep the last known state */ }
  }, 250), [qualname, id]);

  const loadActions = async (rec) => {
    if (!ent.workflow || !rec) { setActions([]); return; }
    try { setActions((await get(`${ent.url}/${rec.id}/actions`)).actions); } catch { setActions([]); }
  };

  const load = async () => {
    setErrors({}); setConflict(null); setRemote(null); touched.current = new Set();
    if (isNew) {
      const d = staticDefaults(ent);
      setRecord(null); setDraft(d); evaluate(d);
      return;
    }
    const rec = await cachedGet(`${ent.url}/${recordId}`);
    setRecord(rec); setDraft(rec); loadActions(rec);
    if (!readOnly) evaluate(rec);
    return rec;
  };

  useEffect(() => { if (ent) load().catch((err) => setMessage({ kind: 'error', text: err.message })); }, [qualname, id]);
  loadRef.current = load;
  // another user's committed change of this record (live.js): reload when nothing is being
  // edited, else say so (Reload, or Save and the conflict dialog re-applies the changes)
  useEffect(() => {
    if (isNew || !ent) return undefined;
    showing(ent.qualname, [recordId]);
    const changed = (version) => {
      const rec = recordRef.current;
      if (rec && version && version <= (rec.version || 0)) return;
      const dirty = draftRef.current && rec && changedFields(draftRef.current, rec, ent.fields.map((f) => f.name)).length;
      if (!dirty) loadRef.current().then(() => setRemote({ version, applied: true }));
      else setRemote({ version });
    };
    return watch(ent.qualname, (ev) => {
      if (ev.op === 'resync') {  // changes before the subscription: compare the version
        if (recordRef.current) {
          get(`${ent.url}/${recordId}`).then((latest) => changed(latest.version)).catch((err) => {
            if (err.status === 404) setRemote({ deleted: true });
          });
        }
        return;
      }
      if (ev.id !== recordId) return;
      if (ev.op === 'delete') { setRemote({ deleted: true }); return; }
      changed(ev.version);
    });
  }, [qualname, id]);

  if (!ent) return html`<p role="alert">${t('not_found')}</p>`;
  if (!draft) return html`<p aria-busy="true">${t('loading')}</p>`;

  const change = (name, v) => {
    touched.current.add(name);
    const next = { ...draftRef.current, [name]: v };
    setDraft(next); evaluate(next);
    if (errors[name]) { const e = { ...errors }; delete e[name]; setErrors(e); }
  };

  const wfState = ent.workflow && record ? ent.workflow.states.find((s) => s.name === record[ent.workflow.field]) : null;
  const editableNow = wfState && wfState.editable ? new Set(wfState.editable) : null;

  const fieldReadOnly = (f) => readOnly || f.readonly || (f.computed && !f.stored) || (ent.readonly_fields || []).includes(f.name)
    || rules.readonly[f.name] === true || (editableNow !== null && !editableNow.has(f.name));

  const valueOf = (f) => ((f.readonly || f.computed) && f.name in rules.values ? rules.values[f.name] : draft[f.name]);

  const save = async (e) => {
    if (e) e.preventDefault();
    if (readOnly) return;
    setBusy(true); setMessage(null);
    const body = editableBody(ent, draft);
    const url = isNew ? ent.url : `${ent.url}/${recordId}`;
    const method = isNew ? 'POST' : 'PUT';
    if (!isNew) body.version = record.version;
    try {
      const saved = isNew ? await post(url, body) : await put(url, body);
      setErrors({}); setMessage({ kind: 'ok', text: t('saved') });
      touched.current = new Set();
      if (isNew) { go(`#/f/${ent.module}/${ent.name}/${saved.id}`); return; }
      setRecord(saved); setDraft(saved); loadActions(saved); setTlKey((k) => k + 1);
    } catch (err) {
      if (err.offline) {
        enqueue({ method, url, body, entity: ent.qualname, recordId, title: isNew ? t('new') : titleOf(ent, record) });
        setMessage({ kind: 'warn', text: t('offline_saved') });
      } else if (err.status === 409 && err.fields.version) {
        const latest = await get(url).catch(() => null);
        const names = ent.fields.map((f) => f.name);
        const mine = changedFields(draft, record, names);
        const theirs = latest ? changedFields(latest, record, names) : [];
        setConflict({ mine: record.version, theirs: latest && latest.version, latest, minefields: mine,
          both: mine.filter((n) => theirs.includes(n)).map((n) => label((ent.fields.find((f) => f.name === n) || {}).label, n)) });
      } else if (err.status === 422 || err.status === 409 || err.status === 400) {
        setErrors(flattenErrors(err.fields));
        setMessage({ kind: 'error', text: Object.keys(err.fields).length ? t('errors_at') : err.message });
      } else {
        setMessage({ kind: 'error', text: err.status === 403 ? `${t('forbidden')}: ${err.message}` : err.message });
      }
    } finally { setBusy(false); }
  };

  const reapply = () => {
    const { latest, minefields } = conflict;
    const next = { ...latest };
    for (const n of minefields) next[n] = draft[n];
    setRecord(latest); setDraft(next); setConflict(null); loadActions(latest); evaluate(next);
  };
  const discardMine = () => { setConflict(null); load(); };

  const remove = async () => {
    if (!window.confirm(t('confirm_delete'))) return;
    try { await del(`${ent.url}/${recordId}?version=${record.version}`); go(`#/l/${ent.module}/${ent.name}`); } catch (err) { setMessage({ kind: 'error', text: err.message }); }
  };

  const runAction = async (a) => {
    setBusy(true); setMessage(null);
    try {
      const saved = await post(`${ent.url}/${recordId}/actions/${a.action}`, { version: record.version });
      setRecord(saved); setDraft(saved); loadActions(saved); setTlKey((k) => k + 1);
      setMessage({ kind: 'ok', text: label(a.label, a.action) });
    } catch (err) {
      setErrors(flattenErrors(err.fields)); setMessage({ kind: 'error', text: err.message });
    } finally { setBusy(false); }
  };

  const tabs = formLayout(ent);
  const errCount = (tb) => tb.sections.reduce((n, s) => n + s.fields.filter((f) => Object.keys(errors).some((k) => k === f.name || k.startsWith(`${f.name}.`))).length, 0);
  const renderField = (f) => {
    if (rules.visible[f.name] === false) return null;
    const errs = errors[f.name];
    if (f.type === 'attachment') {
      const uploaded = (saved) => {
        setRecord(saved); setDraft((cur) => ({ ...cur, [f.name]: saved[f.name], version: saved.version }));
        setErrors((cur) => { const e = { ...cur }; delete e[f.name]; return e; });
        setMessage({ kind: 'ok', text: t('uploaded') }); setTlKey((k) => k + 1);
      };
      return html`<${AttachmentField} field=${f} value=${draft[f.name]} url=${isNew ? null : `${ent.url}/${recordId}`}
        version=${record && record.version} readOnly=${fieldReadOnly(f)} errors=${errs} onUploaded=${uploaded}
        onChange=${(v) => change(f.name, v)} onError=${(msgs) => setErrors((cur) => ({ ...cur, [f.name]: msgs }))} />`;
    }
    if (f.type === 'table') {
      const tableErrs = Object.fromEntries(Object.entries(errors).filter(([k]) => k === f.name || k.startsWith(`${f.name}.`)));
      return html`<div class="field wide" data-field=${f.name}><${Grid} field=${f} rows=${draft[f.name]} readOnly=${fieldReadOnly(f)}
        errors=${tableErrs} rowStates=${rules.row_states[f.name]} computedRows=${rules.rows[f.name]} onChange=${(v) => change(f.name, v)} /></div>`;
    }
    const ro = fieldReadOnly(f);
    if (printMode || (ro && !['bool'].includes(f.type))) {
      return html`<div class=${`field ro type-${f.type}${['text', 'json'].includes(f.type) ? ' wide' : ''}`} data-field=${f.name}>
        <span class="label">${label(f.label, f.name)}${f.unit ? ` (${f.unit})` : ''}</span>
        <span class="value">${display(f, valueOf(f), draft) || '—'}</span>
        ${errs && html`<span class="field-error" role="alert">${errs.join('; ')}</span>`}
      </div>`;
    }
    return html`<${Field} field=${f} value=${valueOf(f)} readOnly=${ro} required=${f.required || rules.required[f.name] === true}
      errors=${errs} wide=${['text', 'json'].includes(f.type)} onChange=${(v) => change(f.name, v)} />`;
  };
  const title = isNew ? `${t('new')}: ${label(ent.label)}` : titleOf(ent, record);
  const onTabKey = (e, i) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      const j = (i + (e.key === 'ArrowRight' ? 1 : -1) + tabs.length) % tabs.length;
      setTab(j); setTimeout(() => document.getElementById(`tab-${j}`)?.focus(), 0);
    }
  };
  return html`<div class=${`form-page${printMode ? ' print' : ''}`}>
    <div class="page-head">
      <p class="crumbs"><a href=${`#/l/${ent.module}/${ent.name}`}>${label(ent.label)}</a></p>
      <h1>${title}</h1>
      ${!printMode && html`<div class="toolbar">
        ${!readOnly && html`<button type="submit" form="record-form" class="primary" disabled=${busy}>${busy ? t('saving') : t('save')}</button>`}
        ${!isNew && can(ent, 'delete') && html`<button type="button" class="danger" onClick=${remove}>${t('delete')}</button>`}
        ${!isNew && html`<a class="button" href=${`#/p/${ent.module}/${ent.name}/${recordId}`}>${t('print')}</a>`}
      </div>`}
      ${printMode && html`<div class="toolbar no-print"><button type="button" class="primary" onClick=${() => window.print()}>${t('print')}</button>
        <a class="button" href=${`#/f/${ent.module}/${ent.name}/${recordId}`}>${t('back')}</a></div>`}
    </div>
    ${!printMode && html`<${WorkflowBar} ent=${ent} record=${record} actions=${actions} onRun=${runAction} busy=${busy} />`}
    <div aria-live="polite" class="messages">
      ${message && html`<p class=${`msg ${message.kind}`} role=${message.kind === 'error' ? 'alert' : 'status'}>${message.text}</p>`}
      ${remote && html`<p class="msg warn" role="status">${remote.deleted ? t('live_deleted') : t(remote.applied ? 'live_reloaded' : 'live_changed')}
        ${!remote.deleted && !remote.applied && html` <button type="button" onClick=${() => load()}>${t('reload')}</button>`}</p>`}
      ${errors._rules && html`<p class="msg error" role="alert">${errors._rules.join('; ')}</p>`}
      ${errors._guard && html`<p class="msg error" role="alert">${errors._guard.join('; ')}</p>`}
    </div>
    ${ent.help && !printMode && html`<p class="help">${label(ent.help)}</p>`}
    <form id="record-form" onSubmit=${save} novalidate>
      ${tabs.length > 1 && !printMode && html`<div role="tablist" class="tabs" aria-label=${label(ent.label)}>
        ${tabs.map((tb, i) => html`<button type="button" role="tab" id=${`tab-${i}`} aria-selected=${i === tab ? 'true' : 'false'}
          aria-controls=${`panel-${i}`} tabindex=${i === tab ? 0 : -1} onKeyDown=${(e) => onTabKey(e, i)} onClick=${() => setTab(i)}>
          ${label(tb.label, `${i + 1}`)}${errCount(tb) ? html` <span class="badge state-red">${errCount(tb)}</span>` : ''}</button>`)}
      </div>`}
      ${tabs.map((tb, i) => ((tabs.length === 1 || printMode || i === tab) ? html`<div role=${tabs.length > 1 && !printMode ? 'tabpanel' : undefined}
          id=${`panel-${i}`} aria-labelledby=${tabs.length > 1 && !printMode ? `tab-${i}` : undefined}>
          ${printMode && tb.label && html`<h2>${label(tb.label)}</h2>`}
          ${tb.sections.map((s) => html`<${Section} section=${s}>${s.fields.map(renderField)}<//>`)}
        </div>` : null))}
    </form>
    ${conflict && html`<${ConflictDialog} conflict=${conflict} onReapply=${reapply} onDiscard=${discardMine} />`}
    ${!isNew && !printMode && html`<${Timeline} key=${tlKey} ent=${ent} recordId=${recordId} />`}
  </div>`;
}
