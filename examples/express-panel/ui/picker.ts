/**
 * The create-instance form's OS picker: tabs for the stock OS images (by media group) and My
 * Images (the customer's available images). Deploying asks the host panel to create the instance
 * (`POST /demo/instances`), which starts the SDK's deploy; the page follows the deploy task.
 * The tabs follow the WAI-ARIA tabs pattern (arrow keys, Home/End).
 * @module
 */
import type { ApiImage, ApiTask, components } from '../../../src/client';
import { announce, errorBox, field, formatBytes, h } from './dom';
import type { AppContext } from './session';
import { taskProgress } from './task-progress';

type DeployableImages = components['schemas']['DeployableImages'];

/** A radio list of images to pick from (name, OS/source, size). */
function imageChoices(name: string, images: ApiImage[], empty: string): HTMLElement {
  if (images.length === 0) return h('p', {}, empty);
  return h(
    'fieldset',
    { class: 'choices' },
    h('legend', { class: 'visually-hidden' }, name),
    ...images.map((image) =>
      h(
        'label',
        { class: 'choice' },
        h('input', { type: 'radio', name: 'imageId', value: image.id, required: true }),
        h('span', { class: 'choice-name' }, image.name),
        h(
          'small',
          {},
          image.kind === 'custom'
            ? `from ${image.sourceInstanceName ?? 'an instance'} · ${formatBytes(image.sizeBytes)}`
            : (image.osType ?? ''),
        ),
      ),
    ),
  );
}

/** A tab list: `tabs` are [label, panel] pairs; the arrow keys move between tabs. */
export function tabs(label: string, items: [string, HTMLElement][]): HTMLElement {
  const list = h('div', { role: 'tablist', 'aria-label': label });
  const panels: HTMLElement[] = [];
  const buttons: HTMLButtonElement[] = [];
  const select = (index: number, focus: boolean) => {
    buttons.forEach((button, i) => {
      button.setAttribute('aria-selected', String(i === index));
      button.tabIndex = i === index ? 0 : -1;
      panels[i]!.hidden = i !== index;
    });
    if (focus) buttons[index]!.focus();
  };
  items.forEach(([text, panel], i) => {
    const id = `tab-${label.replace(/\W+/g, '-').toLowerCase()}-${i}`;
    const button = h('button', { type: 'button', role: 'tab', id, 'aria-controls': `${id}-panel` }, text);
    button.addEventListener('click', () => select(i, false));
    button.addEventListener('keydown', (event) => {
      const last = items.length - 1;
      const next = { ArrowRight: i === last ? 0 : i + 1, ArrowLeft: i === 0 ? last : i - 1, Home: 0, End: last }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      select(next, true);
    });
    buttons.push(button);
    list.append(button);
    panels.push(h('div', { role: 'tabpanel', id: `${id}-panel`, 'aria-labelledby': id, tabindex: '0' }, panel));
  });
  select(0, false);
  return h('div', { class: 'tabs' }, list, ...panels);
}

/** Renders the create-instance form with the OS picker into `main`. */
export async function pickerPage(ctx: AppContext, main: HTMLElement, signal: AbortSignal): Promise<void> {
  const { data } = await ctx.client.api.GET('/os-picker', {});
  const picker = data as DeployableImages;
  const stock = h(
    'div',
    {},
    ...picker.groups.map(({ group, images }) =>
      h('section', {}, h('h3', {}, group.name), imageChoices(group.name, images, 'No images in this group.')),
    ),
    picker.ungrouped.length > 0 ? h('section', {}, h('h3', {}, 'Other'), imageChoices('Other', picker.ungrouped, '')) : null,
    picker.groups.length === 0 && picker.ungrouped.length === 0 ? h('p', {}, 'No OS images are offered yet.') : null,
  );
  const mine = imageChoices('My Images', picker.myImages, 'You have no available images yet. Create one on the My Images page.');
  const shared = imageChoices('Shared with me', picker.sharedWithMe, 'Nobody has shared an image with you.');
  const nameInput = h('input', { id: 'hostname', name: 'name', required: true, maxlength: 63, pattern: '[A-Za-z0-9][A-Za-z0-9-]*' });
  const status = h('div', { id: 'deploy-status', role: 'status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create instance');
  const form = h(
    'form',
    { id: 'create-instance', 'aria-labelledby': 'picker-title' },
    h('h2', { id: 'picker-title' }, 'Choose an image'),
    tabs('Image source', [
      ['OS Images', stock],
      ['My Images', mine],
      ['Shared with me', shared],
    ]),
    field('Hostname', nameInput, 'Letters, digits and dashes.'),
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void deploy();
  });
  async function deploy(): Promise<void> {
    const imageId = new FormData(form).get('imageId');
    if (typeof imageId !== 'string') {
      status.replaceChildren(h('p', { class: 'error', role: 'alert' }, 'Choose an image first.'));
      return;
    }
    submit.disabled = true;
    status.replaceChildren();
    try {
      const response = await ctx.host('/demo/instances', { method: 'POST', body: JSON.stringify({ name: nameInput.value, imageId }) });
      const body = (await response.json()) as { instance?: { id: string; name: string }; task?: ApiTask; detail?: string };
      if (!response.ok || !body.task) throw new Error(body.detail ?? `The panel answered ${response.status}`);
      const bar = taskProgress(`Deploying ${nameInput.value}`);
      status.replaceChildren(h('p', {}, `Creating instance ${body.instance?.name ?? ''}…`), bar);
      const done = await ctx.client.followTask(body.task.id, { signal, onUpdate: (t) => bar.update(t) });
      const text =
        done.status === 'completed'
          ? `Instance ${body.instance?.name ?? ''} is ready.`
          : `Deploying failed: ${done.errorMessage ?? done.status}`;
      status.append(h('p', { class: done.status === 'completed' ? 'ok' : 'error' }, text));
      announce(text);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    } finally {
      submit.disabled = false;
    }
  }
  main.replaceChildren(h('h1', { tabindex: '-1' }, 'Create instance'), form, status);
}
