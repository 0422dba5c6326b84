/**
 * The usage service: every read and write of the usage ledger. Billing (`src/billing`) says, as
 * pure functions, which intervals to close and open and what they cost; this module applies the
 * changes ({@link recordUsageChanges}, the one place that emits `usage.started` / `usage.stopped`),
 * reads the ledger for the usage report, and corrects an image's size.
 * @module
 */
import { z } from 'zod';
import { standaloneSize } from '../chunks';
import { chunkStoreOf, isChunkedStorage } from './chunked-storage';
import {
  applyPriceChange,
  applySizeCorrection,
  assembleUsageReport,
  ChargeCalculator,
  closeUsage,
  openUsage,
  type BillingPeriod,
  type BillingPolicyInput,
  type UsageChanges,
  type UsageClose,
  type UsageReport,
} from '../billing';
import { InstanceImagesError, notFound } from '../errors';
import type { InstanceImagesEmitter } from '../events';
import { IdSchema } from '../model/common';
import type { Image } from '../model/image';
import type { Task } from '../model/task';
import type { UsageInterval } from '../model/usage-interval';
import type { ImageRepository, UsageFilter, UsageRepository } from '../ports/repositories';
import { eachPage } from '../util/pages';
import { parseOrThrow } from '../util/validate';
import { checkActor, requireAdmin, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import { createTask, runTask } from './task-runner';
import { draft, publish, type TypedDraft } from './outbox-events';

/** What {@link recordUsageChanges} did. */
export interface AppliedUsageChanges {
  /** Intervals closed (`usage.stopped` was emitted for each). */
  closed: UsageInterval[];
  /** Intervals inserted (`usage.started` was emitted for each). */
  opened: UsageInterval[];
  /** Images whose new intervals were not inserted because one of their closes lost a race. */
  skippedImageIds: string[];
}

/** What {@link recordUsageChanges} needs: the usage ledger and the event emitter. */
export interface UsageLedger {
  readonly repos: { readonly usage: Pick<UsageRepository, 'close' | 'insert'> };
  readonly events: Pick<InstanceImagesEmitter, 'emit'>;
}

/**
 * Records {@link UsageChanges} in the ledger, image by image, and emits `usage.stopped` for each
 * interval closed and `usage.started` for each one opened. First the image's closes (atomic, only
 * while open), then its new intervals. When a close finds its interval already closed (a
 * concurrent delete or change got there first), that image's new intervals are skipped, so a
 * deleted image is never reopened and nothing overlaps. Every usage change goes through here.
 * @throws whatever the repository throws (e.g. CONFLICT on a duplicate id).
 */
const usageStarted = (interval: UsageInterval): TypedDraft[] => [draft('usage.started', interval.imageId, { interval })];
const usageStopped = (interval: UsageInterval): TypedDraft[] => [draft('usage.stopped', interval.imageId, { interval })];

export async function recordUsageChanges(ledger: UsageLedger, changes: UsageChanges): Promise<AppliedUsageChanges> {
  const usage = ledger.repos.usage;
  const result: AppliedUsageChanges = { closed: [], opened: [], skippedImageIds: [] };
  const byImage = new Map<string, { close: UsageClose[]; open: UsageInterval[] }>();
  const groupOf = (imageId: string) => {
    let group = byImage.get(imageId);
    if (group === undefined) {
      group = { close: [], open: [] };
      byImage.set(imageId, group);
    }
    return group;
  };
  for (const close of changes.close) groupOf(close.imageId).close.push(close);
  for (const interval of changes.open) groupOf(interval.imageId).open.push(interval);
  for (const [imageId, group] of byImage) {
    let lostRace = false;
    for (const close of group.close) {
      const closed = await usage.close(close.id, close.to, usageStopped);
      if (closed === null) lostRace = true;
      else {
        result.closed.push(closed);
        publish(ledger.events, usageStopped(closed));
      }
    }
    if (lostRace) {
      if (group.open.length > 0) result.skippedImageIds.push(imageId);
      continue;
    }
    for (const interval of group.open) {
      await usage.insert(interval, usageStarted);
      result.opened.push(interval);
      publish(ledger.events, usageStarted(interval));
    }
  }
  return result;
}

async function openIntervalsOf(ctx: ServiceContext, imageId: string): Promise<UsageInterval[]> {
  const page = await ctx.repos.usage.list({ imageId, openOnly: true }, { limit: 1000 });
  return page.items;
}

/** Starts billing for a custom image that just became available (no-op for stock images). */
export async function startBilling(ctx: ServiceContext, image: Image, at: Date): Promise<void> {
  if (image.kind !== 'custom' || image.accountId === null || image.locationId === null) return;
  const settings = await ctx.repos.settings.getLocation(image.locationId);
  await recordUsageChanges(
    ctx,
    openUsage({ image, rate: settings?.pricePerGbMonth ?? '0', at, openIntervals: await openIntervalsOf(ctx, image.id) }, ctx.newId),
  );
}

/** Stops billing for an image at `at` (the delete request). Idempotent. */
export async function stopBilling(ctx: ServiceContext, imageId: string, at: Date): Promise<void> {
  await recordUsageChanges(ctx, closeUsage({ imageId, at, openIntervals: await openIntervalsOf(ctx, imageId) }));
}

/** A location's price changed at `at`: every open interval there is split and continued at `rate`. */
export async function repriceLocation(ctx: ServiceContext, locationId: string, rate: string, at: Date): Promise<void> {
  // Intervals opened at the new rate show up in later pages; applyPriceChange leaves them alone.
  for await (const open of eachPage((cursor) => ctx.repos.usage.list({ locationId, openOnly: true }, { cursor, limit: 500 }))) {
    await recordUsageChanges(ctx, applyPriceChange({ locationId, rate, at, openIntervals: open }, ctx.newId));
  }
}

/** An image's size was corrected at `at`: its open interval is split there. */
export async function correctBilledSize(ctx: ServiceContext, imageId: string, sizeBytes: number, at: Date): Promise<void> {
  await recordUsageChanges(
    ctx,
    applySizeCorrection({ imageId, sizeBytes, at, openIntervals: await openIntervalsOf(ctx, imageId) }, ctx.newId),
  );
}

/** The repositories the report reads: usage intervals (paged) and images (for names). */
export interface UsageReportSources {
  /** The usage ledger; only `list` is used. */
  usage: Pick<UsageRepository, 'list'>;
  /** Images; only `get` is used, once per image in the report. */
  images: Pick<ImageRepository, 'get'>;
}

/** Options of {@link buildUsageReport}. */
export interface UsageReportOptions {
  /** The account; omit for an operator-wide report across all accounts. */
  accountId?: string;
  /** The period, [from, to). */
  period: BillingPeriod;
  /** The billing policy; defaults as in `DEFAULT_BILLING_POLICY`. */
  policy?: BillingPolicyInput;
  /** ISO 4217 code of the rates and amounts, e.g. `"USD"`. */
  currency: string;
  /** Intervals per repository page, 1–1000; default 500. */
  pageSize?: number;
  /** Concurrent image-name lookups, 1–64; default 8. */
  nameLookupConcurrency?: number;
}

const ReportOptionsSchema = z.object({
  accountId: IdSchema.optional(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be a 3-letter currency code like "USD"'),
  pageSize: z.number().int().min(1).max(1000).default(500),
  nameLookupConcurrency: z.number().int().min(1).max(64).default(8),
});

/**
 * Builds the usage report's Images section. Reads `usage.list({ accountId?, overlapping: period })`
 * page by page into a `ChargeCalculator` (one accumulator per image, so memory grows with
 * the number of images, not of intervals); then reads each image's name once with `images.get`
 * and assembles the report with the pure `assembleUsageReport`.
 * @throws VALIDATION_FAILED when an option, the period, the policy or an interval is not valid;
 *   INVALID_STATE when the repository's paging does not advance; whatever the repositories throw.
 */
export async function buildUsageReport(sources: UsageReportSources, options: UsageReportOptions): Promise<UsageReport> {
  const parsed = parseOrThrow(
    ReportOptionsSchema,
    {
      accountId: options.accountId,
      currency: options.currency,
      pageSize: options.pageSize,
      nameLookupConcurrency: options.nameLookupConcurrency,
    },
    'The usage report options',
  );
  const calculator = new ChargeCalculator(options.period, options.policy);
  const { period } = calculator;
  const filter: UsageFilter = { overlapping: { from: period.from, to: period.to } };
  if (parsed.accountId !== undefined) filter.accountId = parsed.accountId;

  let cursor: string | null = null;
  do {
    const page = await sources.usage.list(filter, { cursor, limit: parsed.pageSize });
    for (const interval of page.items) {
      // The repository filters already; this guards an adapter that ignores `accountId`.
      if (parsed.accountId !== undefined && interval.accountId !== parsed.accountId) continue;
      calculator.add(interval);
    }
    if (page.nextCursor !== null && page.nextCursor === cursor) {
      throw new InstanceImagesError(
        'INVALID_STATE',
        'The usage repository returned the same page cursor twice; its paging does not advance',
        { details: { cursor } },
      );
    }
    cursor = page.nextCursor;
  } while (cursor !== null);

  const charges = calculator.finish();
  const names = await lookUpNames(
    sources.images,
    charges.lines.map((line) => line.imageId),
    parsed.nameLookupConcurrency,
  );
  return assembleUsageReport(charges, names, { accountId: parsed.accountId ?? null, currency: parsed.currency });
}

async function lookUpNames(
  images: Pick<ImageRepository, 'get'>,
  imageIds: readonly string[],
  concurrency: number,
): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < imageIds.length) {
      const imageId = imageIds[next] as string;
      next += 1;
      const image = await images.get(imageId);
      if (image !== null) names.set(imageId, image.name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, imageIds.length) }, worker));
  return names;
}

