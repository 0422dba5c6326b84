/**
 * The example panel's operator pages in a real browser (Debian's Chromium driven by playwright-core),
 * against the real panel (SQLite, local storages, libvirt on this machine): image storages with
 * health and bindings, the image browser with reconcile (dry run first, then apply), location
 * settings and caps, the usage report's chart, media groups, OS images and ISOs, and the pages
 * at phone width. Screenshots go to artifacts/screenshots/.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../../src';
import { DEMO_HYPERVISOR, DEMO_LOCATION, startPanel, type Panel } from '../../../examples/express-panel/panel';
import { createTestGuest, uniqueSuffix, type TestGuest } from '../../support/guests';
import { libvirtSkipReason } from '../libvirt/setup';
import { browserMissing, horizontalOverflow, launchChromium, screenshot, unlabelledControls, watchErrors } from './browser-support';

const missing = libvirtSkipReason() ?? browserMissing();
const ACCOUNT = 'acct-ops-browser';
const customer: Actor = { kind: 'customer', accountId: ACCOUNT };

describe.skipIf(missing !== null)(`the example panel's operator pages in a real browser${missing ? ` (skipped: ${missing})` : ''}`, () => {
  const suffix = uniqueSuffix();
  const dataDir = `/var/tmp/instance-images-test/ops-browser-${suffix}`;
  const templatesDir = `${dataDir}/templates`;
  const orphan = `${dataDir}/images/forgotten-upload.qcow2`;
  let guest: TestGuest;
  let panel: Panel;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    guest = createTestGuest({ diskMiB: 64, cdrom: false });
    panel = await startPanel({
      dataDir,
      instances: [
        {
          id: 'vm-ops',
          name: 'ops-1',
          accountId: ACCOUNT,
          locationId: DEMO_LOCATION,
          hypervisorId: DEMO_HYPERVISOR,
          domainName: guest.name,
        },
      ],
    });
    // A customer image (billed, on the storage), a file no image refers to, and template files.
    const { task } = await panel.sdk.images.createImage(customer, { instanceId: 'vm-ops', name: 'billed-image' });
    expect((await panel.sdk.images.waitForTask(customer, task.id)).status).toBe('completed');
    writeFileSync(orphan, 'not an image anyone owns');
    mkdirSync(templatesDir, { recursive: true });
    writeFileSync(`${templatesDir}/debian-12.qcow2`, Buffer.alloc(64 * 1024, 7));
    writeFileSync(`${templatesDir}/rescue.iso`, Buffer.alloc(32 * 1024, 9));
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    errors = watchErrors(page);
  }, 200_000);

  afterAll(async () => {
    await browser?.close();
    await panel?.close();
    guest?.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const open = async (route: string) => {
    await page.goto(`${panel.url}/?admin=yes#${route}`);
    await page.locator(`main[data-page="${route}"]`).waitFor();
  };
  const storageRow = (name: string) => page.locator('#storages-list tbody tr').filter({ has: page.locator('.name', { hasText: name }) });

  it('shows each image storage’s health and bindings; adds a storage, binds and unbinds it', async () => {
    await open('/admin/storages');
    const local = storageRow('Local images');
    await expect.poll(() => local.locator('.health').textContent()).toMatch(/^Healthy.* free$/);
    expect(await local.locator('.binding').allTextContents()).toEqual(['this machine']);
    expect(await unlabelledControls(page)).toEqual([]);
    await page.getByLabel('Name').fill('Templates');
    await page.getByLabel('Directory on the hypervisor').fill(templatesDir);
    await page.getByLabel('Holds').selectOption('templates');
    await page.click('#add-storage button[type=submit]');
    const templates = storageRow('Templates');
    // A local storage is reached through a hypervisor: unhealthy until one is bound.
    await expect.poll(() => templates.locator('.health').textContent()).toMatch(/^Unhealthy.*none is bound/);
    expect(await templates.textContent()).toContain('Not bound');
    await templates.getByRole('button', { name: 'Bind a hypervisor to Templates' }).click();
    await expect.poll(() => storageRow('Templates').locator('.binding').allTextContents()).toEqual(['this machine']);
    await expect.poll(() => storageRow('Templates').locator('.health').textContent()).toMatch(/^Healthy.* free$/);
    await screenshot(page, 'operator-storages');
    await storageRow('Templates').getByRole('button', { name: 'Unbind this machine from Templates' }).click();
    await page.getByRole('dialog', { name: 'Unbind this machine?' }).getByRole('button', { name: 'Unbind' }).click();
    await expect.poll(() => storageRow('Templates').textContent()).toContain('Not bound');
    await storageRow('Templates').getByRole('button', { name: 'Bind a hypervisor to Templates' }).click();
    await expect.poll(() => storageRow('Templates').locator('.binding').count()).toBe(1);
  });

  it('browses the files on a storage and reconciles with a dry run first, then applies it', async () => {
    await storageRow('Local images')
      .getByRole('link', { name: /Browse/ })
      .click();
    await page.locator('#browse-files table').waitFor();
    expect(await page.locator('#browse-files tr[data-kind="orphan"]').textContent()).toContain('forgotten-upload.qcow2');
    expect(await page.locator('#browse-files tr[data-kind="ok"]').count()).toBe(1);
    const apply = page.getByRole('button', { name: 'Apply these changes' });
    expect(await apply.isDisabled()).toBe(true);
    await page.getByLabel(/Delete orphan files/).check();
    await page.getByRole('button', { name: 'Dry run' }).click();
    const finding = page.locator('#reconcile-findings tr[data-kind="orphan"]');
    await finding.waitFor();
    expect(await finding.textContent()).toContain('Delete the file');
    expect(await page.locator('#reconcile-findings h3').textContent()).toBe('Dry run: what reconcile would do');
    expect(existsSync(orphan)).toBe(true);
    await screenshot(page, 'operator-image-browser-dry-run');
    // Another option needs another dry run before it can be applied.
    await page.getByLabel(/Mark images whose file is missing/).check();
    expect(await apply.isDisabled()).toBe(true);
    await page.getByLabel(/Mark images whose file is missing/).uncheck();
    expect(await apply.isDisabled()).toBe(false);
    await apply.click();
    await page.getByRole('dialog', { name: 'Apply reconcile?' }).getByRole('button', { name: 'Apply' }).click();
    await expect.poll(() => page.locator('#reconcile-findings h3').textContent()).toBe('Reconcile applied');
    expect(existsSync(orphan)).toBe(false);
    await expect.poll(() => page.locator('#browse-files tr[data-kind="orphan"]').count()).toBe(0);
  });

  it('edits a location’s settings and an account’s image cap', async () => {
    await open('/admin/locations');
    const location = page.locator(`form[data-location="${DEMO_LOCATION}"]`);
    await location.getByLabel('Price per GB-month').fill('0.12');
    await location.getByLabel('Default image cap per account').fill('7');
    await location.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => location.getByRole('status').textContent()).toBe('Saved.');
    const settings = await panel.sdk.settings.getLocationSettings({ kind: 'admin', userId: 't' }, DEMO_LOCATION);
    expect(settings).toMatchObject({ pricePerGbMonth: '0.12', defaultImageLimit: 7, imagesEnabled: true });
    await page.fill('#cap-account', ACCOUNT);
    await page.fill('#cap-limit', '3');
    await page.click('#account-cap button[type=submit]');
    await expect.poll(() => page.locator('#cap-current').textContent()).toBe(`${ACCOUNT} may keep 3 images.`);
    expect(await unlabelledControls(page)).toEqual([]);
    await screenshot(page, 'operator-locations');
    await page.getByRole('button', { name: 'Remove cap' }).click();
    await expect.poll(() => page.locator('#cap-current').textContent()).toBe(`${ACCOUNT} has no cap of its own.`);
  });

  it('charts GB-hours and amounts per image in the usage report', async () => {
    await open('/admin/usage');
    const chart = page.getByRole('img', { name: 'GB-hours and amount per image' });
    await chart.waitFor();
    expect(await chart.locator('rect[data-series="gb-hours"]').count()).toBe(1);
    expect(await chart.locator('rect[data-series="amount"]').count()).toBe(1);
    expect(await chart.locator('desc').textContent()).toMatch(/^billed-image: \d+\.\d+(e-\d+)? GB-hours, \d+\.\d\d USD$/);
    expect(await page.locator('#usage-result tbody tr').count()).toBe(1);
    expect(await page.locator('#usage-total').textContent()).toMatch(/^Images total: \d+\.\d\d USD$/);
    await screenshot(page, 'operator-usage');
  });

  it('adds a media group, an OS image in it (offered on the customer’s OS picker), and an ISO; deletes the ISO', async () => {
    await open('/admin/media-groups');
    await page.getByLabel('Name').fill('Linux');
    await page.click('#add-media-group button[type=submit]');
    await page.getByRole('checkbox', { name: 'Linux visible to customers' }).waitFor();
    await screenshot(page, 'operator-media-groups');

    await open('/admin/os-images');
    await page.getByLabel('Name').fill('Debian 12');
    await page.getByLabel('Source file').fill('debian-12.qcow2');
    await page.getByLabel('Media group').selectOption({ label: 'Linux' });
    expect(await unlabelledControls(page)).toEqual([]);
    await page.click('#add-os-image button[type=submit]');
    const row = page.locator('main tbody tr').filter({ hasText: 'Debian 12' });
    await row.waitFor();
    expect(await row.textContent()).toContain('Linux');
    await screenshot(page, 'operator-os-images');
    const picker = await browser.newPage();
    await picker.goto(`${panel.url}/?account=${ACCOUNT}#/create-instance`);
    await expect.poll(() => picker.getByRole('tabpanel', { name: 'OS Images' }).textContent()).toMatch(/Linux.*Debian 12/);
    await picker.close();

    await open('/admin/isos');
    await page.getByLabel('Name').fill('Rescue CD');
    await page.getByLabel('ISO file').fill('rescue.iso');
    await page.click('#add-iso button[type=submit]');
    const iso = page.locator('main tbody tr').filter({ hasText: 'Rescue CD' });
    await expect.poll(() => iso.textContent()).toMatch(/32\.0 KiB.*Available/);
    await screenshot(page, 'operator-isos');
    await iso.getByRole('button', { name: 'Delete Rescue CD' }).click();
    await page.getByRole('dialog', { name: 'Delete Rescue CD?' }).getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.locator('main').textContent()).toContain('No ISO yet.');
  });

  it('is usable at phone width (390 px): storages, image browser and usage report', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    for (const route of ['/admin/storages', '/admin/browse', '/admin/usage']) {
      await phone.goto(`${panel.url}/?admin=yes#${route}`);
      await phone.locator(`main[data-page="${route}"]`).waitFor();
      await phone.waitForLoadState('networkidle');
      expect(await horizontalOverflow(phone), route).toBeLessThanOrEqual(0);
      await screenshot(phone, `operator-${route.split('/').pop()}-phone`);
    }
    await phone.close();
  });

  it('threw no script error on any page', () => {
    expect(errors).toEqual([]);
  });
});
