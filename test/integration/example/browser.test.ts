/**
 * The example panel's My Images page in a real browser (Debian's Chromium driven by
 * playwright-core): a customer creates an image of a running guest with the form, watches the
 * progress, and sees it Available in the list with its source instance and size.
 */
import { existsSync, rmSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_HYPERVISOR, DEMO_LOCATION, startPanel, type Panel } from '../../../examples/express-panel/panel';
import { createTestGuest, uniqueSuffix, type TestGuest } from '../../support/guests';
import { libvirtSkipReason } from '../libvirt/setup';

const CHROMIUM = '/usr/bin/chromium';
function browserMissing(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const reason = `${CHROMIUM} is not installed (run scripts/setup-browser.sh)`;
  if (process.env.CI) throw new Error(`Integration service missing in CI: ${reason}`);
  return reason;
}
const missing = libvirtSkipReason() ?? browserMissing();

describe.skipIf(missing !== null)(`the example panel in a real browser${missing ? ` (skipped: ${missing})` : ''}`, () => {
  const suffix = uniqueSuffix();
  const dataDir = `/var/tmp/instance-images-test/browser-${suffix}`;
  let guest: TestGuest;
  let panel: Panel;
  let browser: Browser;

  beforeAll(async () => {
    guest = createTestGuest({ diskMiB: 64, cdrom: false });
    panel = await startPanel({
      dataDir,
      instances: [
        {
          id: 'vm-web',
          name: 'web-1',
          accountId: 'acct-browser',
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
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await panel?.close();
    guest?.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates an image from the form and shows it Available in My Images', async () => {
    const page = await browser.newPage();
    await page.goto(`${panel.url}/?account=acct-browser`);
    await expect.poll(() => page.locator('#instance option').allTextContents()).toEqual(['web-1']);
    await page.fill('#name', 'web-1 golden; $(touch /tmp/ii-browser-canary)');
    await page.click('button[type=submit]');
    const row = page.locator('#images tr').filter({ hasText: 'web-1 golden' });
    await expect.poll(() => row.locator('.status').textContent(), { timeout: 180_000, interval: 500 }).toBe('Available');
    expect(await row.locator('.name').textContent()).toBe('web-1 golden; $(touch /tmp/ii-browser-canary)');
    expect(await row.locator('.source').textContent()).toBe('web-1');
    expect(await row.locator('td').nth(2).textContent()).toMatch(/MiB$/);
    expect(existsSync('/tmp/ii-browser-canary')).toBe(false);
    await page.screenshot({ path: `${dataDir}/my-images.png` });
  });
});
