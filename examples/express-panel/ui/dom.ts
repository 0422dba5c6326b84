/**
 * DOM helpers of the example panel's UI: elements built with text nodes only (customer names and
 * messages never become markup), formatting, and the polite live region.
 * @module
 */
import { isImagesApiError, problemMessage, type ImagesApiError } from '../../../src/client';

type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | null | undefined | EventListener>;

/** Builds an element: `h('button', { type: 'button', onclick: f }, 'Delete')`. Text children are text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, ...children);
  return element;
}

/** Appends children (strings as text). */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Bytes for people: 1.5 GiB, 64.0 MiB, "—" when unknown. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A timestamp in the person's locale, in a `<time>` element. */
export function time(iso: string | null | undefined): HTMLElement | string {
  if (!iso) return '—';
  return h('time', { datetime: iso }, new Date(iso).toLocaleString());
}

/** The customer vocabulary of image statuses. */
export const IMAGE_STATUS_LABELS: Record<string, string> = {
  creating: 'Creating',
  available: 'Available',
  error: 'Error',
  deleting: 'Deleting',
  deleted: 'Deleted',
};

/** The tasks page's vocabulary of task statuses. */
export const TASK_STATUS_LABELS: Record<string, string> = {
  queued: 'Queued',
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/**
 * What a person reads of a failed request: the message catalog's text of the problem's code (what
 * a host translates), with the offending fields; a code the catalog does not know shows the
 * server's own detail.
 */
export function problemText(error: unknown): string {
  if (isImagesApiError(error)) {
    const problem = error as ImagesApiError;
    const text = problemMessage(problem.code) ?? problem.message;
    const fields = problem.fields.map((f) => `${f.path}: ${f.message}`).join('; ');
    return fields && !text.includes(fields) ? `${text} (${fields})` : text;
  }
  if (error instanceof TypeError) return problemMessage('HTTP_ERROR') ?? error.message;
  return error instanceof Error ? error.message : 'Something went wrong';
}

/** The server's own detail of a problem when it says more than the catalog's text (else null). */
function problemDetail(error: unknown): string | null {
  if (!isImagesApiError(error)) return null;
  const problem = error as ImagesApiError;
  const catalog = problemMessage(problem.code);
  return catalog !== undefined && problem.message !== catalog && problem.fields.length === 0 ? problem.message : null;
}

/** Says `message` in the page's polite live region (screen readers announce it). */
export function announce(message: string): void {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A new text node after a tick is announced even when the message repeats.
  setTimeout(() => (region.textContent = message), 30);
}

/** An alert paragraph for a failed request, announced assertively. */
export function errorBox(error: unknown): HTMLElement {
  const detail = problemDetail(error);
  const code = isImagesApiError(error) ? (error as ImagesApiError).code : null;
  return h(
    'p',
    { class: 'error', role: 'alert', ...(code ? { 'data-code': code } : {}) },
    problemText(error),
    detail ? h('small', { class: 'detail' }, ` ${detail}`) : null,
  );
}

/** A table with a caption, column headings and rows (each row a list of cells). */
export function table(caption: string, headings: string[], rows: HTMLTableRowElement[]): HTMLTableElement {
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headings.map((text) => h('th', { scope: 'col' }, text)))),
    h('tbody', {}, ...rows),
  );
}

/** A table row; each cell gets its column heading as `data-label` (the phone layout shows it). */
export function row(headings: string[], cells: Child[], attributes: Attributes = {}): HTMLTableRowElement {
  return h('tr', attributes, ...cells.map((cell, i) => h('td', { 'data-label': headings[i] ?? '' }, cell)));
}

/** A labelled form control wrapped with its label. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', { id: hintId }, hint) : null);
}

/** The query part of the hash route (`#/admin/browse?storage=...`). */
export function routeQuery(): URLSearchParams {
  return new URLSearchParams(location.hash.split('?')[1] ?? '');
}
