/**
 * The operator's pages of the example panel, and the Image Storages page: each storage with its
 * health (reachable, free space) and its hypervisor bindings (bind, unbind after a confirmation),
 * and a form to add a local storage.
 * @module
 */
import type { components } from '../../../src/client';
import type { Page } from './app';
import { confirmDialog } from './dialog';
import { announce, errorBox, field, formatBytes, h, row, table } from './dom';
import { browserPage } from './operator-browser';
import { catalogPages } from './operator-catalog';
import { settingsPage } from './operator-settings';
import { usagePage } from './operator-usage';
import type { AppContext } from './session';

type StorageView = components['schemas']['StorageView'];

/** A hypervisor of the host panel (its own `/demo/hypervisors`). */
export interface HypervisorView {
  id: string;
  name: string;
}

/** The host's hypervisors (for binding storages). */
export async function loadHypervisors(ctx: AppContext): Promise<HypervisorView[]> {
  const response = await ctx.host('/demo/hypervisors');
  return response.ok ? ((await response.json()) as HypervisorView[]) : [];
}

const HEADINGS = ['Name', 'Driver', 'Purpose', 'Health', 'Bindings', 'Actions'];

/** The Image Storages page. */
export async function storagesPage(ctx: AppContext, main: HTMLElement): Promise<void> {
  const { api } = ctx.client;
  const hypervisors = await loadHypervisors(ctx);
  const list = h('div', { id: 'storages-list' });
  const status = h('div', { id: 'storages-status', role: 'status', 'aria-live': 'polite' });

  function healthCell(storage: StorageView): HTMLElement {
    const cell = h('div', { class: 'health' }, 'Checking…');
    api
      .GET('/admin/storages/{storageId}/health', { params: { path: { storageId: storage.id } } })
      .then(({ data }) => {
        if (!data) return;
        cell.replaceChildren(
          h('span', { class: `badge ${data.ok ? 'status-available' : 'status-error'}` }, data.ok ? 'Healthy' : 'Unhealthy'),
          h('p', { class: 'reason' }, data.freeBytes === null ? data.message : `${formatBytes(data.freeBytes)} free`),
        );
      })
      .catch((error: unknown) => cell.replaceChildren(errorBox(error)));
    return cell;
  }

  function bindingsCell(storage: StorageView): HTMLElement {
    const items = storage.hypervisorIds.map((id) => {
      const name = hypervisors.find((hv) => hv.id === id)?.name ?? id;
      const unbind = h('button', { type: 'button', 'aria-label': `Unbind ${name} from ${storage.name}` }, 'Unbind');
      unbind.addEventListener('click', () => void unbindStorage(storage, id, name));
      return h('li', {}, h('span', { class: 'binding' }, name), ' ', unbind);
    });
    const free = hypervisors.filter((hv) => !storage.hypervisorIds.includes(hv.id));
    const select = h(
      'select',
      { 'aria-label': `Hypervisor to bind to ${storage.name}` },
      ...free.map((hv) => h('option', { value: hv.id }, hv.name)),
    );
    const bind = h('button', { type: 'button', 'aria-label': `Bind a hypervisor to ${storage.name}` }, 'Bind');
    bind.addEventListener(
      'click',
      () =>
        void act(`Bound ${storage.name}`, () =>
          api.POST('/admin/storages/{storageId}/bindings', {
            params: { path: { storageId: storage.id } },
            body: { hypervisorId: select.value },
          }),
        ),
    );
    return h(
      'div',
      {},
      items.length ? h('ul', { class: 'bindings' }, ...items) : h('p', {}, 'Not bound'),
      free.length ? h('div', { class: 'row-actions' }, select, bind) : null,
    );
  }

  async function unbindStorage(storage: StorageView, hypervisorId: string, name: string): Promise<void> {
    const ok = await confirmDialog({
      title: `Unbind ${name}?`,
      message: `New images of instances on ${name} will no longer be written to ${storage.name}. Images already there stay.`,
      confirmLabel: 'Unbind',
      danger: true,
    });
    if (ok)
      await act(`Unbound ${name}`, () =>
        api.DELETE('/admin/storages/{storageId}/bindings/{hypervisorId}', { params: { path: { storageId: storage.id, hypervisorId } } }),
      );
  }

  async function act(label: string, run: () => Promise<unknown>): Promise<void> {
    status.replaceChildren();
    try {
      await run();
      announce(label);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
    await refresh();
  }

  async function refresh(): Promise<void> {
    const { data } = await api.GET('/admin/storages', {});
    const storages = data?.items ?? [];
    const rows = storages.map((storage) =>
      row(
        HEADINGS,
        [
          h('span', { class: 'name' }, storage.name),
          `${storage.driver}${storage.layout === 'chunks' ? ' (chunks)' : ''}`,
          storage.purpose === 'templates' ? 'OS templates and ISOs' : 'Customer images',
          healthCell(storage),
          bindingsCell(storage),
          h(
            'a',
            { href: `#/admin/browse?storage=${encodeURIComponent(storage.id)}` },
            'Browse',
            h('span', { class: 'visually-hidden' }, ` ${storage.name}`),
          ),
        ],
        { 'data-id': storage.id },
      ),
    );
    list.replaceChildren(storages.length ? table('Image Storages', HEADINGS, rows) : h('p', {}, 'No image storage yet.'));
  }

  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const path = h('input', { name: 'path', required: true, placeholder: '/var/lib/images' });
  const purpose = h(
    'select',
    { name: 'purpose' },
    h('option', { value: 'custom-images' }, 'Customer images'),
    h('option', { value: 'templates' }, 'OS templates and ISOs'),
  );
  const form = h(
    'form',
    { id: 'add-storage', 'aria-labelledby': 'add-storage-title' },
    h('h2', { id: 'add-storage-title' }, 'Add Image Storage (local disk)'),
    field('Name', name),
    field('Directory on the hypervisor', path),
    field('Holds', purpose),
    h('button', { type: 'submit', class: 'primary' }, 'Add storage'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(`Added ${name.value}`, async () => {
      await api.POST('/admin/storages', {
        body: {
          name: name.value,
          driver: 'local',
          config: { path: path.value },
          purpose: purpose.value as StorageView['purpose'],
          enabled: true,
          layout: 'files',
        },
      });
      form.reset();
    });
  });
  main.replaceChildren(h('h1', { tabindex: '-1' }, 'Image Storages'), status, list, form);
  await refresh();
}

/** The operator's routes. */
export const operatorPages: { path: string; label: string; page: Page }[] = [
  { path: '/admin/storages', label: 'Image Storages', page: storagesPage },
  { path: '/admin/browse', label: 'Image Browser', page: browserPage },
  { path: '/admin/locations', label: 'Locations', page: settingsPage },
  { path: '/admin/usage', label: 'Usage', page: usagePage },
  ...catalogPages,
];
