// What the desk knows about the model and the caller, loaded once per sign-in from
// /api/meta (entities the caller may read, fields they may see), /api/desk/layouts,
// /api/desk/config and /api/auth/me. Nothing here names a module or an entity.
import { cachedGet } from './api.js';
import { setTimezone } from './i18n.js';

export const store = { meta: null, layouts: { forms: {}, lists: {} }, config: {}, me: null, entities: new Map() };

export async function loadAll() {
  const [meta, layouts, config, me] = await Promise.all([
    cachedGet('/api/meta'), cachedGet('/api/desk/layouts'), cachedGet('/api/desk/config'), cachedGet('/api/auth/me'),
  ]);
  store.meta = meta; store.layouts = layouts; store.config = config; store.me = me;
  setTimezone(config.timezone);
  store.entities = new Map();
  for (const m of meta.modules) {
    for (const e of m.entities) {
      store.entities.set(e.qualname, { ...e, moduleLabel: m.label });
      for (const f of e.fields) {
        if (f.type === 'table') store.entities.set(f.table.entity, { ...f.table, qualname: f.table.entity, child: true });
      }
    }
  }
  return store;
}

export function entity(qualname) { return store.entities.get(qualname); }

export function can(ent, action) { return Boolean(ent && ent.allowed && ent.allowed.includes(action)); }

/** Fields a list can show as columns (no child tables, no JSON blobs). */
export function listable(ent) { return ent.fields.filter((f) => !['table', 'json', 'attachment'].includes(f.type)); }

const REF = /\{([a-z_][a-z0-9_]*)\}/g;
/** A record's display text from the entity's `title` template. */
export function titleOf(ent, rec) {
  if (!rec) return '';
  if (ent && ent.title) {
    const s = ent.title.replace(REF, (_, n) => (rec[n] == null ? '' : String(rec[n]))).trim().replace(/\s+/g, ' ');
    if (s) return s;
  }
  if (ent && ent.naming && rec[ent.naming]) return String(rec[ent.naming]);
  return `#${rec.id}`;
}

/** The fields a link's target needs for its title. */
export function titleFields(ent) {
  const out = new Set(['id']);
  if (ent && ent.title) for (const m of ent.title.matchAll(REF)) out.add(m[1]);
  if (ent && ent.naming) out.add(ent.naming);
  return [...out];
}

/** Default list columns: the layout's, else title fields then the first scalar fields. */
export function defaultColumns(ent) {
  const lay = store.layouts.lists[ent.qualname];
  const names = new Set(ent.fields.map((f) => f.name));
  if (lay && lay.columns.length) return lay.columns.filter((c) => names.has(c));
  const cols = titleFields(ent).filter((n) => n !== 'id' && names.has(n));
  for (const f of listable(ent)) {
    if (cols.length >= 6) break;
    if (!cols.includes(f.name) && f.type !== 'text') cols.push(f.name);
  }
  return cols;
}
