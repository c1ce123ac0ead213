// Spanish and English: the choice is remembered on the device; dates and numbers follow the
// user's locale, times are shown in the site's time zone (CAMPO_TIMEZONE, /api/desk/config).
import { bus } from './lib.js';

const KEY = 'campo.lang';
const T = {
  en: {
    app: 'Campo', skip: 'Skip to content', login: 'Sign in', username: 'User name', password: 'Password',
    logout: 'Sign out', account: 'My account', language: 'Language', units: 'Units', units_stored: 'As stored', units_field: 'Field (bbl, psi, °F, ft)', units_metric: 'Metric (m³, kPa, °C, m)', search: 'Search', search_ph: 'Search records…',
    no_results: 'Nothing found', modules: 'Modules', home: 'Home', welcome: 'Choose an entity on the left.',
    new: 'New', save: 'Save', saving: 'Saving…', saved: 'Saved', delete: 'Delete', cancel: 'Cancel', close: 'Close',
    confirm_delete: 'Delete this record? This cannot be undone.', deleted: 'Deleted', edit: 'Edit', print: 'Print',
    back: 'Back', reload: 'Reload', filters: 'Filters', add_filter: 'Add filter', clear: 'Clear', apply: 'Apply',
    from: 'from', to: 'to', any: 'any', yes: 'Yes', no: 'No', columns: 'Columns', sort: 'Sort', next: 'Next page',
    prev: 'Previous page', page_rows: '{n} rows', about_n: 'about {n} records', export_csv: 'Export CSV',
    import_csv: 'Import CSV', views: 'Saved views', save_view: 'Save view', view_name: 'View name',
    default_view: 'Default view', delete_view: 'Delete view', group_by: 'Group by', none: 'None', count: 'Count',
    select_all: 'Select all rows', select_row: 'Select row {n}', selected: '{n} selected', bulk_delete: 'Delete selected',
    bulk_done: '{ok} done, {bad} failed', run_action: 'Run', actions: 'Actions', no_rows: 'No records',
    loading: 'Loading…', required: 'required', details: 'Details', other: 'Other', timeline: 'Timeline',
    comment: 'Comment', add_comment: 'Add comment', post: 'Post', created: 'created', updated: 'updated',
    deleted_ev: 'deleted', changed: 'changed', by: 'by', state: 'State', add_row: 'Add row', remove_row: 'Remove row',
    move_up: 'Move up', move_down: 'Move down', row: 'Row', attachments: 'Attachments', upload: 'Upload',
    conflict_title: 'Someone else changed this record',
    conflict_text: 'Version {mine} was open here; the server has version {theirs}. Nothing was overwritten.',
    conflict_reapply: 'Reload and re-apply my changes', conflict_discard: 'Reload and discard my changes',
    conflict_both: 'Changed by both: {fields}', errors_at: 'Please correct the highlighted fields.',
    offline: 'Offline', offline_saved: 'No connection: kept on this device; it will be sent when the link returns.',
    outbox: 'Waiting to send', outbox_sent: 'Sent {n} change(s) kept on this device', outbox_conflict: 'Conflict: the record changed on the server',
    send_now: 'Send now', discard: 'Discard', session_expired: 'Your session has expired; please sign in again.',
    bad_login: 'Invalid user name or password', change_password: 'Change password', current_password: 'Current password',
    new_password: 'New password', password_changed: 'Password changed; your other sessions were ended.',
    sessions: 'My sessions', this_session: 'this device', end_session: 'End session', started: 'Started',
    last_seen: 'Last seen', er_diagram: 'Model diagram', definition: 'Definition', source: 'Source',
    dry_run: 'Check (dry run)', import_now: 'Import', import_ok: '{n} rows are valid', imported: '{n} records imported',
    import_errors: '{n} rows have errors; nothing was written', line: 'Line', file: 'CSV file', read_only: 'Read only',
    workflow: 'Workflow', not_allowed: 'Not available', live_changed: 'Someone else changed this record; reload to see it (your changes are lost) or save to compare', live_reloaded: 'Someone else changed this record: this is the new version', live_deleted: 'This record was deleted by someone else',
    menu: 'Menu', loaded_offline: 'Shown from this device (offline)', linked: 'linked', choose: 'Choose…',
    records: 'Records', effective_definition: 'Effective definition', resolved: 'Resolved by the engine',
    tools: 'Tools', ago_now: 'now', print_view: 'Print view', record_n: 'Record {n}', total: 'Total',
    invalid_json: 'Not valid JSON', error: 'Error', forbidden: 'You may not do this', not_found: 'Not found',
    download: 'Download', no_file: 'No file', uploading: 'Uploading…', uploaded: 'File attached', replace_file: 'Replace file',
    remove_file: 'Remove file', attach_save_first: 'Save the record to attach a file', file_too_large: 'The file is larger than {n}',
  },
  es: {
    app: 'Campo', skip: 'Ir al contenido', login: 'Ingresar', username: 'Usuario', password: 'Contraseña',
    logout: 'Salir', account: 'Mi cuenta', language: 'Idioma', units: 'Unidades', units_stored: 'Como se guardan', units_field: 'De campo (bbl, psi, °F, ft)', units_metric: 'Métricas (m³, kPa, °C, m)', search: 'Buscar', search_ph: 'Buscar registros…',
    no_results: 'Sin resultados', modules: 'Módulos', home: 'Inicio', welcome: 'Elija una entidad a la izquierda.',
    new: 'Nuevo', save: 'Guardar', saving: 'Guardando…', saved: 'Guardado', delete: 'Eliminar', cancel: 'Cancelar', close: 'Cerrar',
    confirm_delete: '¿Eliminar este registro? No se puede deshacer.', deleted: 'Eliminado', edit: 'Editar', print: 'Imprimir',
    back: 'Volver', reload: 'Recargar', filters: 'Filtros', add_filter: 'Agregar filtro', clear: 'Limpiar', apply: 'Aplicar',
    from: 'desde', to: 'hasta', any: 'cualquiera', yes: 'Sí', no: 'No', columns: 'Columnas', sort: 'Orden', next: 'Página siguiente',
    prev: 'Página anterior', page_rows: '{n} filas', about_n: 'unos {n} registros', export_csv: 'Exportar CSV',
    import_csv: 'Importar CSV', views: 'Vistas guardadas', save_view: 'Guardar vista', view_name: 'Nombre de la vista',
    default_view: 'Vista predeterminada', delete_view: 'Eliminar vista', group_by: 'Agrupar por', none: 'Ninguno', count: 'Cantidad',
    select_all: 'Seleccionar todas las filas', select_row: 'Seleccionar fila {n}', selected: '{n} seleccionados', bulk_delete: 'Eliminar seleccionados',
    bulk_done: '{ok} hechos, {bad} fallidos', run_action: 'Ejecutar', actions: 'Acciones', no_rows: 'Sin registros',
    loading: 'Cargando…', required: 'obligatorio', details: 'Datos', other: 'Otros', timeline: 'Historial',
    comment: 'Comentario', add_comment: 'Agregar comentario', post: 'Publicar', created: 'creó', updated: 'modificó',
    deleted_ev: 'eliminó', changed: 'cambió', by: 'por', state: 'Estado', add_row: 'Agregar fila', remove_row: 'Quitar fila',
    move_up: 'Subir', move_down: 'Bajar', row: 'Fila', attachments: 'Adjuntos', upload: 'Subir',
    conflict_title: 'Otra persona cambió este registro',
    conflict_text: 'Aquí estaba abierta la versión {mine}; el servidor tiene la versión {theirs}. No se sobrescribió nada.',
    conflict_reapply: 'Recargar y volver a aplicar mis cambios', conflict_discard: 'Recargar y descartar mis cambios',
    conflict_both: 'Cambiados por ambos: {fields}', errors_at: 'Corrija los campos marcados.',
    offline: 'Sin conexión', offline_saved: 'Sin conexión: guardado en este dispositivo; se enviará cuando vuelva el enlace.',
    outbox: 'Pendientes de envío', outbox_sent: 'Se enviaron {n} cambio(s) guardados en este dispositivo', outbox_conflict: 'Conflicto: el registro cambió en el servidor',
    send_now: 'Enviar ahora', discard: 'Descartar', session_expired: 'Su sesión venció; vuelva a ingresar.',
    bad_login: 'Usuario o contraseña incorrectos', change_password: 'Cambiar contraseña', current_password: 'Contraseña actual',
    new_password: 'Contraseña nueva', password_changed: 'Contraseña cambiada; se cerraron sus otras sesiones.',
    sessions: 'Mis sesiones', this_session: 'este dispositivo', end_session: 'Cerrar sesión', started: 'Inicio',
    last_seen: 'Última actividad', er_diagram: 'Diagrama del modelo', definition: 'Definición', source: 'Origen',
    dry_run: 'Verificar (prueba)', import_now: 'Importar', import_ok: '{n} filas son válidas', imported: '{n} registros importados',
    import_errors: '{n} filas tienen errores; no se escribió nada', line: 'Línea', file: 'Archivo CSV', read_only: 'Solo lectura',
    workflow: 'Flujo', not_allowed: 'No disponible', live_changed: 'Otra persona cambió este registro; recargue para verlo (pierde sus cambios) o guarde para comparar', live_reloaded: 'Otra persona cambió este registro: esta es la versión nueva', live_deleted: 'Otra persona eliminó este registro',
    menu: 'Menú', loaded_offline: 'Mostrado desde este dispositivo (sin conexión)', linked: 'vinculado', choose: 'Elegir…',
    records: 'Registros', effective_definition: 'Definición efectiva', resolved: 'Resuelto por el motor',
    tools: 'Herramientas', ago_now: 'ahora', print_view: 'Vista de impresión', record_n: 'Registro {n}', total: 'Total',
    invalid_json: 'JSON no válido', error: 'Error', forbidden: 'No tiene permiso', not_found: 'No encontrado',
    download: 'Descargar', no_file: 'Sin archivo', uploading: 'Subiendo…', uploaded: 'Archivo adjuntado', replace_file: 'Reemplazar archivo',
    remove_file: 'Quitar archivo', attach_save_first: 'Guarde el registro para adjuntar un archivo', file_too_large: 'El archivo supera {n}',
  },
};

