import { describe, expect, it } from 'vitest';
import { buildUsageReport, type UsageReportSources } from '../../../src/services/usage';
import { createMemoryRepositories } from '../../../src/memory';
import { ImageSchema, type Image } from '../../../src/model/image';
import type { UsageInterval } from '../../../src/model/usage-interval';
import type { ListPage, UsageFilter } from '../../../src/ports/repositories';
import { GIB, interval, period } from '../billing/helpers';

const NOVEMBER_2026 = period('2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z');

function image(id: string, name: string, accountId: string, status: Image['status'] = 'available'): Image {
  return ImageSchema.parse({
    id,
    kind: 'custom',
    name,
    accountId,
    locationId: 'l1',
    storageId: 's1',
    fileKey: `${id}.qcow2`,
    sizeBytes: 20 * GIB,
    status,
    createdAt: new Date('2026-10-01T00:00:00Z'),
    updatedAt: new Date('2026-10-01T00:00:00Z'),
  });
}

async function seed() {
  const repos = createMemoryRepositories();
  await repos.images.insert(image('img-web', 'web server', 'acc1'));
  await repos.images.insert(image('img-db', 'database', 'acc1', 'deleted'));
  await repos.images.insert(image('img-other', 'another account', 'acc2'));
  const intervals: UsageInterval[] = [
    // The worked example: 51 billed hours at 1/730 → 0.07.
    interval({
      id: 'u1',
      imageId: 'img-web',
      accountId: 'acc1',
      sizeBytes: 20 * GIB,
      rate: '0.05',
      from: '2026-11-03T10:15:00Z',
      to: '2026-11-05T12:30:00Z',
    }),
    // Billed again later (after a gap), then split by a price change at 10:00.
    interval({
      id: 'u2',
      imageId: 'img-web',
      accountId: 'acc1',
      sizeBytes: 20 * GIB,
      rate: '0.05',
      from: '2026-11-20T00:00:00Z',
      to: '2026-11-20T10:00:00Z',
    }),
    interval({
      id: 'u3',
      imageId: 'img-web',
      accountId: 'acc1',
      sizeBytes: 20 * GIB,
      rate: '0.06',
      from: '2026-11-20T10:00:00Z',
      to: null,
    }),
    // Deleted during the period: billed for the hours it existed (since October).
    interval({
      id: 'u4',
      imageId: 'img-db',
      accountId: 'acc1',
      sizeBytes: 73 * GIB,
      rate: '10',
      from: '2026-10-15T00:00:00Z',
      to: '2026-11-02T06:00:00Z',
    }),
    interval({
      id: 'u5',
      imageId: 'img-other',
      accountId: 'acc2',
      sizeBytes: 73 * GIB,
      rate: '10',
      from: '2026-11-10T00:00:00Z',
      to: '2026-11-10T03:00:00Z',
    }),
    // Outside the period: never in the report.
    interval({
      id: 'u6',
      imageId: 'img-other',
      accountId: 'acc2',
      sizeBytes: 73 * GIB,
      rate: '10',
      from: '2026-12-01T00:00:00Z',
      to: null,
    }),
    interval({
      id: 'u7',
      imageId: 'img-gone',
      accountId: 'acc2',
      sizeBytes: 73 * GIB,
      rate: '10',
      from: '2026-09-01T00:00:00Z',
      to: '2026-10-01T00:00:00Z',
    }),
  ];
  for (const item of intervals) await repos.usage.insert(item);
  return repos;
}

