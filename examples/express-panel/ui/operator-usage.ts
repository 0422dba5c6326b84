/**
 * The usage report: per image, the GB-hours billed and the amount over a period, as a table
 * (amounts exactly as the server computed them) and as an inline SVG bar chart.
 * @module
 */
import type { components } from '../../../src/client';
import { append, errorBox, field, h, row, table } from './dom';
import type { AppContext } from './session';

type UsageLine = components['schemas']['UsageReport']['images']['lines'][number];

const SVG = 'http://www.w3.org/2000/svg';
const HEADINGS = ['Image', 'Account', 'Size (GB)', 'Hours', 'GB-hours', 'Rate', 'Amount'];

/** An SVG element with attributes (and text). */
function s(tag: string, attributes: Record<string, string | number>, text?: string): SVGElement {
  const element = document.createElementNS(SVG, tag) as SVGElement;
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** A GB-hours figure for people: two decimals, or two significant digits below 0.01. */
function formatGbHours(value: number): string {
  return value === 0 || value >= 0.01 ? value.toFixed(2) : value.toPrecision(2);
}

/** GB-hours of a line (for the chart and the table; money stays the server's exact strings). */
export function gbHours(line: UsageLine): number {
  return Number(line.sizeGb) * Number(line.billedHours);
}

/**
 * A horizontal bar chart: per image, a bar of GB-hours and one of the amount, each scaled to its
 * own largest value. `role="img"` with a title and a description; the table is the full data.
 */
export function usageChart(lines: UsageLine[], currency: string): SVGElement {
  const rowHeight = 46;
  const labelWidth = 170;
  const barWidth = 360;
  const width = labelWidth + barWidth + 110;
  const height = 30 + lines.length * rowHeight;
  const maxHours = Math.max(...lines.map(gbHours), 1e-9);
  const maxAmount = Math.max(...lines.map((l) => Number(l.amount)), 1e-9);
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-labelledby': 'usage-chart-title usage-chart-desc',
  });
  svg.append(
    s('title', { id: 'usage-chart-title' }, 'GB-hours and amount per image'),
    s(
      'desc',
      { id: 'usage-chart-desc' },
      lines.map((l) => `${l.imageName ?? l.imageId}: ${formatGbHours(gbHours(l))} GB-hours, ${l.amount} ${currency}`).join('; '),
    ),
    s('rect', { x: labelWidth, y: 4, width: 12, height: 12, fill: '#0b5cad' }),
    s('text', { x: labelWidth + 18, y: 14, 'font-size': 12 }, 'GB-hours'),
    s('rect', { x: labelWidth + 100, y: 4, width: 12, height: 12, fill: '#1e7a34' }),
    s('text', { x: labelWidth + 118, y: 14, 'font-size': 12 }, `Amount (${currency})`),
  );
  lines.forEach((line, i) => {
    const y = 26 + i * rowHeight;
    const hours = gbHours(line);
    const name = line.imageName ?? line.imageId;
    const hoursWidth = Math.max(1, (hours / maxHours) * barWidth);
    const amountWidth = Math.max(1, (Number(line.amount) / maxAmount) * barWidth);
    svg.append(
      s('text', { x: labelWidth - 8, y: y + 18, 'text-anchor': 'end', 'font-size': 13 }, name.length > 22 ? `${name.slice(0, 21)}…` : name),
      s('rect', { x: labelWidth, y, width: hoursWidth, height: 16, fill: '#0b5cad', 'data-series': 'gb-hours' }),
      s('text', { x: labelWidth + hoursWidth + 6, y: y + 13, 'font-size': 12 }, formatGbHours(hours)),
      s('rect', { x: labelWidth, y: y + 19, width: amountWidth, height: 16, fill: '#1e7a34', 'data-series': 'amount' }),
      s('text', { x: labelWidth + amountWidth + 6, y: y + 32, 'font-size': 12 }, line.amount),
    );
  });
  return svg;
}

/** The first of this month and of the next, as `yyyy-mm-dd` (UTC). */
function thisMonth(): [string, string] {
  const now = new Date();
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return [from.toISOString().slice(0, 10), to.toISOString().slice(0, 10)];
}

/** Renders the usage report page into `main`. */
export async function usagePage(ctx: AppContext, main: HTMLElement): Promise<void> {
  const [start, end] = thisMonth();
  const from = h('input', { id: 'usage-from', type: 'date', required: true, value: start });
  const to = h('input', { id: 'usage-to', type: 'date', required: true, value: end });
  const account = h('input', { id: 'usage-account', placeholder: 'all accounts' });
  const result = h('div', { id: 'usage-result', role: 'region', 'aria-label': 'Usage report' });
  const form = h(
    'form',
    { id: 'usage', 'aria-labelledby': 'usage-title' },
    h('h2', { id: 'usage-title' }, 'Period'),
    field('From (UTC)', from),
    field('To (UTC, exclusive)', to),
    field('Account', account, 'Leave empty for every account.'),
    h('button', { type: 'submit', class: 'primary' }, 'Show report'),
  );

  async function load(): Promise<void> {
    try {
      const query = {
        from: new Date(`${from.value}T00:00:00Z`).toISOString(),
        to: new Date(`${to.value}T00:00:00Z`).toISOString(),
        ...(account.value ? { accountId: account.value } : {}),
      };
      const { data: report } = await ctx.client.api.GET('/admin/usage', { params: { query } });
      if (!report) return;
      result.replaceChildren();
      const lines = report.images.lines;
      const rows = lines.map((line) =>
        row(
          HEADINGS,
          [
            line.imageName ?? line.imageId,
            line.accountId,
            line.sizeGb,
            line.billedHours,
            formatGbHours(gbHours(line)),
            line.rate,
            `${line.amount} ${report.currency}`,
          ],
          {
            'data-image': line.imageId,
          },
        ),
      );
      append(
        result,
        h('h2', {}, 'Images'),
        lines.length
          ? h(
              'figure',
              { class: 'chart' },
              usageChart(lines, report.currency),
              h('figcaption', {}, 'GB-hours and amount per image over the period'),
            )
          : null,
        lines.length ? table('Images usage', HEADINGS, rows) : h('p', {}, 'No image was billed in this period.'),
        h('p', { id: 'usage-total' }, h('strong', {}, `Images total: ${report.images.total} ${report.currency}`)),
      );
    } catch (error) {
      result.replaceChildren(errorBox(error));
    }
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void load();
  });
  main.replaceChildren(h('h1', { tabindex: '-1' }, 'Usage report'), form, result);
  await load();
}
