/**
 * The example panel's customer pages in a real browser (Debian's Chromium driven by
 * playwright-core), against the real panel: SQLite, local image storage, libvirt on this machine.
 * A customer creates an image of a running guest and watches a progress bar that never goes
 * back, cancels and retries a capture, deletes an image after a confirmation dialog (keyboard and
 * focus checked), deploys an image from the OS picker's My Images tab, reads the tasks page, and
 * uses My Images at phone width. Screenshots go to artifacts/screenshots/.
 */
import { existsSync, rmSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_HYPERVISOR, DEMO_LOCATION, startPanel, type Panel } from '../../../examples/express-panel/panel';
import { createTestGuest, uniqueSuffix, type TestGuest } from '../../support/guests';
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
  watchErrors,
} from './browser-support';

const missing = libvirtSkipReason() ?? browserMissing();
const ACCOUNT = 'acct-browser';
const CAPTURE = { timeout: 180_000, interval: 250 };

describe.skipIf(missing !== null)(`the example panel's customer pages in a real browser${missing ? ` (skipped: ${missing})` : ''}`, () => {
  const suffix = uniqueSuffix();
  const dataDir = `/var/tmp/instance-images-test/browser-${suffix}`;
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
          id: 'vm-web',
          name: 'web-1',
          accountId: ACCOUNT,
          locationId: DEMO_LOCATION,
          hypervisorId: DEMO_HYPERVISOR,
          domainName: guest.name,
        },
        {
          id: 'vm-other',
          name: 'not-mine',
          accountId: 'acct-someone-else',
          locationId: DEMO_LOCATION,
          hypervisorId: DEMO_HYPERVISOR,
          domainName: 'nope',
        },
      ],
    });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    errors = watchErrors(page);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await panel?.close();
    guest?.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const rowOf = (name: string) => page.locator('#images-list tbody tr').filter({ has: page.locator('.name', { hasText: name }) });
  const statusOf = (name: string) => rowOf(name).locator('.status');

  async function createImage(name: string): Promise<void> {
    await page.fill('#name', name);
    await page.click('#create button[type=submit]');
  }

  it('creates an image from the form with a progress bar that never goes back, and shows it Available', async () => {
    await page.goto(`${panel.url}/?account=${ACCOUNT}#/images`);
    await expect.poll(() => page.locator('#instance option').allTextContents()).toEqual(['web-1']);
    expect(await unlabelledControls(page)).toEqual([]);
    await recordProgress(page);
    const name = 'web-1 golden; $(touch /tmp/ii-browser-canary)';
    await createImage(name);
    await expect.poll(() => statusOf(name).textContent(), CAPTURE).toBe('Available');
    const row = rowOf(name);
    expect(await row.locator('.source').textContent()).toBe('web-1');
    expect(await row.locator('.size').textContent()).toMatch(/MiB$/);
    expect(await row.locator('time').getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(existsSync('/tmp/ii-browser-canary')).toBe(false);
    const seen = (await recordedProgress(page))[`Progress of ${name}`] ?? [];
    expect(seen.length).toBeGreaterThan(0);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.at(-1)).toBe(100);
    expect(await page.locator('#announcer').textContent()).toMatch(/Creating .* finished/);
    await screenshot(page, 'customer-my-images');
  }, 200_000);

  it('never moves a progress bar back, in whatever order task states arrive', async () => {
    const shown = await page.evaluate<number[]>(`(() => {
      const bar = document.createElement('ii-task-progress');
      bar.setAttribute('label', 'probe');
      document.body.append(bar);
      const seen = [];
      for (const percent of [10, 40, 30, 40, 5, 90]) {
        bar.update({ status: 'running', progress: { step: 'capturing', percent, bytesDone: 0, bytesTotal: null } });
        seen.push(Number(bar.dataset.percent));
      }
      bar.remove();
      return seen;
    })()`);
    expect(shown).toEqual([10, 40, 40, 40, 40, 90]);
  });

  it('cancels a capture (Error with the catalog’s reason) and retries it to Available', async () => {
    const name = 'cancel me';
    // Hold the capture task where it starts (it asks the host for the instance, as the request did
    // before it), so the page can cancel it however fast this machine captures.
    const lookUp = panel.instances.get.bind(panel.instances);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let lookups = 0;
    panel.instances.get = ((id: string) =>
      id === 'vm-web' && ++lookups === 2 ? held.then(() => lookUp(id)) : lookUp(id)) as typeof lookUp;
    try {
      await createImage(name);
      await rowOf(name)
        .getByRole('button', { name: `Cancel ${name}` })
        .click();
      await expect.poll(() => statusOf(name).textContent(), CAPTURE).toBe('Error');
      expect(lookups).toBe(2);
    } finally {
      panel.instances.get = lookUp;
      release();
    }
    expect(await rowOf(name).locator('.reason').textContent()).toBe('The capture was cancelled.');
    await screenshot(page, 'customer-my-images-cancelled');
    await rowOf(name)
      .getByRole('button', { name: `Retry ${name}` })
      .click();
    await expect.poll(() => statusOf(name).textContent(), CAPTURE).toBe('Available');
    expect(await rowOf(name).locator('.reason').count()).toBe(0);
  }, 200_000);

  it('asks before deleting: Escape keeps the image and gives the focus back; confirming deletes it', async () => {
    const name = 'cancel me';
    const remove = rowOf(name).getByRole('button', { name: `Delete ${name}` });
    await remove.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: `Delete ${name}?` });
    await dialog.waitFor();
    expect(await focusedText(page)).toBe('Cancel');
    await screenshot(page, 'customer-delete-dialog');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await focusedText(page)).toBe(`Delete ${name}`);
    expect(await statusOf(name).textContent()).toBe('Available');
    await remove.click();
    await dialog.getByRole('button', { name: 'Delete image' }).click();
    await expect.poll(() => rowOf(name).count(), CAPTURE).toBe(0);
  }, 200_000);

  it('deploys an image from the OS picker’s My Images tab (keyboard tabs) and follows the deploy', async () => {
    await page.click('nav >> text=Create instance');
    const tab = page.getByRole('tab', { name: 'OS Images' });
    await tab.focus();
    await page.keyboard.press('ArrowRight');
    expect(await focusedText(page)).toBe('My Images');
    const panelOfTab = page.getByRole('tabpanel', { name: 'My Images' });
    expect(await panelOfTab.isVisible()).toBe(true);
    await panelOfTab.getByLabel(/web-1 golden/).check();
    await page.fill('#hostname', 'web-2');
    expect(await unlabelledControls(page)).toEqual([]);
    await screenshot(page, 'customer-os-picker');
    await page.click('#create-instance button[type=submit]');
    await expect.poll(() => page.locator('#deploy-status').textContent(), CAPTURE).toMatch(/Instance web-2 is ready\./);
    const created = [...panel.instances.values()].find((i) => i.name === 'web-2');
    expect(created?.accountId).toBe(ACCOUNT);
    expect(existsSync(`${dataDir}/disks/${created!.id}.qcow2`)).toBe(true);
  }, 200_000);

  it('lists the account’s tasks with their outcome on the tasks page', async () => {
    await page.click('nav >> text=Tasks');
    await page.locator('#tasks-list table').waitFor();
    const statuses = await page.locator('#tasks-list tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')));
    expect(statuses.filter((s) => s === 'completed').length).toBeGreaterThanOrEqual(4); // 2 captures, a delete, a deploy
    expect(statuses).toContain('cancelled');
    const types = await page.locator('#tasks-list tbody td:first-child').allTextContents();
    expect(types).toEqual(expect.arrayContaining(['Create image', 'Delete image', 'Deploy image']));
    expect(await focusedText(page)).toBe('Tasks');
    await screenshot(page, 'customer-tasks');
  });

  it('is usable at phone width (390 px): no sideways scrolling, labelled rows, the form reachable', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await phone.goto(`${panel.url}/?account=${ACCOUNT}#/images`);
    await phone.locator('#images-list tbody tr').first().waitFor();
    expect(await horizontalOverflow(phone)).toBeLessThanOrEqual(0);
    expect(await phone.locator('#create button[type=submit]').isVisible()).toBe(true);
    const before = `getComputedStyle(document.querySelector('#images-list tbody td[data-label="Status"]'), '::before').content`;
    expect(await phone.evaluate<string>(before)).toBe('"Status"');
    await screenshot(phone, 'customer-my-images-phone');
    await phone.click('nav >> text=Tasks');
    await phone.locator('#tasks-list table').waitFor();
    expect(await horizontalOverflow(phone)).toBeLessThanOrEqual(0);
    await screenshot(phone, 'customer-tasks-phone');
    await phone.close();
  });

  it('threw no script error on any page', () => {
    expect(errors).toEqual([]);
  });
});