function initial() {
  const saved = localStorage.getItem(KEY);
  if (saved === 'es' || saved === 'en') return saved;
  return (navigator.language || 'en').toLowerCase().startsWith('es') ? 'es' : 'en';
}

const UNITS_KEY = 'campo.units';
const savedUnits = localStorage.getItem(UNITS_KEY);

/** lang; timezone; units: '' (as stored), 'field' or 'metric' (sent as X-Units, converted by the API) */
export const i18n = { lang: initial(), timezone: 'UTC', units: savedUnits === 'field' || savedUnits === 'metric' ? savedUnits : '' };
document.documentElement.lang = i18n.lang;

export function setLang(lang) {
  i18n.lang = lang; localStorage.setItem(KEY, lang); document.documentElement.lang = lang;
  fmtCache.clear(); bus.emit('lang', lang);
}

/** Choose the unit system; the page reloads so lists, forms and metadata use it. */
export function setUnits(units) {
  if (units) localStorage.setItem(UNITS_KEY, units); else localStorage.removeItem(UNITS_KEY);
  for (const k of Object.keys(localStorage)) if (k.startsWith('campo.cache.')) localStorage.removeItem(k);
  location.reload();
}

export function setTimezone(tz) { i18n.timezone = tz || 'UTC'; fmtCache.clear(); }

