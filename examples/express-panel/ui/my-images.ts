/**
 * The customer's My Images page: the list (name, source instance, disk size, status with its
 * reason, creation time), Create Image from an instance with a live progress bar, and Retry,
 * Cancel and Delete (after a confirmation) per image; where the operator allows it, import from a
 * URL and resumable uploads (`add-image.ts`); protection, download links, shares, transfers and
 * copies to other locations, and the offers other accounts made (`image-moves.ts`).
 * @module
 */
import { renderMessage, statusReasonKey, type ApiImage, type ApiTask } from '../../../src/client';
import { addImageSection, loadFeatures } from './add-image';
import { confirmDialog } from './dialog';
import { moveActions, offersSection, type MoveHooks } from './image-moves';
import { announce, errorBox, field, formatBytes, h, IMAGE_STATUS_LABELS, row, table, time } from './dom';
import type { AppContext } from './session';
import { taskProgress, type TaskProgressElement } from './task-progress';

/** An instance of the host panel (its own `/demo/instances`). */
export interface HostInstanceView {
  id: string;
  name: string;
}

const MAX_FOLLOWED = 3;
const HEADINGS = ['Name', 'Source instance', 'Disk size', 'Status', 'Created', 'Actions'];

/** The customer text of an image's status reason (from the message catalog when it wrote it). */
export function reasonText(reason: ApiImage['statusReason']): string {
  if (!reason) return '';
  const located = statusReasonKey(reason);
  return located ? renderMessage(located) : reason.message;
}

/** The host's instances the session may capture. */
export async function loadInstances(ctx: AppContext): Promise<HostInstanceView[]> {
  const response = await ctx.host('/demo/instances');
  if (!response.ok) throw new Error(`The panel could not list your instances (${response.status})`);
  return (await response.json()) as HostInstanceView[];
}

