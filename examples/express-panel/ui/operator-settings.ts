/**
 * Locations and caps: per location, whether custom images are enabled, URL imports, the price per
 * GB-month and currency, and the default image cap; per account, an image cap that overrides the
 * location's default.
 * @module
 */
import type { components } from '../../../src/client';
import { announce, errorBox, field, h } from './dom';
import type { AppContext } from './session';

type LocationSettings = components['schemas']['LocationSettings'];

function locationForm(ctx: AppContext, settings: LocationSettings): HTMLFormElement {
  const id = settings.locationId.replace(/\W+/g, '-');
  const enabled = h('input', { type: 'checkbox', name: 'imagesEnabled', checked: settings.imagesEnabled });
  const imports = h('input', { type: 'checkbox', name: 'urlImportEnabled', checked: settings.urlImportEnabled });
  const price = h('input', {
    name: 'pricePerGbMonth',
    id: `${id}-price`,
    required: true,
    inputmode: 'decimal',
    pattern: '\\d+(\\.\\d+)?',
    value: settings.pricePerGbMonth,
  });
  const currency = h('input', {
    name: 'currency',
    id: `${id}-currency`,
    required: true,
    pattern: '[A-Z]{3}',
    maxlength: 3,
    value: settings.currency,
  });
  const cap = h('input', {
    name: 'defaultImageLimit',
    id: `${id}-cap`,
    type: 'number',
    min: 0,
    max: 100000,
    value: settings.defaultImageLimit ?? '',
  });
  const status = h('div', { role: 'status', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'card location', 'data-location': settings.locationId, 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, `Location ${settings.locationId}`),
    h(
      'div',
      { class: 'check' },
      h('label', {}, enabled, ' Custom images enabled'),
      h('small', {}, ' (off: customers see “Image feature is not enabled”)'),
    ),
    h('div', { class: 'check' }, h('label', {}, imports, ' Imports from a URL enabled')),
    field('Price per GB-month', price, 'Billed per hour: size in GB × rate ÷ hours in the month.'),
    field('Currency', currency),
    field('Default image cap per account', cap, 'Empty: no cap.'),
    h('button', { type: 'submit', class: 'primary' }, 'Save'),
    status,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      try {
        await ctx.client.api.PUT('/admin/locations/{locationId}/settings', {
          params: { path: { locationId: settings.locationId } },
          body: {
            imagesEnabled: enabled.checked,
            urlImportEnabled: imports.checked,
            pricePerGbMonth: price.value,
            currency: currency.value,
            defaultImageLimit: cap.value === '' ? null : Number(cap.value),
          },
        });
        status.replaceChildren(h('p', { class: 'ok' }, 'Saved.'));
        announce(`Saved location ${settings.locationId}`);
      } catch (error) {
        status.replaceChildren(errorBox(error));
      }
    })();
  });
  return form;
}

function accountCapForm(ctx: AppContext): HTMLFormElement {
  const { api } = ctx.client;
  const account = h('input', { id: 'cap-account', name: 'accountId', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9._-]*' });
  const limit = h('input', { id: 'cap-limit', name: 'imageLimit', type: 'number', min: 0, max: 100000 });
  const current = h('p', { id: 'cap-current', role: 'status', 'aria-live': 'polite' });
  const show = h('button', { type: 'button' }, 'Show cap');
  const remove = h('button', { type: 'button', class: 'danger' }, 'Remove cap');
  const form = h(
    'form',
    { id: 'account-cap', class: 'card', 'aria-labelledby': 'cap-title' },
    h('h2', { id: 'cap-title' }, 'Account image cap'),
    field('Account', account),
    field('Maximum images', limit, 'Overrides the location’s default for this account.'),
    h('div', { class: 'row-actions' }, show, h('button', { type: 'submit', class: 'primary' }, 'Set cap'), remove),
    current,
  );
  const run = (work: () => Promise<string>) =>
    void work().then(
      (text) => {
        current.replaceChildren(text);
      },
      (error: unknown) => current.replaceChildren(errorBox(error)),
    );
  const path = () => ({ params: { path: { accountId: account.value } } });
  const describe = (cap: number | undefined) =>
    cap === undefined ? `${account.value} has no cap of its own.` : `${account.value} may keep ${cap} images.`;
  show.addEventListener('click', () =>
    run(async () => describe((await api.GET('/admin/accounts/{accountId}/limit', path())).data?.limit?.imageLimit)),
  );
  remove.addEventListener('click', () =>
    run(async () => {
      await api.DELETE('/admin/accounts/{accountId}/limit', path());
      return describe(undefined);
    }),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(async () =>
      describe(
        (await api.PUT('/admin/accounts/{accountId}/limit', { ...path(), body: { imageLimit: Number(limit.value) } })).data?.limit
          ?.imageLimit,
      ),
    );
  });
  return form;
}

/** Renders the Locations page into `main`. */
export async function settingsPage(ctx: AppContext, main: HTMLElement): Promise<void> {
  const { data } = await ctx.client.api.GET('/admin/locations', {});
  const locations = data?.items ?? [];
  main.replaceChildren(
    h('h1', { tabindex: '-1' }, 'Locations and caps'),
    locations.length === 0
      ? h('p', {}, 'No location has settings yet.')
      : h('div', { class: 'cards' }, ...locations.map((settings) => locationForm(ctx, settings))),
    accountCapForm(ctx),
  );
}
