/**
 * The operator's catalog: OS images (name, OS type, cloud-init, source file on a templates
 * storage, media group), media groups (a label shown on the OS picker, visible or hidden), and
 * ISOs (registered from a file on a templates storage, customer-visible or not). Each page lists,
 * adds, and deletes after a confirmation.
 * @module
 */
import type { components } from '../../../src/client';
import type { Page } from './app';
import { confirmDialog } from './dialog';
import { announce, errorBox, field, formatBytes, h, IMAGE_STATUS_LABELS, row, table } from './dom';
import type { AppContext } from './session';

type MediaGroup = components['schemas']['MediaGroup'];
type StorageView = components['schemas']['StorageView'];

/** A page skeleton: a list, a status region and an add form; `refresh` redraws the list. */
function scaffold(main: HTMLElement, title: string, form: HTMLFormElement): { list: HTMLElement; status: HTMLElement } {
  const list = h('div', { class: 'list' });
  const status = h('div', { role: 'status', 'aria-live': 'polite' });
  main.replaceChildren(h('h1', { tabindex: '-1' }, title), status, list, form);
  return { list, status };
}

/** Runs a change, reports it, and refreshes. */
async function act(status: HTMLElement, label: string, run: () => Promise<unknown>, refresh: () => Promise<void>): Promise<boolean> {
  status.replaceChildren();
  try {
    await run();
    announce(label);
    await refresh();
    return true;
  } catch (error) {
    status.replaceChildren(errorBox(error));
    return false;
  }
}

