// A record's timeline: audit history (who, when, what changed), workflow transitions and
// comments, newest first (/api/desk/timeline).
import { html, useState, useEffect, useId } from './lib.js';
import { t, label, fmtDateTime } from './i18n.js';
import { get, post } from './api.js';
import { display } from './fields.js';

function fieldLabel(ent, name) {
  const f = ent.fields.find((x) => x.name === name);
  return f ? label(f.label, name) : name;
}

function show(ent, name, value) {
  const f = ent.fields.find((x) => x.name === name);
  if (value === null || value === undefined) return '—';
  if (f && f.type === 'table') return `${value.length}`;
  return f ? display(f, value, {}) || '—' : JSON.stringify(value);
}

function stateLabel(ent, code) {
  const s = ent.workflow && ent.workflow.states.find((x) => x.name === code);
  return s ? label(s.label, code) : code;
}

export function Timeline({ ent, recordId }) {
  const [items, setItems] = useState(null);
  const [text, setText] = useState('');
  const id = useId('comment');
  const load = () => get(`/api/desk/timeline/${ent.module}/${ent.name}/${recordId}`).then((r) => setItems(r.items)).catch(() => setItems([]));
  useEffect(() => { load(); }, [recordId]);
  const submit = async (e) => {
    e.preventDefault();
    if (!text.trim()) return;
    await post(`/api/desk/comments/${ent.module}/${ent.name}/${recordId}`, { body: text });
    setText(''); load();
  };
  const verbs = { create: t('created'), update: t('updated'), delete: t('deleted_ev') };
  return html`<section class="timeline" aria-labelledby="timeline-h">
    <h2 id="timeline-h">${t('timeline')}</h2>
    <form class="comment-form" onSubmit=${submit}>
      <label for=${id}>${t('add_comment')}</label>
      <textarea id=${id} rows="2" value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
      <button type="submit">${t('post')}</button>
    </form>
    ${items === null ? html`<p aria-busy="true">${t('loading')}</p>` : html`<ol class="events">
      ${items.map((it) => html`<li class=${`ev ev-${it.kind}`}>
        <span class="when">${fmtDateTime(it.at)}</span> <strong class="who">${it.user || '—'}</strong>
        ${it.kind === 'comment' && html`<span class="what"> ${t('comment')}:</span><blockquote>${it.body}</blockquote>`}
        ${it.kind === 'transition' && html`<span class="what"> ${label((ent.workflow.transitions.find((x) => x.action === it.action) || {}).label, it.action)}:
          ${stateLabel(ent, it.from)} → ${stateLabel(ent, it.to)}</span>${it.comment && html`<blockquote>${it.comment}</blockquote>`}`}
        ${it.kind === 'audit' && html`<span class="what"> ${verbs[it.action] || it.action}</span>
          ${it.action === 'update' && it.after && html`<ul class="changes">${Object.keys(it.after).map((k) => html`<li>
            ${fieldLabel(ent, k)}: <del>${show(ent, k, it.before && it.before[k])}</del> → <ins>${show(ent, k, it.after[k])}</ins></li>`)}</ul>`}`}
      </li>`)}
    </ol>`}
  </section>`;
}