describe('buildUsageReport', () => {
  it("builds an account's Images section: one line per image, deleted images with the hours they existed", async () => {
    const repos = await seed();
    const report = await buildUsageReport(repos, { accountId: 'acc1', period: NOVEMBER_2026, currency: 'EUR' });
    expect(report.accountId).toBe('acc1');
    expect(report.currency).toBe('EUR');
    expect(report.period).toEqual(NOVEMBER_2026);
    expect(report.policy.hoursPerMonth).toBe(730);
    expect(report.images.lines.map((l) => [l.imageName, l.billedHours, l.rate, l.amount])).toEqual([
      // 1 Nov 00:00 → 2 Nov 06:00 = 30 h × 1.00.
      ['database', '30', '10', '30.00'],
      // 51 h + 10 h at 1/730, then 20 Nov 10:00 → 1 Dec = 254 h at 1.2/730: 61/730 + 762/1825 = 1829/3650.
      ['web server', '315', '0.06', '0.50'],
    ]);
    const web = report.images.lines[1];
    expect(web).toMatchObject({ imageId: 'img-web', accountId: 'acc1', sizeBytes: 20 * GIB, sizeGb: '20', exactAmount: '1829/3650' });
    expect(web?.segments.map((s) => [s.rate, s.billedHours, s.exactAmount])).toEqual([
      ['0.05', '61', '61/730'],
      ['0.06', '254', '762/1825'],
    ]);
    expect(report.images.total).toBe('30.50');
    expect(report.images.accounts).toEqual([{ accountId: 'acc1', lineCount: 2, total: '30.50' }]);
  });

  it('builds an operator-wide report across accounts with per-account subtotals', async () => {
    const repos = await seed();
    const report = await buildUsageReport(repos, { period: NOVEMBER_2026, currency: 'USD' });
    expect(report.accountId).toBeNull();
    expect(report.images.lines.map((l) => [l.accountId, l.imageId, l.amount])).toEqual([
      ['acc1', 'img-db', '30.00'],
      ['acc1', 'img-web', '0.50'],
      ['acc2', 'img-other', '3.00'],
    ]);
    expect(report.images.accounts).toEqual([
      { accountId: 'acc1', lineCount: 2, total: '30.50' },
      { accountId: 'acc2', lineCount: 1, total: '3.00' },
    ]);
    expect(report.images.total).toBe('33.50');
  });

  it('gives the same report whatever the page size, reading every page', async () => {
    const repos = await seed();
    const pages: (string | null | undefined)[] = [];
    const counting: UsageReportSources = {
      images: repos.images,
      usage: {
        list: async (filter?: UsageFilter, page?: ListPage) => {
          pages.push(page?.cursor);
          expect(page?.limit).toBe(1);
          expect(filter?.overlapping).toEqual(NOVEMBER_2026);
          return repos.usage.list(filter, page);
        },
      },
    };
    const paged = await buildUsageReport(counting, { period: NOVEMBER_2026, currency: 'USD', pageSize: 1 });
    const whole = await buildUsageReport(repos, { period: NOVEMBER_2026, currency: 'USD', pageSize: 1000 });
    expect(paged).toEqual(whole);
    // Five intervals overlap November, one per page.
    expect(pages).toHaveLength(5);
    expect(pages[0]).toBeNull();
  });

  it('applies the policy, looks each name up once, and keeps lines whose image record is gone', async () => {
    const repos = await seed();
    await repos.usage.insert(
      interval({ id: 'u8', imageId: 'img-purged', accountId: 'acc2', from: '2026-11-01T00:00:00Z', to: '2026-11-01T00:10:00Z' }),
    );
    const gets: string[] = [];
    const sources: UsageReportSources = { usage: repos.usage, images: { get: async (id) => (gets.push(id), repos.images.get(id)) } };
    const report = await buildUsageReport(sources, {
      accountId: 'acc2',
      period: NOVEMBER_2026,
      currency: 'USD',
      policy: { rounding: 'exact', minimumCharge: '0.25', decimals: 3 },
    });
    expect(gets.sort()).toEqual(['img-other', 'img-purged']);
    expect(report.images.lines.map((l) => [l.imageName, l.billedHours, l.amount, l.minimumChargeApplied])).toEqual([
      [null, '0.166667', '0.250', true],
      ['another account', '3', '3.000', false],
    ]);
    expect(report.images.total).toBe('3.250');
  });

  it('returns an empty section for an account without usage', async () => {
    const repos = await seed();
    const report = await buildUsageReport(repos, { accountId: 'nobody', period: NOVEMBER_2026, currency: 'USD' });
    expect(report.images).toEqual({ lines: [], total: '0.00', exactTotal: '0', accounts: [] });
  });

  it('rejects bad options and a repository whose paging does not advance', async () => {
    const repos = await seed();
    await expect(buildUsageReport(repos, { period: NOVEMBER_2026, currency: 'usd' })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      fields: [expect.objectContaining({ path: 'currency' })],
    });
    await expect(buildUsageReport(repos, { period: NOVEMBER_2026, currency: 'USD', pageSize: 0 })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expect(
      buildUsageReport(repos, { period: { from: NOVEMBER_2026.to, to: NOVEMBER_2026.from }, currency: 'USD' }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    const stuck: UsageReportSources = { images: repos.images, usage: { list: async () => ({ items: [], nextCursor: 'same' }) } };
    await expect(buildUsageReport(stuck, { period: NOVEMBER_2026, currency: 'USD' })).rejects.toMatchObject({ code: 'INVALID_STATE' });
  });
});