/** A Delete button that asks first. */
function deleteButton(name: string, what: string, onConfirmed: () => void): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${name}` }, 'Delete');
  button.addEventListener('click', () => {
    void confirmDialog({ title: `Delete ${name}?`, message: what, confirmLabel: 'Delete', danger: true }).then((ok) => ok && onConfirmed());
  });
  return button;
}

async function templateStorages(ctx: AppContext): Promise<StorageView[]> {
  const { data } = await ctx.client.api.GET('/admin/storages', {});
  return (data?.items ?? []).filter((s) => s.purpose === 'templates');
}

async function mediaGroups(ctx: AppContext): Promise<MediaGroup[]> {
  const { data } = await ctx.client.api.GET('/admin/media-groups', {});
  return data?.items ?? [];
}

const storageSelect = (storages: StorageView[]) =>
  h('select', { name: 'storageId', required: true }, ...storages.map((s) => h('option', { value: s.id }, s.name)));

/** The OS Images page. */
export async function osImagesPage(ctx: AppContext, main: HTMLElement): Promise<void> {
  const { api } = ctx.client;
  const [storages, groups] = await Promise.all([templateStorages(ctx), mediaGroups(ctx)]);
  const headings = ['Name', 'OS', 'Cloud-init', 'Media group', 'Size', 'Status', 'Actions'];
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const description = h('input', { name: 'description', maxlength: 500 });
  const osType = h(
    'select',
    { name: 'osType' },
    ...['linux', 'windows', 'bsd'].map((t) => h('option', { value: t }, t === 'bsd' ? 'BSD' : t[0]!.toUpperCase() + t.slice(1))),
  );
  const cloudInit = h('input', { type: 'checkbox', name: 'cloudInit', checked: true });
  const storage = storageSelect(storages);
  const fileKey = h('input', { name: 'fileKey', required: true, placeholder: 'debian-12.qcow2' });
  const format = h('select', { name: 'format' }, h('option', { value: 'qcow2' }, 'qcow2'), h('option', { value: 'raw' }, 'raw'));
  const group = h(
    'select',
    { name: 'mediaGroupId' },
    h('option', { value: '' }, 'None'),
    ...groups.map((g) => h('option', { value: g.id }, g.name)),
  );
  const form = h(
    'form',
    { id: 'add-os-image', 'aria-labelledby': 'add-os-image-title' },
    h('h2', { id: 'add-os-image-title' }, 'Add Image'),
    field('Name', name),
    field('Description', description, 'Shown to customers on the create-instance form.'),
    field('OS type', osType),
    h(
      'div',
      { class: 'check' },
      h('label', {}, cloudInit, ' Supports cloud-init'),
      h('small', {}, ' (enables user scripts and SSH key injection)'),
    ),
    field('Templates storage', storage),
    field('Source file', fileKey, 'The file’s path on the storage.'),
    field('Format', format),
    field('Media group', group),
    h('button', { type: 'submit', class: 'primary' }, 'Add image'),
  );
  const { list, status } = scaffold(main, 'OS Images', form);
  const groupName = (id: string | null) => groups.find((g) => g.id === id)?.name ?? '—';
  async function refresh(): Promise<void> {
    const { data } = await api.GET('/admin/os-images', {});
    const images = (data?.items ?? []) as components['schemas']['Image'][];
    const rows = images.map((image) =>
      row(headings, [
        h('span', { class: 'name' }, image.name),
        image.osType ?? '—',
        image.cloudInit ? 'Yes' : 'No',
        groupName(image.mediaGroupId),
        formatBytes(image.sizeBytes),
        IMAGE_STATUS_LABELS[image.status] ?? image.status,
        deleteButton(image.name, 'New instances can no longer use it; instances created from it keep working.', () => {
          void act(
            status,
            `Deleted ${image.name}`,
            () => api.DELETE('/admin/os-images/{imageId}', { params: { path: { imageId: image.id } } }),
            refresh,
          );
        }),
      ]),
    );
    list.replaceChildren(images.length ? table('OS Images', headings, rows) : h('p', {}, 'No OS image yet.'));
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = {
      name: name.value,
      description: description.value,
      osType: osType.value as 'linux' | 'windows' | 'bsd',
      cloudInit: cloudInit.checked,
      storageId: storage.value,
      fileKey: fileKey.value,
      format: format.value as 'qcow2' | 'raw',
      mediaGroupId: group.value || null,
    };
    void act(status, `Added ${name.value}`, () => api.POST('/admin/os-images', { body }), refresh).then((ok) => ok && form.reset());
  });
  if (storages.length === 0)
    form.prepend(h('p', { class: 'error' }, 'Add a storage that holds OS templates and ISOs first (Image Storages).'));
  await refresh();
}

/** The Media Groups page. */
export async function mediaGroupsPage(ctx: AppContext, main: HTMLElement): Promise<void> {
  const { api } = ctx.client;
  const headings = ['Name', 'Order', 'Customers see it', 'Actions'];
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const order = h('input', { name: 'order', type: 'number', min: 0, max: 10000, value: 0, required: true });
  const visible = h('input', { type: 'checkbox', name: 'customerVisible', checked: true });
  const form = h(
    'form',
    { id: 'add-media-group', 'aria-labelledby': 'add-group-title' },
    h('h2', { id: 'add-group-title' }, 'Add Media Group'),
    field('Name', name, 'For example Linux, Windows or BSD.'),
    field('Order', order),
    h('div', { class: 'check' }, h('label', {}, visible, ' Visible to customers')),
    h('button', { type: 'submit', class: 'primary' }, 'Add group'),
  );
  const { list, status } = scaffold(main, 'Media Groups', form);
  async function refresh(): Promise<void> {
    const groups = await mediaGroups(ctx);
    const rows = groups.map((group) => {
      const toggle = h('input', { type: 'checkbox', checked: group.customerVisible, 'aria-label': `${group.name} visible to customers` });
      toggle.addEventListener('change', () => {
        void act(
          status,
          `${group.name} is now ${toggle.checked ? 'visible' : 'hidden'}`,
          () =>
            api.PATCH('/admin/media-groups/{groupId}', {
              params: { path: { groupId: group.id } },
              body: { customerVisible: toggle.checked },
            }),
          refresh,
        );
      });
      return row(headings, [
        h('span', { class: 'name' }, group.name),
        String(group.order),
        toggle,
        deleteButton(group.name, 'Its images stay, without a group.', () => {
          void act(
            status,
            `Deleted ${group.name}`,
            () => api.DELETE('/admin/media-groups/{groupId}', { params: { path: { groupId: group.id } } }),
            refresh,
          );
        }),
      ]);
    });
    list.replaceChildren(groups.length ? table('Media Groups', headings, rows) : h('p', {}, 'No media group yet.'));
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { name: name.value, order: Number(order.value), customerVisible: visible.checked };
    void act(status, `Added ${name.value}`, () => api.POST('/admin/media-groups', { body }), refresh).then((ok) => ok && form.reset());
  });
  await refresh();
}

/** The ISOs page. */
export async function isosPage(ctx: AppContext, main: HTMLElement): Promise<void> {
  const { api } = ctx.client;
  const storages = await templateStorages(ctx);
  const headings = ['Name', 'Size', 'Status', 'Customers see it', 'Actions'];
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const storage = storageSelect(storages);
  const fileKey = h('input', { name: 'fileKey', required: true, placeholder: 'windows-server-2022.iso' });
  const visible = h('input', { type: 'checkbox', name: 'customerVisible', checked: true });
  const form = h(
    'form',
    { id: 'add-iso', 'aria-labelledby': 'add-iso-title' },
    h('h2', { id: 'add-iso-title' }, 'Add ISO'),
    field('Name', name),
    field('Templates storage', storage),
    field('ISO file', fileKey, 'The .iso file’s path on the storage.'),
    h('div', { class: 'check' }, h('label', {}, visible, ' Customers can mount it')),
    h('button', { type: 'submit', class: 'primary' }, 'Add ISO'),
  );
  const { list, status } = scaffold(main, 'ISOs', form);
  async function refresh(): Promise<void> {
    const { data } = await api.GET('/admin/isos', {});
    const isos = data?.items ?? [];
    const rows = isos.map((iso) =>
      row(headings, [
        h('span', { class: 'name' }, iso.name),
        formatBytes(iso.sizeBytes),
        iso.status === 'available' ? 'Available' : iso.status === 'uploading' ? 'Uploading' : `Error: ${iso.statusReason?.message ?? ''}`,
        iso.customerVisible ? 'Yes' : 'No',
        deleteButton(iso.name, 'Instances that have it mounted keep it until they unmount it.', () => {
          void act(
            status,
            `Deleted ${iso.name}`,
            () => api.DELETE('/admin/isos/{isoId}', { params: { path: { isoId: iso.id } } }),
            refresh,
          );
        }),
      ]),
    );
    list.replaceChildren(isos.length ? table('ISOs', headings, rows) : h('p', {}, 'No ISO yet.'));
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { name: name.value, storageId: storage.value, fileKey: fileKey.value, customerVisible: visible.checked };
    void act(status, `Added ${name.value}`, () => api.POST('/admin/isos', { body }), refresh).then((ok) => ok && form.reset());
  });
  await refresh();
}

/** The catalog's routes. */
export const catalogPages: { path: string; label: string; page: Page }[] = [
  { path: '/admin/os-images', label: 'OS Images', page: osImagesPage },
  { path: '/admin/media-groups', label: 'Media Groups', page: mediaGroupsPage },
  { path: '/admin/isos', label: 'ISOs', page: isosPage },
];
