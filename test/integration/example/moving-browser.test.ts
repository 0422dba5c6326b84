/**
 * The example panel's images-that-move workflows in a real browser (Debian's Chromium driven by
 * playwright-core), against the real panel: SQLite, local image storage, qemu-img on this
 * machine. A customer uploads an image file (paused by the person, then cut mid-piece by a dropped
 * connection, and resumed from the offset the panel reports), imports one from a URL, protects an
 * image and is refused its deletion with the catalog's message, downloads it through an expiring
 * link whose bytes match the checksum header, shares it with a second account that accepts, offers
 * it to that account, which declines (the image stays the owner's), copies it to a second location
 * (a second hypervisor and storage this test adds to the panel), and transfers it to that account,
 * which accepts; the pages work at phone width. Screenshots go to artifacts/screenshots/.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_LOCATION, startPanel, type Panel } from '../../../examples/express-panel/panel';
import type { Actor } from '../../../src';
import { MESSAGE_CATALOG } from '../../../src/messages';
import { uniqueSuffix } from '../../support/guests';
import { libvirtSkipReason } from '../libvirt/setup';
import {
  browserMissing,
  focusedText,
  horizontalOverflow,
  launchChromium,
  recordedProgress,
  recordProgress,
  screenshot,
  unlabelledControls,
} from './browser-support';

const missing = libvirtSkipReason() ?? browserMissing();
const OWNER = 'acct-owner';
const OTHER = 'acct-two';
const ADMIN: Actor = { kind: 'admin', userId: 'test' };
const customer = (accountId: string): Actor => ({ kind: 'customer', accountId });
/** The second location this test adds to the panel: a hypervisor (this machine again) and, later, a storage. */
const SECOND_LOCATION = 'second-location';
const SECOND_HYPERVISOR = 'hv-second';
const TASK = { timeout: 120_000, interval: 250 };
const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A raw disk of `mib` MiB whose every MiB differs (a resumed upload that skipped or repeated bytes would not match). */
function rawDisk(mib: number, seed: number): Buffer {
  return Buffer.concat(Array.from({ length: mib }, (_, i) => Buffer.alloc(MiB, (i * 37 + seed) % 251)));
}

