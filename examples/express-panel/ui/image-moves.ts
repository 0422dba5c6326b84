/**
 * My Images' actions on an available image of one's own — protect against deletion, download
 * (an expiring link), share with another account, offer it (transfer of ownership), copy it to a
 * location (a new image whose progress the page follows like a capture's) — and the
 * section of what other accounts offer this one: shares to accept or decline, transfers to accept
 * or decline, the images shared with it, and its own pending transfer offers to withdraw.
 * @module
 */
import type { ApiImage, ApiTask, components } from '../../../src/client';
import { formDialog, infoDialog } from './dialog';
import { announce, errorBox, field, formatBytes, h, time } from './dom';
import type { AppContext } from './session';

type ImageShare = components['schemas']['ImageShare'];
type ImageTransfer = components['schemas']['ImageTransfer'];
type SharedImage = components['schemas']['SharedImage'];

/** What the actions need from the page. */
export interface MoveHooks {
  /** Runs an action: announces `label` on success, shows the error otherwise, then refreshes. */
  act(label: string, run: () => Promise<unknown>, focusAfter?: string): Promise<void>;
  /** Refreshes the page's lists (and puts the focus on the button named `focusAfter`). */
  refresh(focusAfter?: string): Promise<void>;
  /** Follows a new image's task with a progress bar in its row (as for a capture). */
  follow(image: ApiImage, task: ApiTask): void;
  /** The locations the customer may copy an image to (no Copy button when empty). */
  copyLocations: readonly string[];
}

const ACCOUNT_HINT = 'The account id of the other customer of this panel, e.g. acct-2.';

function accountInput(id: string): HTMLInputElement {
  return h('input', { id, name: 'accountId', required: true, maxlength: 64, autocomplete: 'off', spellcheck: 'false' });
}

/** The owner's extra buttons of an image: protect/unprotect (any status), and for available ones download, share, transfer. */
export function moveActions(ctx: AppContext, image: ApiImage, hooks: MoveHooks): HTMLElement[] {
  const { api } = ctx.client;
  const path = { params: { path: { imageId: image.id } } };
  const named = (verb: string) => ({ type: 'button', 'aria-label': `${verb} ${image.name}` });
  const buttons: HTMLElement[] = [];
  if (image.kind !== 'custom') return buttons;
  const protectedNow = image.protected === true;
  const toggle = protectedNow ? 'Unprotect' : 'Protect';
  buttons.push(
    h(
      'button',
      {
        ...named(toggle),
        onclick: () =>
          void hooks.act(
            `${image.name} is ${protectedNow ? 'no longer protected' : 'protected against deletion'}`,
            () => api.PUT('/images/{imageId}/protection', { ...path, body: { protected: !protectedNow } }),
            `${protectedNow ? 'Protect' : 'Unprotect'} ${image.name}`,
          ),
      },
      toggle,
    ),
  );
  if (image.status !== 'available') return buttons;
  buttons.push(
    h('button', { ...named('Download'), onclick: () => void download(ctx, image, hooks) }, 'Download'),
    h('button', { ...named('Share'), onclick: () => void share(ctx, image, hooks) }, 'Share'),
    h('button', { ...named('Transfer'), onclick: () => void transfer(ctx, image, hooks) }, 'Transfer'),
  );
  if (hooks.copyLocations.length > 0)
    buttons.push(
      h(
        'button',
        { type: 'button', 'aria-label': copyLabel(image), onclick: () => void copyToLocation(ctx, image, hooks) },
        'Copy to location',
      ),
    );
  return buttons;
}

/** Asks for an expiring link and shows it (the link downloads; the checksum lets the customer verify the file). */
async function download(ctx: AppContext, image: ApiImage, hooks: MoveHooks): Promise<void> {
  let link: components['schemas']['DownloadLink'];
  try {
    const { data } = await ctx.client.api.POST('/images/{imageId}/download-link', {
      params: { path: { imageId: image.id } },
      body: { expiresInSeconds: 3600 },
    });
    link = data!;
  } catch (error) {
    await hooks.act('', () => Promise.reject(error));
    return;
  }
  const href = new URL(link.url, location.origin).toString();
  const anchor = h('a', { href, download: link.filename, id: 'download-link' }, `Download ${link.filename}`);
  await infoDialog(
    `Download ${image.name}`,
    [
      h('p', {}, anchor, ` (${link.format}, ${formatBytes(link.sizeBytes)})`),
      h('p', {}, 'The link works until ', time(link.expiresAt), '. Anyone who has it can download the image: keep it private.'),
      h('p', {}, 'sha256: ', h('code', { id: 'download-sha256', class: 'checksum' }, link.sha256)),
    ],
    anchor,
  );
}

