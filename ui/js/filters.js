// Typed list filters: ranges for numbers and dates, pick lists for enums, search for links,
// yes/no for booleans, "contains" for text. Each becomes `field__op=value` on the list URL.
import { html, useId } from './lib.js';
import { t, label, fromSiteLocal, toSiteLocal } from './i18n.js';
import { FieldInput } from './fields.js';

const RANGE = ['int', 'decimal', 'float', 'date', 'datetime'];

export function filterable(ent) { return ent.fields.filter((f) => !['table', 'json', 'attachment'].includes(f.type) && !(f.computed && !f.stored)); }

/** Query parameters of the filter list. */
export function filterParams(filters) {
  const out = {};
  for (const f of filters) {
    const { field, type } = f;
    if (RANGE.includes(type)) {
      if (f.from != null && f.from !== '') out[`${field}__gte`] = f.from;
      if (f.to != null && f.to !== '') out[`${field}__lte`] = f.to;
    } else if (type === 'enum') {
      if (f.values && f.values.length) out[`${field}__in`] = f.values.join(',');
    } else if (type === 'bool' || type === 'link') {
      if (f.value != null && f.value !== '') out[field] = String(f.value);
    } else if (f.value) out[`${field}__icontains`] = f.value;
  }
  return out;
}

function RangeInputs({ f, field, onChange }) {
  const id = useId('flt');
  const kind = field.type === 'date' ? 'date' : field.type === 'datetime' ? 'datetime-local' : 'number';
  const shown = (v) => (field.type === 'datetime' ? toSiteLocal(v) : v ?? '');
  const read = (v) => (field.type === 'datetime' ? fromSiteLocal(v) : v);
  const name = label(field.label, field.name);
  return html`<span class="range">
    <label for=${`${id}-a`} class="sr-only">${name} ${t('from')}</label>
    <input id=${`${id}-a`} type=${kind} step="any" placeholder=${t('from')} value=${shown(f.from)} onInput=${(e) => onChange({ ...f, from: read(e.target.value) })} />
    <span aria-hidden="true">–</span>
    <label for=${`${id}-b`} class="sr-only">${name} ${t('to')}</label>
    <input id=${`${id}-b`} type=${kind} step="any" placeholder=${t('to')} value=${shown(f.to)} onInput=${(e) => onChange({ ...f, to: read(e.target.value) })} />
  </span>`;
}

function FilterRow({ f, field, onChange, onRemove }) {
  const id = useId('flt');
  const name = label(field.label, field.name);
  let input;
  if (RANGE.includes(field.type)) input = html`<${RangeInputs} f=${f} field=${field} onChange=${onChange} />`;
  else if (field.type === 'enum') {
    input = html`<select id=${id} multiple size=${Math.min(4, field.values.length)} aria-label=${name}
      onChange=${(e) => onChange({ ...f, values: [...e.target.selectedOptions].map((o) => o.value) })}>
      ${field.values.map((v) => html`<option value=${v.value} selected=${(f.values || []).includes(v.value)}>${label(v.label, v.value)}</option>`)}
    </select>`;
  } else if (field.type === 'bool') {
    input = html`<select id=${id} aria-label=${name} value=${f.value ?? ''} onChange=${(e) => onChange({ ...f, value: e.target.value })}>
      <option value="">${t('any')}</option><option value="true">${t('yes')}</option><option value="false">${t('no')}</option></select>`;
  } else if (field.type === 'link') {
    input = html`<${FieldInput} field=${field} id=${id} value=${f.value ?? null} labelText=${name} onChange=${(v) => onChange({ ...f, value: v })} />`;
  } else {
    input = html`<input id=${id} type="search" aria-label=${name} value=${f.value || ''} onInput=${(e) => onChange({ ...f, value: e.target.value })} />`;
  }
  return html`<div class="filter" data-filter=${field.name}>
    <span class="filter-name">${name}</span> ${input}
    <button type="button" class="icon" aria-label=${`${t('clear')}: ${name}`} onClick=${onRemove}>×</button>
  </div>`;
}

export function FilterBar({ ent, filters, onChange }) {
  const id = useId('add-filter');
  const fields = filterable(ent);
  const add = (e) => {
    const name = e.target.value; e.target.value = '';
    const field = fields.find((x) => x.name === name);
    if (field) onChange([...filters, { field: name, type: field.type }]);
  };
  return html`<div class="filters" role="group" aria-label=${t('filters')}>
    ${filters.map((f, i) => {
      const field = fields.find((x) => x.name === f.field);
      return field && html`<${FilterRow} key=${`${f.field}-${i}`} f=${f} field=${field}
        onChange=${(nf) => onChange(filters.map((x, j) => (j === i ? nf : x)))} onRemove=${() => onChange(filters.filter((_, j) => j !== i))} />`;
    })}
    <label for=${id} class="sr-only">${t('add_filter')}</label>
    <select id=${id} class="add-filter" onChange=${add}>
      <option value="">+ ${t('add_filter')}</option>
      ${fields.map((f) => html`<option value=${f.name}>${label(f.label, f.name)}</option>`)}
    </select>
  </div>`;
}