describe.skipIf(missing !== null)(`the example panel's moving images in a real browser${missing ? ` (skipped: ${missing})` : ''}`, () => {
  const suffix = uniqueSuffix();
  const dataDir = `/var/tmp/instance-images-test/mv-${suffix}`;
  const uploaded = rawDisk(10, 3);
  const served = rawDisk(2, 7);
  const secondImagesDir = join(dataDir, 'images-second');
  let files: Server;
  // A download that waits until the test lets it go: an import on the second hypervisor holds that
  // hypervisor's one task slot, so a copy there waits in Creating for as long as the test needs.
  let releaseHeld!: () => void;
  const heldReleased = new Promise<void>((resolve) => (releaseHeld = resolve));
  let heldRequested!: () => void;
  const heldRequest = new Promise<void>((resolve) => (heldRequested = resolve));
  let panel: Panel;
  let browser: Browser;
  let page: Page;
  let other: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    // The import's source: a plain HTTP server of our own on loopback (the panel allows loopback for it).
    files = createServer((req, res) => {
      if (req.url === '/held.raw') {
        heldRequested();
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': served.length });
        void heldReleased.then(() => res.end(served));
        return;
      }
      if (req.url !== '/disk.raw') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': served.length }).end(served);
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    panel = await startPanel({
      dataDir,
      instances: [],
      imports: { allowNetworks: ['127.0.0.0/8'] },
      // The demo has one location; copies need a second one: this machine again, as another hypervisor.
      hypervisors: [
        {
          id: SECOND_HYPERVISOR,
          name: 'this machine, second location',
          locationId: SECOND_LOCATION,
          connection: { type: 'local' },
          scratchDir: join(dataDir, 'scratch-second'),
        },
      ],
      imageCopies: { allowCustomers: true },
    });
    mkdirSync(secondImagesDir, { recursive: true });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (error) => errors.push(error.message));
    other.on('pageerror', (error) => errors.push(error.message));
  }, 120_000);

  afterAll(async () => {
    releaseHeld?.();
    await browser?.close();
    await panel?.close();
    await new Promise((resolve) => files?.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  const rowOf = (p: Page, name: string) => p.locator('#images-list tbody tr').filter({ has: p.locator('.name', { hasText: name }) });
  const statusOf = (p: Page, name: string) => rowOf(p, name).locator('.status');
  const button = (p: Page, label: string) => p.getByRole('button', { name: label, exact: true });
  /** Loads My Images afresh (a page already on `#/images` would only change its fragment). */
  const openMyImages = async (p: Page, account: string) => {
    await p.goto('about:blank');
    await p.goto(`${panel.url}/?account=${account}#/images`);
  };

  /** The owner offers `name` to OTHER in the UI; returns OTHER's page showing the offer received. */
  const offerToOther = async (name: string) => {
    await button(page, `Transfer ${name}`).click();
    const dialog = page.getByRole('dialog', { name: `Transfer ${name}` });
    await page.fill('#transfer-account', OTHER);
    await dialog.getByRole('button', { name: 'Offer transfer' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect
      .poll(() => page.locator('#my-offers li').allTextContents())
      .toEqual([expect.stringContaining(`${name} offered to ${OTHER}`)]);
    await openMyImages(other, OTHER);
    const offer = other.locator('#offers-received li[data-transfer-id]');
    await offer.waitFor();
    return offer;
  };

  it('offers imports and uploads only where the operator allows them', async () => {
    await page.goto(`${panel.url}/?account=${OWNER}#/images`);
    await expect.poll(() => page.locator('#add-image').textContent()).toMatch(/has not enabled importing or uploading/);
    expect(await page.locator('#upload').count()).toBe(0);
    await panel.sdk.settings.setLocationSettings(ADMIN, DEMO_LOCATION, { urlImportEnabled: true });
    await page.reload();
    await page.locator('#upload').waitFor();
    expect(await unlabelledControls(page)).toEqual([]);
    await screenshot(page, 'customer-add-image');
  });

  it('uploads a file, paused by the person and cut mid-piece by a dropped connection, resuming from the stored offset', async () => {
    const CUT = 1_000_000;
    let patches = 0;
    let cutStatus = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    await page.route('**/api/uploads/*', async (route) => {
      const request = route.request();
      if (request.method() !== 'PATCH') return route.continue();
      const n = ++patches;
      if (n === 1) {
        // The first piece hangs until the person pauses (the page aborts its request).
        held();
        await released;
        await route.abort('connectionreset').catch(() => undefined);
        return;
      }
      if (n === 2) {
        // The connection drops after CUT bytes of the piece reached the panel.
        const body = request.postDataBuffer()!;
        const headers = { ...request.headers() };
        delete headers['content-length'];
        cutStatus = (await route.fetch({ postData: body.subarray(0, CUT), headers })).status();
        await route.abort('connectionreset');
        return;
      }
      await route.continue();
    });
    try {
      await page.setInputFiles('#upload-file', { name: 'uploaded-disk.raw', mimeType: 'application/octet-stream', buffer: uploaded });
      expect(await page.inputValue('#upload-name')).toBe('uploaded-disk');
      await page.fill('#upload-name', 'uploaded disk');
      await page.fill('#upload-sha256', sha256(uploaded));
      await page.click('#upload button[type=submit]');
      await holding;
      await page.click('#upload-pause');
      await expect.poll(() => page.locator('#upload-status').textContent()).toMatch(/^Paused at 0 B/);
      release();
      expect(await page.locator('#upload-pause').textContent()).toBe('Resume upload');
      await screenshot(page, 'customer-upload-paused');
      await page.click('#upload-pause');
      await expect.poll(() => page.locator('#upload').getAttribute('data-resumed-at'), TASK).toBe(String(CUT));
      expect(cutStatus).toBe(204);
      await expect.poll(() => statusOf(page, 'uploaded disk').textContent(), TASK).toBe('Available');
    } finally {
      release();
      await page.unroute('**/api/uploads/*');
    }
    // PATCH 1 aborted, PATCH 2 cut, then the rest from 1,000,000 in 4 MiB pieces: 3 more.
    expect(patches).toBe(5);
    expect(await page.locator('#upload').getAttribute('data-resumes')).toBe('1');
    // The panel checked the whole file against the sha256 given (a hole or a repeat fails the import).
    const id = await rowOf(page, 'uploaded disk').getAttribute('data-id');
    const image = await panel.sdk.images.getImage({ kind: 'customer', accountId: OWNER }, id!);
    expect(image).toMatchObject({ status: 'available', virtualSizeBytes: uploaded.length });
  }, 200_000);

  it('imports an image from a URL and follows it to Available', async () => {
    const { port } = files.address() as AddressInfo;
    await page.fill('#import-url', `http://127.0.0.1:${port}/disk.raw`);
    await page.fill('#import-name', 'imported disk');
    await page.fill('#import-sha256', sha256(served));
    await page.click('#import button[type=submit]');
    await expect.poll(() => statusOf(page, 'imported disk').textContent(), TASK).toBe('Available');
  }, 200_000);

  it('protects an image: deleting it is refused with the catalog’s message and the focus stays on Delete', async () => {
    const name = 'imported disk';
    await button(page, `Protect ${name}`).click();
    await rowOf(page, name).locator('.badge.protected').waitFor();
    expect(await focusedText(page)).toBe(`Unprotect ${name}`);
    await button(page, `Delete ${name}`).click();
    await page
      .getByRole('dialog', { name: `Delete ${name}?` })
      .getByRole('button', { name: 'Delete image' })
      .click();
    const alert = page.locator('#images-status [role=alert]');
    await alert.waitFor();
    expect(await alert.getAttribute('data-code')).toBe('IMAGE_PROTECTED');
    expect(await alert.textContent()).toContain(MESSAGE_CATALOG['error.IMAGE_PROTECTED'].customer);
    expect(await statusOf(page, name).textContent()).toBe('Available');
    expect(await focusedText(page)).toBe(`Delete ${name}`);
    await screenshot(page, 'customer-delete-protected');
    await button(page, `Unprotect ${name}`).click();
    await expect.poll(() => rowOf(page, name).locator('.badge.protected').count()).toBe(0);
    await button(page, `Delete ${name}`).click();
    await page
      .getByRole('dialog', { name: `Delete ${name}?` })
      .getByRole('button', { name: 'Delete image' })
      .click();
    await expect.poll(() => rowOf(page, name).count(), TASK).toBe(0);
  }, 200_000);

  it('downloads an image through its expiring link: the bytes match the checksum header', async () => {
    const name = 'uploaded disk';
    await button(page, `Download ${name}`).click();
    const dialog = page.getByRole('dialog', { name: `Download ${name}` });
    await dialog.waitFor();
    expect(await focusedText(page)).toMatch(/^Download uploaded-disk/);
    const shown = await page.locator('#download-sha256').textContent();
    const href = await page.locator('#download-link').getAttribute('href');
    await screenshot(page, 'customer-download-link');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-link')]);
    const bytes = readFileSync((await download.path())!);
    const head = await fetch(href!, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('x-checksum-sha256')).toBe(sha256(bytes));
    expect(shown).toBe(sha256(bytes));
    expect(Number(head.headers.get('content-length'))).toBe(bytes.length);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await focusedText(page)).toBe(`Download ${name}`);
  }, 120_000);

  it('shares an image with a second account, which accepts it and finds it in the OS picker', async () => {
    const name = 'uploaded disk';
    await button(page, `Share ${name}`).click();
    const dialog = page.getByRole('dialog', { name: `Share ${name}` });
    await dialog.waitFor();
    expect(await focusedText(page)).toBe('');
    expect(await page.evaluate<string>('document.activeElement.id')).toBe('share-account');
    await page.fill('#share-account', OWNER); // its own account: refused, the dialog stays open
    await dialog.getByRole('button', { name: 'Share', exact: true }).click();
    await dialog.locator('[role=alert]').waitFor();
    expect(await dialog.locator('[role=alert]').getAttribute('data-code')).toBe('VALIDATION_FAILED');
    await page.fill('#share-account', OTHER);
    await dialog.getByRole('button', { name: 'Share', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    // The list is redrawn after the dialog closed: the focus lands on the new row's button.
    await expect.poll(() => focusedText(page)).toBe(`Share ${name}`);

    await other.goto(`${panel.url}/?account=${OTHER}#/images`);
    const invitation = other.locator('#offers-received li[data-share-id]');
    await invitation.waitFor();
    expect(await invitation.textContent()).toContain(`${OWNER} shares ${name}`);
    await screenshot(other, 'customer-share-invitation');
    await button(other, `Accept the share of ${name}`).click();
    await expect.poll(() => other.locator('#shared-with-me .name').allTextContents()).toEqual([name]);
    await other.click('nav >> text=Create instance');
    const tab = other.getByRole('tab', { name: 'Shared with me' });
    await tab.click();
    expect(await other.getByRole('tabpanel', { name: 'Shared with me' }).getByLabel(new RegExp(name)).count()).toBe(1);

    await button(page, `Share ${name}`).click();
    await expect.poll(() => page.locator('#shares-of-image li').allTextContents()).toEqual([`${OTHER} · AcceptedRevoke`]);
    await page.keyboard.press('Escape');
  }, 120_000);

  it('offers an image to the second account, which declines: the offer is gone and the image stays the owner’s', async () => {
    const name = 'uploaded disk';
    const id = (await rowOf(page, name).getAttribute('data-id'))!;
    const offer = await offerToOther(name);
    await offer.getByRole('button', { name: `Decline the transfer of ${id}` }).click();
    await expect.poll(() => other.locator('#offers-received li[data-transfer-id]').count()).toBe(0);
    expect(await rowOf(other, name).count()).toBe(0);
    await screenshot(other, 'customer-transfer-declined');

    await page.reload();
    await page.locator('#offers').waitFor();
    expect(await page.locator('#my-offers li').count()).toBe(0);
    expect(await statusOf(page, name).textContent()).toBe('Available');
    // Through the API: the offer was rejected, the image is still the owner's, and the other account owns nothing.
    const outgoing = await panel.sdk.transfers.listTransfers(customer(OWNER), { direction: 'outgoing' });
    expect(outgoing.items.map((t) => [t.imageId, t.toAccountId, t.status])).toEqual([[id, OTHER, 'rejected']]);
    expect(await panel.sdk.images.getImage(customer(OWNER), id)).toMatchObject({ accountId: OWNER, status: 'available' });
    expect((await panel.sdk.images.listImages(customer(OTHER))).items).toEqual([]);
  }, 120_000);

  it('copies an image to a second location from its row: the copy shows Creating with progress, then Available, with the same bytes', async () => {
    const name = 'uploaded disk';
    const copyName = 'far replica';
    const sourceId = (await rowOf(page, name).getAttribute('data-id'))!;
    await panel.sdk.settings.setLocationSettings(ADMIN, SECOND_LOCATION, { imagesEnabled: true });
    await page.reload();
    await button(page, `Copy ${name} to a location`).click();
    const dialog = page.getByRole('dialog', { name: `Copy ${name} to a location` });
    await dialog.waitFor();
    expect(await page.evaluate<string>('document.activeElement.id')).toBe('copy-location');
    expect(await page.locator('#copy-location option').allTextContents()).toEqual([`${DEMO_LOCATION} (where it is now)`, SECOND_LOCATION]);
    expect(await page.inputValue('#copy-location')).toBe(SECOND_LOCATION);
    expect(await page.inputValue('#copy-name')).toBe(name);
    expect(await unlabelledControls(page)).toEqual([]);
    await page.fill('#copy-name', copyName);

    // No storage in the second location yet: the catalog's message, in the dialog, which stays open.
    await page.keyboard.press('Enter');
    const alert = dialog.locator('[role=alert]');
    await alert.waitFor();
    expect(await alert.getAttribute('data-code')).toBe('NO_IMAGE_STORAGE');
    expect(await alert.textContent()).toContain(MESSAGE_CATALOG['error.NO_IMAGE_STORAGE'].customer);
    expect(await page.evaluate<string>('document.activeElement.id')).toBe('copy-location');
    await screenshot(page, 'customer-copy-no-storage');

    // The operator adds a storage there; a held import keeps the second hypervisor busy meanwhile.
    const second = await panel.sdk.storages.createStorage(ADMIN, {
      name: 'Second location images',
      driver: 'local',
      config: { path: secondImagesDir },
    });
    await panel.sdk.storages.bindHypervisor(ADMIN, second.id, SECOND_HYPERVISOR);
    const { port } = files.address() as AddressInfo;
    const holder = await panel.sdk.imports.importImage(ADMIN, {
      url: `http://127.0.0.1:${port}/held.raw`,
      name: 'holder',
      locationId: SECOND_LOCATION,
      accountId: 'acct-holder',
    });
    await heldRequest;
    await recordProgress(page);
    await dialog.getByRole('button', { name: 'Copy image' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect.poll(() => focusedText(page)).toBe(`Copy ${name} to a location`);
    await expect.poll(() => statusOf(page, copyName).textContent(), TASK).toBe('Creating');
    expect(await rowOf(page, copyName).locator('ii-task-progress').getAttribute('label')).toBe(`Progress of ${copyName}`);
    await screenshot(page, 'customer-copy-creating');
    releaseHeld();
    await expect.poll(() => statusOf(page, copyName).textContent(), TASK).toBe('Available');
    expect((await panel.sdk.images.getTask(ADMIN, holder.task!.id)).status).toBe('completed');
    const seen = (await recordedProgress(page))[`Progress of ${copyName}`] ?? [];
    expect(seen.length).toBeGreaterThan(0);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.at(-1)).toBe(100);

    // Through the API and the files: a new image of the owner's in the second location, the same bytes.
    const copyId = (await rowOf(page, copyName).getAttribute('data-id'))!;
    const source = await panel.sdk.images.getImage(customer(OWNER), sourceId);
    const copy = await panel.sdk.images.getImage(customer(OWNER), copyId);
    expect(copy).toMatchObject({
      accountId: OWNER,
      status: 'available',
      locationId: SECOND_LOCATION,
      storageId: second.id,
      hypervisorId: SECOND_HYPERVISOR,
      sizeBytes: source.sizeBytes,
      virtualSizeBytes: source.virtualSizeBytes,
      sha256: source.sha256,
    });
    expect(copyId).not.toBe(sourceId);
    const sourceBytes = readFileSync(join(dataDir, 'images', source.fileKey));
    const copyBytes = readFileSync(join(secondImagesDir, copy.fileKey));
    expect(copyBytes.length).toBe(copy.sizeBytes);
    expect(sha256(copyBytes)).toBe(sha256(sourceBytes));
    expect(sha256(copyBytes)).toBe(copy.sha256);
  }, 200_000);

  it('offers an image to the second account, which accepts: the image is theirs', async () => {
    const name = 'uploaded disk';
    const offer = await offerToOther(name);
    await screenshot(other, 'customer-transfer-offer');
    await offer.getByRole('button', { name: /^Accept the transfer/ }).click();
    await expect.poll(() => statusOf(other, name).textContent(), TASK).toBe('Available');
    await page.reload();
    await page.locator('#offers').waitFor();
    expect(await rowOf(page, name).count()).toBe(0);
    expect(await page.locator('#my-offers li').count()).toBe(0);
  }, 120_000);

  it('is usable at phone width (390 px): the forms, the offers and the dialogs fit', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    phone.on('pageerror', (error) => errors.push(error.message));
    await phone.goto(`${panel.url}/?account=${OTHER}#/images`);
    await phone.locator('#images-list tbody tr').first().waitFor();
    expect(await horizontalOverflow(phone)).toBeLessThanOrEqual(0);
    expect(await unlabelledControls(phone)).toEqual([]);
    await screenshot(phone, 'customer-moving-phone');
    await button(phone, 'Share uploaded disk').click();
    await phone.getByRole('dialog', { name: 'Share uploaded disk' }).waitFor();
    expect(await horizontalOverflow(phone)).toBeLessThanOrEqual(0);
    await screenshot(phone, 'customer-share-dialog-phone');
    await phone.keyboard.press('Escape');
    await button(phone, 'Copy uploaded disk to a location').click();
    await phone.getByRole('dialog', { name: 'Copy uploaded disk to a location' }).waitFor();
    expect(await horizontalOverflow(phone)).toBeLessThanOrEqual(0);
    await screenshot(phone, 'customer-copy-dialog-phone');
    await phone.close();
  });

  it('threw no script error on any page', () => {
    expect(errors).toEqual([]);
  });
});