/** Query of the usage report (`InstanceImages.settings.usageReport`). */
export const UsageReportQuerySchema = z.strictObject({
  from: z.coerce.date(),
  to: z.coerce.date(),
  /** Admins: one account, or omit for all accounts. Customers: always their own. */
  accountId: IdSchema.optional(),
});
/** Query of the usage report (`InstanceImages.settings.usageReport`). */
export type UsageReportQuery = z.input<typeof UsageReportQuerySchema>;

/**
 * The usage report and the size correction. Reached through `InstanceImages.settings`
 * (`usageReport`, `refreshImageSize`).
 */
export class UsageService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
    private readonly currency: string,
  ) {}

  /**
   * The usage report's Images section for a period: a customer's own, or (admins) one account's or
   * all accounts'. A period that reaches into the future is cut at the present moment (usage to date).
   */
  async usageReport(actor: Actor, query: UsageReportQuery): Promise<UsageReport> {
    checkActor(actor);
    const q = parseOrThrow(UsageReportQuerySchema, query, 'The report query');
    const accountId = actor.kind === 'customer' ? actor.accountId : q.accountId;
    if (q.to.getTime() <= q.from.getTime())
      throw new InstanceImagesError('VALIDATION_FAILED', 'The report period must end after it starts', {
        fields: [{ path: 'to', message: 'must be after from' }],
      });
    // Usage is billed up to now: a period reaching into the future is cut at the present moment.
    const now = this.ctx.now();
    const to = q.to.getTime() > now.getTime() ? new Date(Math.max(now.getTime(), q.from.getTime() + 1)) : q.to;
    return buildUsageReport(
      { usage: this.ctx.repos.usage, images: this.ctx.repos.images },
      {
        ...(accountId ? { accountId } : {}),
        period: { from: q.from, to },
        policy: this.ctx.settings.billingPolicy,
        currency: this.currency,
      },
    );
  }

  /** Re-stats an image on its backend and corrects its size (billing is split at the correction). */
  async refreshImageSize(actor: Actor, imageId: string): Promise<{ image: Image; task: Task }> {
    requireAdmin(actor);
    const image = await this.ctx.repos.images.get(imageId);
    if (!image || image.status === 'deleted') throw notFound('Image', imageId);
    const task = await createTask(this.ctx, {
      type: 'refresh-size',
      subjectKind: 'image',
      subjectId: image.id,
      accountId: image.accountId,
      hypervisorId: null,
    });
    let updated = image;
    const outcome = await runTask(this.ctx, task.id, new AbortController().signal, async () => {
      const storage = await this.ctx.repos.storages.get(image.storageId);
      if (!storage) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The image storage was removed');
      const disk = await this.drivers.storage(storage, image.hypervisorId);
      // A chunked image's size is the standalone size its manifest names, not the manifest's own size.
      const size = isChunkedStorage(storage)
        ? await chunkStoreOf(this.ctx, storage, disk, image.accountId)
            .readManifest(image.fileKey)
            .then((manifest) => (manifest ? standaloneSize(manifest) : null))
        : ((await disk.stat(image.fileKey))?.size ?? null);
      if (size === null) throw new InstanceImagesError('NOT_FOUND', 'The image file is missing from the storage');
      if (size === image.sizeBytes) return;
      const now = this.ctx.now();
      updated = (await this.ctx.repos.images.update(image.id, { sizeBytes: size }, now)) ?? image;
      if (image.status === 'available') await correctBilledSize(this.ctx, image.id, size, now);
    });
    if (!outcome.ok) throw outcome.error;
    return { image: updated, task: outcome.task };
  }
}
