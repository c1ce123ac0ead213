// A child table edited inline: one row per child record, add / remove / reorder; cell
// errors come from the server as `<table>.<row>.<field>`.
import { html } from './lib.js';
import { t, label } from './i18n.js';
import { FieldInput, display } from './fields.js';

function newRow(fields) {
  const row = {};
  for (const f of fields) if (f.default !== null && f.default !== undefined && !f.readonly) row[f.name] = f.default;
  return row;
}

export function Grid({ field, rows, onChange, readOnly, errors, rowStates, computedRows }) {
  const fields = field.table.fields;
  const list = rows || [];
  const set = (i, name, v) => onChange(list.map((r, j) => (j === i ? { ...r, [name]: v } : r)));
  const move = (i, d) => {
    const j = i + d; if (j < 0 || j >= list.length) return;
    const copy = list.slice(); [copy[i], copy[j]] = [copy[j], copy[i]]; onChange(copy);
  };
  const remove = (i) => onChange(list.filter((_, j) => j !== i));
  const title = label(field.label, field.name);
  const tableErr = errors[field.name];
  return html`<div class="grid-wrap" data-grid=${field.name}>
    <table class="grid">
      <caption>${title} <span class="muted">(${list.length})</span></caption>
      <thead><tr><th scope="col">#</th>
        ${fields.map((f) => html`<th scope="col">${label(f.label, f.name)}${f.unit ? ` (${f.unit})` : ''}</th>`)}
        ${!readOnly && html`<th scope="col"><span class="sr-only">${t('actions')}</span></th>`}
      </tr></thead>
      <tbody>
        ${list.map((row, i) => {
          const computed = (computedRows && computedRows[i]) || {};
          const states = (rowStates && rowStates[i]) || { visible: {}, required: {}, readonly: {} };
          return html`<tr key=${row.id || `n${i}`} data-row=${i}>
            <td class="num">${i + 1}</td>
            ${fields.map((f) => {
              const key = `${field.name}.${i}.${f.name}`;
              const errs = errors[key];
              const derived = f.readonly || f.computed;
              const value = derived && f.name in computed ? computed[f.name] : row[f.name];
              if (states.visible[f.name] === false) return html`<td></td>`;
              const ro = readOnly || derived || states.readonly[f.name];
              return html`<td class=${errs ? 'has-error' : ''}>
                ${ro && f.type !== 'bool' ? html`<span class="cell-ro">${display(f, value, row)}</span>`
                  : html`<${FieldInput} field=${f} id=${`g-${field.name}-${i}-${f.name}`} value=${value} readOnly=${ro}
                  required=${f.required || states.required[f.name]} invalid=${Boolean(errs)}
                  labelText=${`${label(f.label, f.name)}, ${t('row')} ${i + 1}`} onChange=${(v) => set(i, f.name, v)} />`}
                ${errs && html`<span class="field-error" role="alert">${errs.join('; ')}</span>`}
              </td>`;
            })}
            ${!readOnly && html`<td class="row-actions">
              <button type="button" class="icon" title=${t('move_up')} aria-label=${`${t('move_up')}: ${t('row')} ${i + 1}`} disabled=${i === 0} onClick=${() => move(i, -1)}>↑</button>
              <button type="button" class="icon" title=${t('move_down')} aria-label=${`${t('move_down')}: ${t('row')} ${i + 1}`} disabled=${i === list.length - 1} onClick=${() => move(i, 1)}>↓</button>
              <button type="button" class="icon danger" title=${t('remove_row')} aria-label=${`${t('remove_row')} ${i + 1}`} onClick=${() => remove(i)}>×</button>
            </td>`}
          </tr>`;
        })}
      </tbody>
    </table>
    ${tableErr && html`<span class="field-error" role="alert">${tableErr.join('; ')}</span>`}
    ${!readOnly && html`<button type="button" class="add-row" onClick=${() => onChange([...list, newRow(fields)])}>+ ${t('add_row')}: ${title}</button>`}
  </div>`;
}
