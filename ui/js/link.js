// A link field: search-as-you-type over the target's title fields, showing the linked
// record's title (ARIA 1.2 combobox with a listbox popup).
import { html, useState, useEffect, useRef, debounce, qs } from './lib.js';
import { get } from './api.js';
import { t } from './i18n.js';
import { entity, titleOf, titleFields } from './store.js';

const titles = new Map();

async function lookup(target, q) {
  const ent = entity(target.entity);
  const fields = titleFields(ent).join(',');
  const searchable = ent ? ent.fields.filter((f) => ['string', 'text', 'enum'].includes(f.type) && titleFields(ent).includes(f.name)) : [];
  const name = searchable.length ? searchable[0].name : null;
  const params = { fields, limit: 10, sort: name || undefined };
  if (q && name) params[`${name}__icontains`] = q;
  const page = await get(`${target.url}${qs(params)}`);
  return page.items.map((r) => ({ id: r.id, title: titleOf(ent, r) }));
}

export async function titleFor(target, id) {
  const key = `${target.entity}:${id}`;
  if (titles.has(key)) return titles.get(key);
  const ent = entity(target.entity);
  try {
    const rec = await get(`${target.url}/${id}`);
    const text = titleOf(ent, rec);
    titles.set(key, text);
    return text;
  } catch { return `#${id}`; }
}

export function LinkInput({ field, id, value, onChange, readOnly, required, invalid, describedBy, labelText }) {
  const [text, setText] = useState('');
  const [open, setOpen] = useState(false);
  const [options, setOptions] = useState([]);
  const [active, setActive] = useState(-1);
  const listId = `${id}-list`;
  const target = field.link;
  const search = useRef(debounce(async (q) => {
    try { setOptions(await lookup(target, q)); setActive(-1); } catch { setOptions([]); }
  }, 200)).current;

  useEffect(() => {
    let live = true;
    if (value == null) setText('');
    else titleFor(target, value).then((s) => { if (live) setText(s); });
    return () => { live = false; };
  }, [value]);

  const choose = (o) => { titles.set(`${target.entity}:${o.id}`, o.title); setText(o.title); setOpen(false); onChange(o.id); };
  const onInput = (e) => {
    const q = e.target.value; setText(q); setOpen(true); search(q);
    if (!q) onChange(null);
  };
  const onKey = (e) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); if (!open) { setOpen(true); search(text); } setActive(Math.min(active + 1, options.length - 1)); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); setActive(Math.max(active - 1, 0)); }
    else if (e.key === 'Enter' && open && active >= 0 && options[active]) { e.preventDefault(); choose(options[active]); }
    else if (e.key === 'Escape') { setOpen(false); }
  };
  const onBlur = () => setTimeout(() => {
    setOpen(false);
    if (value != null) titleFor(target, value).then(setText); else setText('');
  }, 150);
  return html`<div class="combo">
    <input id=${id} type="text" role="combobox" autocomplete="off" aria-autocomplete="list"
      aria-expanded=${open ? 'true' : 'false'} aria-controls=${listId} aria-label=${labelText}
      aria-activedescendant=${open && active >= 0 ? `${listId}-${active}` : undefined}
      aria-invalid=${invalid ? 'true' : 'false'} aria-describedby=${describedBy} required=${required}
      readOnly=${readOnly} value=${text} onInput=${onInput} onKeyDown=${onKey} onBlur=${onBlur}
      onFocus=${() => { if (!readOnly) { setOpen(true); search(text && value == null ? text : ''); } }} />
    ${open && !readOnly && html`<ul id=${listId} role="listbox" class="combo-list">
      ${options.length === 0 && html`<li class="muted" role="option" aria-disabled="true" aria-selected="false">${t('no_results')}</li>`}
      ${options.map((o, i) => html`<li id=${`${listId}-${i}`} role="option" aria-selected=${i === active ? 'true' : 'false'}
        class=${i === active ? 'active' : ''} onMouseDown=${(e) => { e.preventDefault(); choose(o); }}>${o.title}</li>`)}
    </ul>`}
  </div>`;
}
