/**
 * The Image Browser: the files actually on a storage (with what the database says of each), and
 * Reconcile, which always runs as a dry run first: the findings are shown, and only then can the
 * operator apply the same options (after a confirmation).
 * @module
 */
import type { components } from '../../../src/client';
import { confirmDialog } from './dialog';
import { announce, errorBox, field, formatBytes, h, routeQuery, row, table, time } from './dom';
import type { AppContext } from './session';

type ReconcileOptions = components['schemas']['ReconcileOptions'];
type Finding = components['schemas']['ReconcileResult']['findings'][number];

const FILE_HEADINGS = ['File', 'Size', 'Modified', 'State', 'Image'];
const FINDING_HEADINGS = ['File', 'Finding', 'What reconcile does', 'Image'];
const KIND_LABELS: Record<string, string> = {
  ok: 'OK',
  orphan: 'Orphan (no image)',
  stale: 'Stale (source instance deleted)',
  'size-mismatch': 'Size differs',
  missing: 'Missing file',
  leftover: 'Leftover of a failed task',
};
const ACTION_LABELS: Record<string, string> = {
  'deleted-file': 'Delete the file',
  'marked-error': 'Mark the image Error',
  none: 'Nothing',
};

function checkbox(name: string, label: string, hint: string): [HTMLInputElement, HTMLElement] {
  const input = h('input', { type: 'checkbox', name });
  return [input, h('div', { class: 'check' }, h('label', {}, input, ` ${label}`), h('small', {}, ` ${hint}`))];
}

/** Renders the Image Browser into `main`. */
export async function browserPage(ctx: AppContext, main: HTMLElement): Promise<void> {
  const { api } = ctx.client;
  const { data } = await api.GET('/admin/storages', {});
  const storages = data?.items ?? [];
  const select = h('select', { id: 'browse-storage' }, ...storages.map((s) => h('option', { value: s.id }, s.name)));
  const wanted = routeQuery().get('storage');
  if (wanted && storages.some((s) => s.id === wanted)) select.value = wanted;
  const files = h('div', { id: 'browse-files' });
  const more = h('button', { type: 'button', hidden: true }, 'Show more files');
  const findings = h('div', { id: 'reconcile-findings', role: 'region', 'aria-label': 'Reconcile findings', tabindex: '-1' });
  const status = h('div', { id: 'reconcile-status', role: 'status', 'aria-live': 'polite' });
  let cursor: string | null = null;

  async function browse(next: string | null): Promise<void> {
    try {
      const { data: page } = await api.GET('/admin/storages/{storageId}/browse', {
        params: { path: { storageId: select.value }, query: { limit: 100, ...(next ? { cursor: next } : {}) } },
      });
      const rows = (page?.items ?? []).map((item) =>
        row(
          FILE_HEADINGS,
          [
            h('code', {}, item.key),
            formatBytes(item.size),
            time(item.modifiedAt),
            h('span', { class: `badge kind-${item.kind}` }, KIND_LABELS[item.kind] ?? item.kind),
            item.imageId ?? '—',
          ],
          {
            'data-kind': item.kind,
          },
        ),
      );
      const existing = files.querySelector('tbody');
      if (next && existing) existing.append(...rows);
      else
        files.replaceChildren(
          rows.length ? table('Files on the storage', FILE_HEADINGS, rows) : h('p', {}, 'The storage holds no image files.'),
        );
      cursor = page?.nextCursor ?? null;
      more.hidden = cursor === null;
    } catch (error) {
      files.replaceChildren(errorBox(error));
    }
  }

  const [markMissing, markMissingField] = checkbox('markMissing', 'Mark images whose file is missing as Error', '(stops their billing)');
  const [deleteOrphans, deleteOrphansField] = checkbox('deleteOrphans', 'Delete orphan files', '(files no image refers to)');
  const [deleteLeftovers, deleteLeftoversField] = checkbox('deleteLeftovers', 'Delete leftovers of failed tasks', '');
  const dryRun = h('button', { type: 'submit', class: 'primary' }, 'Dry run');
  const apply = h('button', { type: 'button', class: 'danger', disabled: true }, 'Apply these changes');
  let reviewed: string | null = null;
  const options = (dry: boolean): ReconcileOptions => ({
    dryRun: dry,
    markMissing: markMissing.checked,
    deleteOrphans: deleteOrphans.checked,
    deleteLeftovers: deleteLeftovers.checked,
  });
  const key = () => JSON.stringify([select.value, options(true)]);
  const form = h(
    'form',
    { id: 'reconcile', 'aria-labelledby': 'reconcile-title' },
    h('h2', { id: 'reconcile-title' }, 'Reconcile'),
    h(
      'p',
      {},
      'Compare what the database thinks exists with what is on the storage. A dry run shows what would change; apply it afterwards.',
    ),
    markMissingField,
    deleteOrphansField,
    deleteLeftoversField,
    h('div', { class: 'row-actions' }, dryRun, apply),
  );
  // Changing an option (or the storage) needs a new dry run before applying.
  form.addEventListener('change', () => {
    apply.disabled = reviewed !== key();
  });
  select.addEventListener('change', () => {
    apply.disabled = true;
    findings.replaceChildren();
    void browse(null);
  });

  function showFindings(list: Finding[], dry: boolean): void {
    const rows = list.map((f) =>
      row(
        FINDING_HEADINGS,
        [h('code', {}, f.key), KIND_LABELS[f.kind] ?? f.kind, ACTION_LABELS[f.action ?? 'none'] ?? f.action, f.imageId ?? '—'],
        { 'data-kind': f.kind },
      ),
    );
    const title = dry ? 'Dry run: what reconcile would do' : 'Reconcile applied';
    findings.replaceChildren(
      h('h3', {}, title),
      rows.length ? table('Findings', FINDING_HEADINGS, rows) : h('p', {}, 'Nothing to reconcile: the storage and the database agree.'),
    );
    findings.focus();
  }

  async function reconcile(dry: boolean): Promise<void> {
    status.replaceChildren();
    try {
      const { data: result } = await api.POST('/admin/storages/{storageId}/reconcile', {
        params: { path: { storageId: select.value } },
        body: options(dry),
      });
      const list = (result?.findings ?? []).filter((f) => f.kind !== 'ok');
      showFindings(list, dry);
      reviewed = dry ? key() : null;
      apply.disabled = !dry || !list.some((f) => f.action && f.action !== 'none');
      announce(dry ? `Dry run found ${list.length} differences` : 'Reconcile applied');
      if (!dry) await browse(null);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void reconcile(true);
  });
  apply.addEventListener('click', () => {
    void (async () => {
      const ok = await confirmDialog({
        title: 'Apply reconcile?',
        message: 'The changes the dry run listed are made now: files are deleted and images marked Error. This cannot be undone.',
        confirmLabel: 'Apply',
        danger: true,
      });
      if (ok) await reconcile(false);
    })();
  });
  more.addEventListener('click', () => void browse(cursor));

  main.replaceChildren(h('h1', { tabindex: '-1' }, 'Image Browser'), field('Storage', select), files, more, form, status, findings);
  if (storages.length) await browse(null);
  else files.replaceChildren(h('p', {}, 'Add an image storage first.'));
}
