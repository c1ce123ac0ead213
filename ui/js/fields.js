// One input per field type, and how each type is shown in lists. Types come from
// /api/meta; a new field of a known type needs nothing here.
import { html, useId, useState, useEffect } from './lib.js';
import { t, label, fmtNumber, fmtDate, fmtDateTime, toSiteLocal, fromSiteLocal } from './i18n.js';
import { entity, titleOf, store } from './store.js';
import { LinkInput } from './link.js';
import { post, fetchBlob } from './api.js';
import { download } from './lib.js';

export function enumLabel(field, code) {
  const v = (field.values || []).find((x) => x.value === code);
  return v ? label(v.label, code) : code;
}

/** A value as text for lists, timelines and read-only views. */
export function display(field, value, record) {
  if (value === null || value === undefined || value === '') return '';
  switch (field.type) {
    case 'enum': return enumLabel(field, value);
    case 'bool': return value ? t('yes') : t('no');
    case 'date': return fmtDate(value);
    case 'datetime': return fmtDateTime(value);
    case 'int': return fmtNumber(value, 0);
    case 'decimal': return fmtNumber(value, field.scale);
    case 'float': return fmtNumber(value);
    case 'json': return JSON.stringify(value);
    case 'link': {
      const exp = record && record._expanded && record._expanded[field.name];
      return exp ? titleOf(entity(field.link.entity), exp) : `#${value}`;
    }
    case 'table': return String(value.length);
    case 'attachment': return `${value.name} (${fmtSize(value.size)})`;
    default: return String(value);
  }
}

/** Bytes as people read them (1 KB = 1024 bytes, as max_size in the model). */
export function fmtSize(n) {
  if (n < 1024) return `${fmtNumber(n, 0)} B`;
  const [unit, d] = n < 1024 ** 2 ? ['KB', 1024] : n < 1024 ** 3 ? ['MB', 1024 ** 2] : ['GB', 1024 ** 3];
  return `${fmtNumber(n / d, 1)} ${unit}`;
}

/** An attachment field: file name, size and a download button; when writable, a file
 * picker that uploads at once (POST …/<id>/files/<field>, raw body) and a remove button
 * (the field becomes null, saved with the form). A new record is saved before a file. */
export function AttachmentField({ field, value, url, version, readOnly, errors, onUploaded, onChange, onError }) {
  const id = useId(`f-${field.name}`);
  const errId = `${id}-err`;
  const [busy, setBusy] = useState(false);
  const opts = field.attachment || {};
  const limit = opts.max_size || store.config.max_upload_bytes || Infinity;
  const text = label(field.label, field.name);
  const fileUrl = url ? `${url}/files/${field.name}` : null;
  const pick = async (e) => {
    const file = e.target.files && e.target.files[0];
    e.target.value = '';
    if (!file) return;
    if (file.size > limit) { onError([t('file_too_large', { n: fmtSize(limit) })]); return; }
    setBusy(true);
    try {
      const q = new URLSearchParams({ name: file.name });
      if (version) q.set('version', String(version));
      onUploaded(await post(`${fileUrl}?${q}`, file, { contentType: file.type || 'application/octet-stream' }));
    } catch (err) {
      const mine = err.fields && err.fields[field.name];
      onError(err.offline ? [t('offline')] : mine || [err.message]);
    } finally { setBusy(false); }
  };
  const save = async () => {
    try { download(await fetchBlob(fileUrl), value.name); } catch (err) { onError([err.message]); }
  };
  const has = errors && errors.length;
  return html`<div class=${`field type-attachment${has ? ' has-error' : ''}`} data-field=${field.name}>
    <span class="label" id=${`${id}-label`}>${text}</span>
    <span class="value attachment">
      ${value ? html`<span class="file-name">${value.name}</span> <span class="file-size">(${fmtSize(value.size)})</span>
        ${fileUrl && html` <button type="button" class="link-button" data-download=${field.name} onClick=${save}>${t('download')}</button>`}`
        : html`<span class="no-file">${t('no_file')}</span>`}
    </span>
    ${!readOnly && (fileUrl ? html`<span class="attach-controls">
        <input id=${id} class="file-input" type="file" disabled=${busy} accept=${(opts.accept || []).join(',') || undefined}
          aria-label=${`${text}: ${value ? t('replace_file') : t('upload')}`} aria-describedby=${has ? errId : undefined} onChange=${pick} />
        ${busy && html`<span aria-busy="true">${t('uploading')}</span>`}
        ${value && html`<button type="button" class="secondary" data-remove=${field.name} onClick=${() => onChange(null)}>${t('remove_file')}</button>`}
      </span>` : html`<small class="help">${t('attach_save_first')}</small>`)}
    ${has ? html`<span id=${errId} class="field-error" role="alert">${errors.join('; ')}</span>` : ''}
  </div>`;
}

