// CSV import: pick a file, check every row (dry run: nothing written), read the report,
// then import (all or nothing).
import { html, useState, useId, useEffect, useRef } from './lib.js';
import { t, label } from './i18n.js';
import { api } from './api.js';

function fieldName(ent, key) {
  const [name, ...rest] = key.split('.');
  const f = ent.fields.find((x) => x.name === name);
  return (f ? label(f.label, name) : name) + (rest.length ? `.${rest.join('.')}` : '');
}

export function ImportDialog({ ent, onClose }) {
  const [text, setText] = useState(null);
  const [report, setReport] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const id = useId('csv');
  const first = useRef(null);
  useEffect(() => { if (first.current) first.current.focus(); }, []);
  const pick = async (e) => { const file = e.target.files[0]; setReport(null); setError(null); setText(file ? await file.text() : null); };
  const run = async (dry) => {
    setBusy(true); setError(null);
    try {
      const r = await api('POST', `/api/desk/import/${ent.module}/${ent.name}?dry_run=${dry}`, { body: text, contentType: 'text/csv' });
      setReport(r); if (!dry && r.ok) setDone(true);
    } catch (err) {
      if (err.body && err.body.rows !== undefined) setReport(err.body); else setError(err.message);
    }
    setBusy(false);
  };
  return html`<div class="dialog" role="dialog" aria-modal="true" aria-labelledby="import-title">
    <div class="dialog-box wide">
      <h2 id="import-title">${t('import_csv')}: ${label(ent.label)}</h2>
      <label for=${id}>${t('file')}</label>
      <input ref=${first} id=${id} type="file" accept=".csv,text/csv" onChange=${pick} />
      <div class="buttons">
        <button type="button" disabled=${!text || busy} onClick=${() => run(true)}>${t('dry_run')}</button>
        <button type="button" class="primary" disabled=${!text || busy || !report || !report.ok || !report.dry_run || done} onClick=${() => run(false)}>${t('import_now')}</button>
        <button type="button" onClick=${() => onClose(done)}>${t('close')}</button>
      </div>
      <div aria-live="polite">
        ${error && html`<p class="msg error" role="alert">${error}</p>`}
        ${report && report.ok && report.dry_run && html`<p class="msg ok" role="status">${t('import_ok', { n: report.valid })}</p>`}
        ${report && report.ok && !report.dry_run && html`<p class="msg ok" role="status">${t('imported', { n: report.created })}</p>`}
        ${report && !report.ok && html`<p class="msg error" role="alert">${t('import_errors', { n: report.errors.length })}</p>`}
      </div>
      ${report && report.errors.length > 0 && html`<table class="import-report"><caption class="sr-only">${t('error')}</caption>
        <thead><tr><th scope="col">${t('line')}</th><th scope="col">${t('error')}</th></tr></thead>
        <tbody>${report.errors.map((r) => html`<tr data-line=${r.line}><td class="num">${r.line}</td><td><ul>
          ${Object.entries(r.errors).map(([k, msgs]) => html`<li><strong>${fieldName(ent, k)}</strong>: ${[].concat(msgs).join('; ')}</li>`)}
        </ul></td></tr>`)}</tbody></table>`}
    </div>
  </div>`;
}