/** A UI text in the current language, with {name} placeholders filled. */
export function t(key, vars) {
  let s = (T[i18n.lang] && T[i18n.lang][key]) || T.en[key] || key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

/** A model label ({es, en} or a string) in the current language. */
export function label(value, fallback = '') {
  if (value == null) return fallback;
  if (typeof value === 'string') return value;
  return value[i18n.lang] || value.en || value.es || fallback;
}

/** The locale for numbers and dates: the browser's own if it speaks the chosen language. */
export function locale() {
  const mine = (navigator.languages || [navigator.language || 'en']).find((l) => l.toLowerCase().startsWith(i18n.lang));
  return mine || (i18n.lang === 'es' ? 'es-AR' : 'en-US');
}

const fmtCache = new Map();
function fmt(kind, opts) {
  const key = kind + JSON.stringify(opts);
  if (!fmtCache.has(key)) {
    fmtCache.set(key, kind === 'n' ? new Intl.NumberFormat(locale(), opts) : new Intl.DateTimeFormat(locale(), opts));
  }
  return fmtCache.get(key);
}

export function fmtNumber(value, decimals) {
  if (value === null || value === undefined || value === '') return '';
  const n = typeof value === 'number' ? value : Number(value);
  if (Number.isNaN(n)) return String(value);
  const opts = decimals == null ? { maximumFractionDigits: 6 } : { minimumFractionDigits: decimals, maximumFractionDigits: decimals };
  return fmt('n', opts).format(n);
}

export function fmtDate(iso) {
  if (!iso) return '';
  const [y, m, d] = iso.split('-').map(Number);
  return fmt('d', { timeZone: 'UTC', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(Date.UTC(y, m - 1, d)));
}

export function fmtDateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return fmt('dt', { timeZone: i18n.timezone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(d);
}

/** Wall-clock parts of an instant in the site's time zone. */
function zoneParts(date) {
  const parts = fmt('parts', { timeZone: i18n.timezone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(date);
  const o = {}; parts.forEach((p) => { o[p.type] = p.value; });
  return o;
}

/** An ISO instant as the `datetime-local` input value in the site's time zone. */
export function toSiteLocal(iso) {
  if (!iso) return '';
  const p = zoneParts(new Date(iso));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** A `datetime-local` value read in the site's time zone, as an ISO instant (UTC). */
export function fromSiteLocal(value) {
  if (!value) return null;
  const [d, tm] = value.split('T');
  const [y, mo, da] = d.split('-').map(Number);
  const [hh, mi] = (tm || '00:00').split(':').map(Number);
  const guess = Date.UTC(y, mo - 1, da, hh, mi);
  // the zone's offset at that instant, found from the wall clock the guess shows there
  const p = zoneParts(new Date(guess));
  const shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute);
  let instant = guess - (shown - guess);
  const p2 = zoneParts(new Date(instant));
  const shown2 = Date.UTC(+p2.year, +p2.month - 1, +p2.day, +p2.hour, +p2.minute);
  instant += guess - shown2;
  return new Date(instant).toISOString().replace('.000Z', '+00:00');
}