function JsonInput({ id, value, onChange, readOnly, describedBy, invalid }) {
  const [text, setText] = useState(value == null ? '' : JSON.stringify(value, null, 2));
  const [bad, setBad] = useState(false);
  useEffect(() => {
    let same = false;
    try { same = JSON.stringify(JSON.parse(text || 'null')) === JSON.stringify(value ?? null); } catch { same = false; }
    if (!same && !bad) setText(value == null ? '' : JSON.stringify(value, null, 2));
  }, [value]);
  const input = (e) => {
    const s = e.target.value; setText(s);
    if (!s.trim()) { setBad(false); onChange(null); return; }
    try { onChange(JSON.parse(s)); setBad(false); } catch { setBad(true); }
  };
  return html`<textarea id=${id} class="json" rows="4" value=${text} onInput=${input} readOnly=${readOnly}
    aria-invalid=${bad || invalid ? 'true' : 'false'} aria-describedby=${describedBy}></textarea>
    ${bad && html`<span class="field-error">${t('invalid_json')}</span>`}`;
}

/** The bare input of one field (no label): used by forms and grid cells. */
export function FieldInput({ field, value, onChange, readOnly, id, required, invalid, describedBy, labelText }) {
  const common = { id, disabled: false, readOnly, required, 'aria-invalid': invalid ? 'true' : 'false', 'aria-describedby': describedBy, 'aria-label': labelText };
  const str = (v) => (v === null || v === undefined ? '' : String(v));
  const num = (e, parse) => { const s = e.target.value.trim(); if (s === '') return onChange(null); const n = parse(s); onChange(Number.isNaN(n) ? s : n); };
  switch (field.type) {
    case 'text':
      return html`<textarea ...${common} rows="3" value=${str(value)} onInput=${(e) => onChange(e.target.value || null)}></textarea>`;
    case 'int':
      return html`<input ...${common} type="number" step="1" inputmode="numeric" min=${field.min ?? undefined} max=${field.max ?? undefined}
        value=${str(value)} onInput=${(e) => num(e, (s) => (/^-?\d+$/.test(s) ? parseInt(s, 10) : NaN))} />`;
    case 'float':
      return html`<input ...${common} type="number" step="any" inputmode="decimal" min=${field.min ?? undefined} max=${field.max ?? undefined}
        value=${str(value)} onInput=${(e) => num(e, Number)} />`;
    case 'decimal':
      return html`<input ...${common} type="text" inputmode="decimal" pattern="-?[0-9]*[.,]?[0-9]*" value=${str(value)}
        onInput=${(e) => { const s = e.target.value.trim().replace(',', '.'); onChange(s === '' ? null : s); }} />`;
    case 'bool':
      return html`<input ...${common} type="checkbox" checked=${Boolean(value)} disabled=${readOnly}
        onChange=${(e) => onChange(e.target.checked)} />`;
    case 'date':
      return html`<input ...${common} type="date" value=${str(value)} min=${field.min || undefined} max=${field.max || undefined}
        onInput=${(e) => onChange(e.target.value || null)} />`;
    case 'datetime':
      return html`<input ...${common} type="datetime-local" value=${toSiteLocal(value)}
        onInput=${(e) => onChange(fromSiteLocal(e.target.value))} />`;
    case 'enum':
      return html`<select ...${common} disabled=${readOnly} value=${str(value)} onChange=${(e) => onChange(e.target.value || null)}>
        <option value="">${required ? t('choose') : '—'}</option>
        ${(field.values || []).map((v) => html`<option value=${v.value} selected=${v.value === value}>${label(v.label, v.value)}</option>`)}
      </select>`;
    case 'json':
      return html`<${JsonInput} id=${id} value=${value} onChange=${onChange} readOnly=${readOnly} describedBy=${describedBy} invalid=${invalid} />`;
    case 'link':
      return html`<${LinkInput} field=${field} id=${id} value=${value} onChange=${onChange} readOnly=${readOnly}
        required=${required} invalid=${invalid} describedBy=${describedBy} labelText=${labelText} />`;
    default:
      return html`<input ...${common} type="text" maxlength=${field.max_length || undefined} value=${str(value)}
        onInput=${(e) => onChange(e.target.value === '' ? null : e.target.value)} />`;
  }
}

/** A labelled field with its help, unit and error messages. */
export function Field({ field, value, onChange, readOnly, required, errors, wide }) {
  const id = useId(`f-${field.name}`);
  const helpId = `${id}-help`;
  const errId = `${id}-err`;
  const text = label(field.label, field.name);
  const described = [field.help ? helpId : null, errors && errors.length ? errId : null].filter(Boolean).join(' ') || undefined;
  const cls = `field type-${field.type}${wide ? ' wide' : ''}${errors && errors.length ? ' has-error' : ''}`;
  return html`<div class=${cls} data-field=${field.name}>
    <label for=${id}>${text}${required ? html`<span class="req" aria-hidden="true"> *</span>` : ''}${field.unit ? html` <span class="unit">(${field.unit})</span>` : ''}</label>
    <${FieldInput} field=${field} id=${id} value=${value} onChange=${onChange} readOnly=${readOnly}
      required=${required} invalid=${errors && errors.length} describedBy=${described} />
    ${field.help && html`<small id=${helpId} class="help">${label(field.help)}</small>`}
    ${errors && errors.length ? html`<span id=${errId} class="field-error" role="alert">${errors.join('; ')}</span>` : ''}
  </div>`;
}