/** Renders My Images into `main`. */
export async function myImagesPage(ctx: AppContext, main: HTMLElement, signal: AbortSignal): Promise<void> {
  const { api } = ctx.client;
  const following = new Map<string, TaskProgressElement>();
  let poll: ReturnType<typeof setTimeout> | undefined;
  signal.addEventListener('abort', () => clearTimeout(poll));
  const [instances, features] = await Promise.all([loadInstances(ctx), loadFeatures(ctx)]);
  const status = h('div', { id: 'images-status', role: 'status', 'aria-live': 'polite' });
  const list = h('div', { id: 'images-list' });
  const offers = h('div', { id: 'offers-holder' });

  const nameInput = h('input', { id: 'name', name: 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const select = h(
    'select',
    { id: 'instance', name: 'instanceId', required: true },
    ...instances.map((i) => h('option', { value: i.id }, i.name)),
  );
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create');
  const form = h(
    'form',
    { id: 'create', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'Create Image'),
    field('Instance', select),
    field('Image name', nameInput, 'For example production-web-server-v2. Only the primary disk is captured.'),
    submit,
  );
  if (instances.length === 0) {
    submit.disabled = true;
    form.append(h('p', {}, 'You have no instances to capture yet.'));
  }

  /** Follows an image's task; the row's bar shows it and the list refreshes when it ends. */
  function follow(image: ApiImage, task: ApiTask): void {
    if (following.has(image.id) || following.size >= MAX_FOLLOWED) return;
    const bar = taskProgress(`Progress of ${image.name}`);
    following.set(image.id, bar);
    bar.update(task);
    ctx.client
      .followTask(task.id, { signal, onUpdate: (t) => bar.update(t) })
      .then((done) => {
        const verb = task.type === 'delete' ? 'Deleting' : 'Creating';
        announce(done.status === 'completed' ? `${verb} ${image.name} finished` : `${verb} ${image.name} stopped: ${done.status}`);
      })
      .catch(() => undefined)
      .finally(() => {
        following.delete(image.id);
        if (!signal.aborted) void refresh();
      });
  }

  /** The running task of an image in a transient status (capture/import/copy, or delete). */
  async function activeTask(image: ApiImage): Promise<ApiTask | null> {
    const { data } = await api.GET('/tasks', { params: { query: { subjectId: image.id, limit: 5 } } });
    return data?.items.find((t) => t.status === 'queued' || t.status === 'running') ?? null;
  }

  async function act(label: string, run: () => Promise<unknown>, focusAfter?: string): Promise<void> {
    status.replaceChildren();
    try {
      await run();
      if (label) announce(label);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
    await refresh(focusAfter);
  }
  const hooks: MoveHooks = { act, refresh: (focusAfter) => refresh(focusAfter), follow, copyLocations: features.copyLocations };

  function actions(image: ApiImage): HTMLElement {
    const buttons: HTMLElement[] = [];
    const named = (verb: string) => ({ type: 'button', 'aria-label': `${verb} ${image.name}` });
    if (image.status === 'creating')
      buttons.push(
        h(
          'button',
          {
            ...named('Cancel'),
            onclick: () =>
              void act(`Cancelled ${image.name}`, () => api.POST('/images/{imageId}/cancel', { params: { path: { imageId: image.id } } })),
          },
          'Cancel',
        ),
      );
    if (
      image.status === 'error' &&
      image.statusReason?.code !== 'DELETE_FAILED' &&
      image.kind === 'custom' &&
      image.sourceInstanceDeletedAt == null
    )
      buttons.push(
        h(
          'button',
          {
            ...named('Retry'),
            onclick: () =>
              void act(`Retrying ${image.name}`, async () => {
                const { data } = await api.POST('/images/{imageId}/retry', { params: { path: { imageId: image.id } } });
                if (data?.task) follow(data.image, data.task);
              }),
          },
          'Retry',
        ),
      );
    buttons.push(...moveActions(ctx, image, hooks));
    if (image.status === 'available' || image.status === 'error')
      buttons.push(
        h(
          'button',
          {
            ...named('Delete'),
            class: 'danger',
            onclick: () => void confirmDelete(image),
          },
          'Delete',
        ),
      );
    return h('div', { class: 'row-actions' }, ...buttons);
  }

  async function confirmDelete(image: ApiImage): Promise<void> {
    const ok = await confirmDialog({
      title: `Delete ${image.name}?`,
      message: 'Deleting an image removes its file and stops its billing. Instances already created from it keep working.',
      confirmLabel: 'Delete image',
      danger: true,
    });
    if (!ok) return;
    await act(
      `Deleting ${image.name}`,
      async () => {
        const { data } = await api.DELETE('/images/{imageId}', { params: { path: { imageId: image.id } } });
        if (data?.task) follow(data.image, data.task);
      },
      `Delete ${image.name}`,
    );
  }

  function statusCell(image: ApiImage): HTMLElement {
    const cell = h(
      'div',
      {},
      h('span', { class: `badge status status-${image.status}` }, IMAGE_STATUS_LABELS[image.status] ?? image.status),
    );
    if (image.protected) cell.append(' ', h('span', { class: 'badge protected' }, 'Protected'));
    const bar = following.get(image.id);
    if (bar && (image.status === 'creating' || image.status === 'deleting')) cell.append(bar);
    const reason = reasonText(image.statusReason);
    if (reason && image.status === 'error') cell.append(h('p', { class: 'reason' }, reason));
    return cell;
  }

  /** The aria-label of the focused button inside `within`, so a redraw can give the focus back to its twin. */
  function focusedLabel(within: HTMLElement): string | undefined {
    const active = document.activeElement;
    return active instanceof HTMLElement && within.contains(active) ? (active.getAttribute('aria-label') ?? undefined) : undefined;
  }

  /** Puts the focus on the button named `label` inside `within` (or on `fallback` when it is gone). */
  function refocus(within: HTMLElement, label: string | undefined, fallback?: HTMLElement): void {
    if (label === undefined) return;
    (within.querySelector<HTMLElement>(`button[aria-label="${CSS.escape(label)}"]`) ?? fallback)?.focus();
  }

  async function refresh(focusAfter?: string): Promise<void> {
    let images: ApiImage[];
    try {
      const { data } = await api.GET('/images', { params: { query: { limit: 100 } } });
      images = data?.items ?? [];
    } catch (error) {
      list.replaceChildren(errorBox(error));
      return;
    }
    let unfollowed = false;
    for (const image of images) {
      if ((image.status === 'creating' || image.status === 'deleting') && !following.has(image.id)) {
        // Each followed task holds a connection (6 per host over HTTP/1.1): a few live, the rest polled.
        const task = following.size < MAX_FOLLOWED ? await activeTask(image) : null;
        if (task) follow(image, task);
        else unfollowed = true;
      }
    }
    clearTimeout(poll);
    if (unfollowed && !signal.aborted) poll = setTimeout(() => void refresh(), 2000);
    const rows = images.map((image) =>
      row(
        HEADINGS,
        [
          h('span', { class: 'name' }, image.name),
          h('span', { class: 'source' }, image.sourceInstanceName ?? image.sourceInstanceId ?? '—'),
          h('span', { class: 'size' }, formatBytes(image.sizeBytes)),
          statusCell(image),
          time(image.createdAt),
          actions(image),
        ],
        { 'data-id': image.id },
      ),
    );
    // A redraw replaces the rows: the focus goes to the same control of the new row (or the list), both
    // after an action (`focusAfter`) and after a background refresh that found the focus in the list.
    const listFocus = focusAfter ?? focusedLabel(list);
    list.replaceChildren(
      images.length === 0 ? h('p', {}, 'You have no images yet. Create one from an instance above.') : table('My Images', HEADINGS, rows),
    );
    refocus(main, listFocus, focusAfter === undefined ? undefined : list);
    let section: HTMLElement;
    try {
      section = await offersSection(ctx, new Map(images.map((i) => [i.id, i.name])), hooks);
    } catch (error) {
      section = errorBox(error);
    }
    const offersFocus = focusedLabel(offers);
    offers.replaceChildren(section);
    // An action in the offers section names its button in `focusAfter`; it is drawn only now.
    refocus(main, offersFocus ?? (focusedLabel(main) === undefined ? focusAfter : undefined));
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void create();
  });
  async function create(): Promise<void> {
    submit.disabled = true;
    status.replaceChildren();
    try {
      const { data } = await api.POST('/images', { body: { instanceId: select.value, name: nameInput.value } });
      if (data?.task) follow(data.image, data.task);
      announce(`Creating ${data?.image.name ?? 'the image'}`);
      nameInput.value = '';
    } catch (error) {
      status.replaceChildren(errorBox(error));
      nameInput.setAttribute('aria-invalid', 'true');
      nameInput.focus();
    } finally {
      submit.disabled = instances.length === 0;
    }
    await refresh();
  }
  nameInput.addEventListener('input', () => nameInput.removeAttribute('aria-invalid'));

  list.tabIndex = -1;
  main.replaceChildren(
    h('h1', { tabindex: '-1' }, 'My Images'),
    form,
    addImageSection(ctx, features, () => refresh(), signal),
    status,
    list,
    offers,
  );
  await refresh();
}