/** The Share dialog: share with an account, and the image's shares with Revoke. */
async function share(ctx: AppContext, image: ApiImage, hooks: MoveHooks): Promise<void> {
  const { api } = ctx.client;
  const list = h('div', { id: 'shares-of-image' });
  const input = accountInput('share-account');
  async function showShares(): Promise<void> {
    try {
      const { data } = await api.GET('/images/{imageId}/shares', { params: { path: { imageId: image.id }, query: { limit: 100 } } });
      const open = (data?.items ?? []).filter((s) => s.status === 'pending' || s.status === 'accepted');
      list.replaceChildren(
        h('h3', {}, 'Shared with'),
        open.length === 0
          ? h('p', {}, 'Nobody yet.')
          : h(
              'ul',
              { class: 'bindings' },
              ...open.map((s: ImageShare) =>
                h(
                  'li',
                  { 'data-share-id': s.id },
                  h('span', {}, `${s.accountId} · ${s.status === 'pending' ? 'Waiting for an answer' : 'Accepted'}`),
                  h(
                    'button',
                    {
                      type: 'button',
                      'aria-label': `Revoke the share with ${s.accountId}`,
                      onclick: () =>
                        void api
                          .DELETE('/shares/{shareId}', { params: { path: { shareId: s.id } } })
                          .then(() => announce(`The share with ${s.accountId} is revoked`))
                          .then(showShares, (error: unknown) => list.append(errorBox(error))),
                    },
                    'Revoke',
                  ),
                ),
              ),
            ),
      );
    } catch (error) {
      list.replaceChildren(errorBox(error));
    }
  }
  await showShares();
  const done = await formDialog({
    title: `Share ${image.name}`,
    description:
      'The account can deploy the image once it accepts; it cannot delete or share it. You keep paying for the image; revoking a share never stops instances already created from it.',
    fields: [field('Share with account', input, ACCOUNT_HINT)],
    submitLabel: 'Share',
    renderError: errorBox,
    extra: list,
    onSubmit: async () => {
      await api.POST('/images/{imageId}/shares', { params: { path: { imageId: image.id } }, body: { accountId: input.value.trim() } });
      announce(`${image.name} is shared with ${input.value.trim()}; it waits for their answer`);
    },
  });
  if (done) await hooks.refresh(`Share ${image.name}`);
}

/** The Transfer dialog: offer the image to another account. */
async function transfer(ctx: AppContext, image: ApiImage, hooks: MoveHooks): Promise<void> {
  const input = accountInput('transfer-account');
  const done = await formDialog({
    title: `Transfer ${image.name}`,
    description:
      'The account becomes the owner of the image, and pays for it, when it accepts the offer (within 7 days). Until then the image stays yours.',
    fields: [field('Offer to account', input, ACCOUNT_HINT)],
    submitLabel: 'Offer transfer',
    renderError: errorBox,
    onSubmit: async () => {
      await ctx.client.api.POST('/images/{imageId}/transfers', {
        params: { path: { imageId: image.id } },
        body: { accountId: input.value.trim() },
      });
      announce(`${image.name} is offered to ${input.value.trim()}`);
    },
  });
  if (done) await hooks.refresh(`Transfer ${image.name}`);
}

const copyLabel = (image: ApiImage) => `Copy ${image.name} to a location`;

/** The Copy to location dialog: the target location and the copy's name; the copy then shows in My Images. */
async function copyToLocation(ctx: AppContext, image: ApiImage, hooks: MoveHooks): Promise<void> {
  // The image's own location is listed too (another storage there may take the copy), marked and not preselected.
  const others = hooks.copyLocations.filter((l) => l !== image.locationId);
  const select = h(
    'select',
    { id: 'copy-location', name: 'locationId', required: true },
    ...hooks.copyLocations.map((l) =>
      h('option', { value: l, selected: l === others[0] }, l === image.locationId ? `${l} (where it is now)` : l),
    ),
  );
  const name = h('input', { id: 'copy-name', name: 'name', required: true, maxlength: 100, autocomplete: 'off', value: image.name });
  const done = await formDialog({
    title: `Copy ${image.name} to a location`,
    description:
      'The copy is a new image of yours in that location, so instances there can be created from it: it counts against your image limit and is billed on its own. Deleting one never deletes the other.',
    fields: [field('Location', select), field('Name of the copy', name)],
    submitLabel: 'Copy image',
    renderError: errorBox,
    onSubmit: async () => {
      const { data } = await ctx.client.api.POST('/images/{imageId}/copies', {
        params: { path: { imageId: image.id } },
        body: { locationId: select.value, name: name.value.trim() },
      });
      if (data?.task) hooks.follow(data.image, data.task);
      announce(`Copying ${image.name} to ${select.value} as ${data?.image.name ?? name.value.trim()}`);
    },
  });
  if (done) await hooks.refresh(copyLabel(image));
}

function decision(label: string, ariaLabel: string, run: () => void, primary = false): HTMLButtonElement {
  return h('button', { type: 'button', 'aria-label': ariaLabel, class: primary ? 'primary' : null, onclick: run }, label);
}

