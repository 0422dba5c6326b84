/**
 * What the example panel's browser tests share: Debian's Chromium driven by playwright-core
 * (missing in CI is a failure, not a skip), screenshots kept under `artifacts/screenshots/` (the
 * directory CI keeps as artifacts; git ignores it), and page probes (progress values seen, labels
 * of every control, horizontal overflow).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null; in CI a missing browser throws. */
export function browserMissing(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const reason = `${CHROMIUM} is not installed (run scripts/setup-browser.sh)`;
  if (process.env.CI) throw new Error(`Integration service missing in CI: ${reason}`);
  return reason;
}

/** Starts headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
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
}

/** Where the screenshots go (CI keeps the directory as artifacts). */
export const SCREENSHOTS = fileURLToPath(new URL('../../../artifacts/screenshots/', import.meta.url));

/** Saves a full-page screenshot as `artifacts/screenshots/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Fails the page on an uncaught script error (collected; read with {@link pageErrors}). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

// The probes run in the page; they are plain JavaScript strings (the tests' TypeScript has no DOM types).

/** Records every value any `<ii-task-progress>` shows (in order, by its label) into `window.__progress`. */
export async function recordProgress(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    const seen = (window.__progress = {});
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        const el = m.target;
        if (el.tagName !== 'II-TASK-PROGRESS' || el.dataset.percent === undefined) continue;
        const label = el.getAttribute('label') || '';
        (seen[label] = seen[label] || []).push(Number(el.dataset.percent));
      }
    }).observe(document.body, { attributes: true, attributeFilter: ['data-percent'], subtree: true });
  })()`);
}

/** The values recorded by {@link recordProgress}, by progress label. */
export function recordedProgress(page: Page): Promise<Record<string, number[]>> {
  return page.evaluate<Record<string, number[]>>('window.__progress');
}

/** Form controls without an accessible name (label, aria-label, aria-labelledby, or a button's text). */
export function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`[...document.querySelectorAll('input, select, textarea, button, progress')]
    .filter((el) => {
      const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
      const text = el.tagName === 'BUTTON' && el.textContent.trim() !== '';
      return !labelled && !text;
    })
    .map((el) => el.outerHTML.slice(0, 120))`);
}

/** How far the page is wider than the viewport (0 when nothing scrolls sideways). */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
}

/** The text of the focused element (its accessible name as a person sees it). */
export function focusedText(page: Page): Promise<string> {
  return page.evaluate<string>(
    "(document.activeElement && (document.activeElement.getAttribute('aria-label') || document.activeElement.textContent.trim())) || ''",
  );
}
