/**
 * Operator settings (per location: feature switch, price per GB-month, default image cap; per
 * account: cap override), the usage report, admin task tools and start-up recovery.
 * @module
 */
import { z } from 'zod';
import { applyPriceChange, applySizeCorrection, applyUsageChanges, buildUsageReport, type UsageReport } from '../billing';
import { InstanceImagesError, notFound } from '../errors';
import { DecimalStringSchema, IdSchema } from '../model/common';
import type { Image } from '../model/image';
import type { AccountLimit, LocationSettings } from '../model/settings';
import type { Task } from '../model/task';
import { parseOrThrow } from '../util/validate';
import { collectPages, eachPage } from '../util/pages';
import { checkActor, requireAdmin, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import { transitionImage } from './image-state';
import { createTask, runTask } from './task-runner';

/** Input of {@link SettingsService.setLocationSettings}; omitted fields keep their value. */
export const LocationSettingsInputSchema = z.strictObject({
  imagesEnabled: z.boolean().optional(),
  pricePerGbMonth: DecimalStringSchema.optional(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be a 3-letter currency code').optional(),
  defaultImageLimit: z.number().int().nonnegative().nullable().optional(),
});
/** Input of {@link SettingsService.setLocationSettings}. */
export type LocationSettingsInput = z.input<typeof LocationSettingsInputSchema>;

/** Query of {@link SettingsService.usageReport}. */
export const UsageReportQuerySchema = z.strictObject({
  from: z.coerce.date(),
  to: z.coerce.date(),
  /** Admins: one account, or omit for all accounts. Customers: always their own. */
  accountId: IdSchema.optional(),
});
/** Query of {@link SettingsService.usageReport}. */
export type UsageReportQuery = z.input<typeof UsageReportQuerySchema>;

/** What start-up recovery did. */
export interface RecoveryReport {
  /** Tasks failed as interrupted. */
  interruptedTasks: string[];
  /** Images moved to `error` (reason INTERRUPTED). */
  failedImages: string[];
  /** Leftover files removed. */
  removedFiles: string[];
  /** Actions the hypervisor drivers took (aborted jobs, committed overlays). */
  hypervisorActions: string[];
}

/** Settings, the usage report, admin task tools and recovery. */
export class SettingsService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
    private readonly currency: string,
  ) {}

  /** A location's settings (defaults when never set: disabled, price "0", unlimited). */
  async getLocationSettings(actor: Actor, locationId: string): Promise<LocationSettings> {
    requireAdmin(actor);
    parseOrThrow(IdSchema, locationId, 'The location id');
    return (await this.ctx.repos.settings.getLocation(locationId)) ?? { locationId, imagesEnabled: false, pricePerGbMonth: '0', currency: this.currency, defaultImageLimit: null, updatedAt: new Date(0) };
  }

  /** All locations with settings. */
  async listLocationSettings(actor: Actor): Promise<LocationSettings[]> {
    requireAdmin(actor);
    return this.ctx.repos.settings.listLocations();
  }

  /**
   * Changes a location's settings. A price change applies from this moment: open usage intervals
   * of the location are split here.
   */
  async setLocationSettings(actor: Actor, locationId: string, input: LocationSettingsInput): Promise<LocationSettings> {
    const current = await this.getLocationSettings(actor, locationId);
    const data = parseOrThrow(LocationSettingsInputSchema, input, 'The location settings');
    const now = this.ctx.now();
    const next: LocationSettings = {
      ...current,
      ...Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined)),
      updatedAt: now,
    };
    await this.ctx.repos.settings.putLocation(next);
    if (data.pricePerGbMonth !== undefined && data.pricePerGbMonth !== current.pricePerGbMonth) {
      // Intervals opened at the new rate show up in later pages; applyPriceChange leaves them alone.
      for await (const open of eachPage((cursor) => this.ctx.repos.usage.list({ locationId, openOnly: true }, { cursor, limit: 500 }))) {
        const applied = await applyUsageChanges(this.ctx.repos.usage, applyPriceChange({ locationId, rate: data.pricePerGbMonth, at: now, openIntervals: open }, this.ctx.newId));
        for (const interval of applied.closed) this.ctx.events.emit('usage.stopped', { interval });
        for (const interval of applied.opened) this.ctx.events.emit('usage.started', { interval });
      }
    }
    return next;
  }

  /** Sets (or with `null` removes) an account's image cap override. */
  async setAccountLimit(actor: Actor, accountId: string, imageLimit: number | null): Promise<AccountLimit | null> {
    requireAdmin(actor);
    parseOrThrow(IdSchema, accountId, 'The account id');
    if (imageLimit === null) {
      await this.ctx.repos.settings.putAccountLimit(accountId, null);
      return null;
    }
    parseOrThrow(z.number().int().nonnegative(), imageLimit, 'The image limit');
    const limit: AccountLimit = { accountId, imageLimit, updatedAt: this.ctx.now() };
    await this.ctx.repos.settings.putAccountLimit(accountId, limit);
    return limit;
  }

  /** An account's cap override, or null. */
  async getAccountLimit(actor: Actor, accountId: string): Promise<AccountLimit | null> {
    requireAdmin(actor);
    parseOrThrow(IdSchema, accountId, 'The account id');
    return this.ctx.repos.settings.getAccountLimit(accountId);
  }

  /**
   * The usage report's Images section for a period: a customer's own, or (admins) one account's or
   * all accounts'. A period that reaches into the future is cut at the present moment (usage to date).
   */
  async usageReport(actor: Actor, query: UsageReportQuery): Promise<UsageReport> {
    checkActor(actor);
    const q = parseOrThrow(UsageReportQuerySchema, query, 'The report query');
    const accountId = actor.kind === 'customer' ? actor.accountId : q.accountId;
    if (q.to.getTime() <= q.from.getTime()) throw new InstanceImagesError('VALIDATION_FAILED', 'The report period must end after it starts', { fields: [{ path: 'to', message: 'must be after from' }] });
    // Usage is billed up to now: a period reaching into the future is cut at the present moment.
    const now = this.ctx.now();
    const to = q.to.getTime() > now.getTime() ? new Date(Math.max(now.getTime(), q.from.getTime() + 1)) : q.to;
    return buildUsageReport({ usage: this.ctx.repos.usage, images: this.ctx.repos.images }, { ...(accountId ? { accountId } : {}), period: { from: q.from, to }, policy: this.ctx.settings.billingPolicy, currency: this.currency });
  }

  /** Re-stats an image on its backend and corrects its size (billing is split at the correction). */
  async refreshImageSize(actor: Actor, imageId: string): Promise<{ image: Image; task: Task }> {
    requireAdmin(actor);
    const image = await this.ctx.repos.images.get(imageId);
    if (!image || image.status === 'deleted') throw notFound('Image', imageId);
    const task = await createTask(this.ctx, { type: 'refresh-size', subjectKind: 'image', subjectId: image.id, accountId: image.accountId, hypervisorId: null });
    let updated = image;
    const outcome = await runTask(this.ctx, task.id, new AbortController().signal, async () => {
      const storage = await this.ctx.repos.storages.get(image.storageId);
      if (!storage) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The image storage was removed');
      const stat = await (await this.drivers.storage(storage, image.hypervisorId)).stat(image.fileKey);
      if (!stat) throw new InstanceImagesError('NOT_FOUND', 'The image file is missing from the storage');
      if (stat.size === image.sizeBytes) return;
      const now = this.ctx.now();
      updated = (await this.ctx.repos.images.update(image.id, { sizeBytes: stat.size }, now)) ?? image;
      if (image.status === 'available') {
        const open = await this.ctx.repos.usage.list({ imageId: image.id, openOnly: true });
        const applied = await applyUsageChanges(this.ctx.repos.usage, applySizeCorrection({ imageId: image.id, sizeBytes: stat.size, at: now, openIntervals: open.items }, this.ctx.newId));
        for (const interval of applied.closed) this.ctx.events.emit('usage.stopped', { interval });
        for (const interval of applied.opened) this.ctx.events.emit('usage.started', { interval });
      }
    });
    if (!outcome.ok) throw outcome.error;
    return { image: updated, task: outcome.task };
  }

  /**
   * Start-up recovery: running tasks whose heartbeat lapsed and queued tasks no process keeps alive
   * (neither known to this one nor heartbeated by another within the timeout) are failed as
   * interrupted; their images go to `error` (reason INTERRUPTED) and their leftovers are removed;
   * each hypervisor of those tasks runs its driver's recovery, unless a live task (another panel
   * process sharing the repositories) is running there. Safe to call from every process.
   */
  async recover(knownTaskIds: ReadonlySet<string> = new Set()): Promise<RecoveryReport> {
    const report: RecoveryReport = { interruptedTasks: [], failedImages: [], removedFiles: [], hypervisorActions: [] };
    const now = this.ctx.now();
    const cutoff = now.getTime() - this.ctx.settings.heartbeatTimeoutMs;
    const lapsed = (task: Task): boolean => (task.heartbeatAt ?? task.createdAt).getTime() < cutoff;
    const stale = await this.ctx.repos.tasks.listStale(new Date(cutoff));
    const queued = (await collectPages((cursor) => this.ctx.repos.tasks.list({ statuses: ['queued'] }, { cursor, limit: 500 }))).filter((t) => !knownTaskIds.has(t.id) && lapsed(t));
    const hypervisors = new Set<string>();
    /** Per hypervisor, the domains of the interrupted captures (for a scoped recovery). */
    const domains = new Map<string, Set<string>>();
    for (const task of [...stale, ...queued]) {
      const ended = await this.ctx.repos.tasks.transition(task.id, ['running', 'queued'], 'failed', { finishedAt: now, errorCode: 'INTERRUPTED', errorMessage: 'The task was interrupted by a restart of the panel' }, now);
      if (!ended) continue;
      report.interruptedTasks.push(task.id);
      this.ctx.events.emit('task.finished', { task: ended });
      if (task.hypervisorId) hypervisors.add(task.hypervisorId);
      if (task.subjectKind !== 'image') continue;
      const image = await this.ctx.repos.images.get(task.subjectId);
      if (!image) continue;
      if (task.type === 'capture' && task.hypervisorId && image.sourceInstanceId) {
        const instance = await this.ctx.host.getInstance(image.sourceInstanceId).catch(() => null);
        if (instance) domains.set(task.hypervisorId, (domains.get(task.hypervisorId) ?? new Set()).add(instance.domainName));
      }
      if (task.type === 'capture' && image.status === 'creating') {
        const storage = await this.ctx.repos.storages.get(image.storageId);
        if (storage) {
          try {
            await (await this.drivers.storage(storage, task.hypervisorId)).delete(image.fileKey);
            report.removedFiles.push(image.fileKey);
          } catch (error) {
            this.ctx.logger.warn('recovery could not remove a leftover', { imageId: image.id, error: String(error) });
          }
        }
        await transitionImage(this.ctx, image, 'error', {}, 'system', { code: 'INTERRUPTED', message: 'The capture was interrupted by a restart of the panel. Retry the capture.' }).catch(() => undefined);
        report.failedImages.push(image.id);
      } else if (task.type === 'delete' && image.status === 'deleting') {
        await transitionImage(this.ctx, image, 'error', {}, 'system', { code: 'DELETE_FAILED', message: 'Deleting was interrupted by a restart of the panel. Delete the image again.' }).catch(() => undefined);
        report.failedImages.push(image.id);
      }
    }
    // Images left in a transient status without any live task (e.g. a crash between inserting the
    // image and its task) would otherwise stay there forever.
    for (const [status, type] of [['creating', 'capture'], ['deleting', 'delete']] as const) {
      for await (const images of eachPage((cursor) => this.ctx.repos.images.list({ statuses: [status] }, { cursor, limit: 500 }))) {
        for (const image of images) {
          const active = await this.ctx.repos.tasks.list({ subjectId: image.id, type, statuses: ['queued', 'running'] }, { limit: 1 });
          // A very recent image may be another process's, between inserting it and its task.
          if (active.items.length > 0 || report.failedImages.includes(image.id) || image.updatedAt.getTime() >= cutoff) continue;
          const reason = status === 'creating'
            ? { code: 'INTERRUPTED', message: 'The capture was interrupted by a restart of the panel. Retry the capture.' }
            : { code: 'DELETE_FAILED', message: 'Deleting was interrupted by a restart of the panel. Delete the image again.' };
          const moved = await transitionImage(this.ctx, image, 'error', {}, 'system', reason).then(() => true, () => false);
          if (moved) report.failedImages.push(image.id);
        }
      }
    }
    // Another live process capturing there would lose its backup job and scratch files.
    const busy = new Set((await collectPages((cursor) => this.ctx.repos.tasks.list({ statuses: ['running'] }, { cursor, limit: 500 }))).filter((t) => !lapsed(t)).map((t) => t.hypervisorId));
    for (const hypervisorId of hypervisors) {
      // With a live task there, only the interrupted captures' own domains are recovered.
      const scope = busy.has(hypervisorId) ? [...(domains.get(hypervisorId) ?? [])] : [undefined];
      if (scope.length === 0) report.hypervisorActions.push(`${hypervisorId}: skipped (a live task of another process runs there and the interrupted domain is unknown)`);
      try {
        const driver = await this.drivers.hypervisorDriver(hypervisorId);
        for (const domainName of scope) {
          const actions = await driver.recover(domainName);
          report.hypervisorActions.push(...actions.map((a) => `${hypervisorId}: ${a.action} ${a.detail}`));
        }
      } catch (error) {
        this.ctx.logger.warn('hypervisor recovery failed', { hypervisorId, error: String(error) });
      }
    }
    return report;
  }
}