/**
 * The "Offers and shares" section: pending shares and transfers to this account, the images shared
 * with it, and its own pending transfer offers. `names` maps the account's image ids to names.
 */
export async function offersSection(ctx: AppContext, names: Map<string, string>, hooks: MoveHooks): Promise<HTMLElement> {
  const { api } = ctx.client;
  const [pending, accepted, incoming, outgoing] = await Promise.all([
    api.GET('/shared-images', { params: { query: { status: 'pending', limit: 100 } } }),
    api.GET('/shared-images', { params: { query: { status: 'accepted', limit: 100 } } }),
    api.GET('/transfers', { params: { query: { direction: 'incoming', status: 'pending', limit: 100 } } }),
    api.GET('/transfers', { params: { query: { direction: 'outgoing', status: 'pending', limit: 100 } } }),
  ]);
  const pendingShares: SharedImage[] = pending.data?.items ?? [];
  const acceptedShares: SharedImage[] = accepted.data?.items ?? [];
  const offers: ImageTransfer[] = incoming.data?.items ?? [];
  const mine: ImageTransfer[] = outgoing.data?.items ?? [];
  const section = h(
    'section',
    { id: 'offers', 'aria-labelledby': 'offers-title' },
    h('h2', { id: 'offers-title' }, 'Shares and transfers'),
  );
  const list = (id: string, title: string, empty: string, items: HTMLElement[]) =>
    h('div', { id }, h('h3', {}, title), items.length === 0 ? h('p', {}, empty) : h('ul', { class: 'offers' }, ...items));

  section.append(
    list('offers-received', 'Waiting for your answer', 'Nothing is waiting for your answer.', [
      ...pendingShares.map(({ share, image }) =>
        h(
          'li',
          { 'data-share-id': share.id },
          h('span', {}, `${share.ownerAccountId} shares `, h('strong', {}, image.name), ` (${formatBytes(image.sizeBytes)}) with you`),
          h(
            'span',
            { class: 'row-actions' },
            decision(
              'Accept',
              `Accept the share of ${image.name}`,
              () =>
                void hooks.act(`You can now deploy ${image.name}`, () =>
                  api.POST('/shares/{shareId}/accept', { params: { path: { shareId: share.id } } }),
                ),
              true,
            ),
            decision(
              'Decline',
              `Decline the share of ${image.name}`,
              () =>
                void hooks.act(`Declined ${image.name}`, () =>
                  api.POST('/shares/{shareId}/reject', { params: { path: { shareId: share.id } } }),
                ),
            ),
          ),
        ),
      ),
      ...offers.map((offer) =>
        h(
          'li',
          { 'data-transfer-id': offer.id },
          h(
            'span',
            {},
            `${offer.fromAccountId} offers you image `,
            h('code', {}, offer.imageId),
            ' (you would own it and pay for it) until ',
            time(offer.expiresAt),
          ),
          h(
            'span',
            { class: 'row-actions' },
            decision(
              'Accept',
              `Accept the transfer of ${offer.imageId}`,
              () =>
                void hooks.act('The image is now yours', () =>
                  api.POST('/transfers/{transferId}/accept', { params: { path: { transferId: offer.id } } }),
                ),
              true,
            ),
            decision(
              'Decline',
              `Decline the transfer of ${offer.imageId}`,
              () =>
                void hooks.act('Transfer declined', () =>
                  api.POST('/transfers/{transferId}/reject', { params: { path: { transferId: offer.id } } }),
                ),
            ),
          ),
        ),
      ),
    ]),
    list(
      'shared-with-me',
      'Shared with you',
      'Nobody shares an image with you. Shared images appear in the Create instance page’s “Shared with me” tab.',
      acceptedShares.map(({ share, image }) =>
        h(
          'li',
          { 'data-share-id': share.id },
          h('span', {}, h('strong', { class: 'name' }, image.name), ` from ${share.ownerAccountId} · ${formatBytes(image.sizeBytes)}`),
          decision(
            'Leave',
            `Leave the share of ${image.name}`,
            () =>
              void hooks.act(`You left the share of ${image.name}`, () =>
                api.POST('/shares/{shareId}/reject', { params: { path: { shareId: share.id } } }),
              ),
          ),
        ),
      ),
    ),
    list(
      'my-offers',
      'Your transfer offers',
      'You have not offered an image to anyone.',
      mine.map((offer) => {
        const name = names.get(offer.imageId) ?? offer.imageId;
        return h(
          'li',
          { 'data-transfer-id': offer.id },
          h('span', {}, h('strong', {}, name), ` offered to ${offer.toAccountId} until `, time(offer.expiresAt)),
          decision(
            'Withdraw',
            `Withdraw the offer of ${name}`,
            () =>
              void hooks.act(`The offer of ${name} is withdrawn`, () =>
                api.POST('/transfers/{transferId}/cancel', { params: { path: { transferId: offer.id } } }),
              ),
          ),
        );
      }),
    ),
  );
  return section;
}
