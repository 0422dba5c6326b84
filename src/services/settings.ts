/**
 * Operator settings: per location the feature switch, price per GB-month and default image cap;
 * per account the cap override. The facade's `settings` namespace also reaches the usage report
 * and the size correction (`usage.ts`) and recovery (`recovery.ts`).
 * @module
 */
import { z } from 'zod';
import type { UsageReport } from '../billing';
import { DecimalStringSchema, IdSchema } from '../model/common';
import type { Image } from '../model/image';
import type { AccountLimit, LocationSettings } from '../model/settings';
import type { Task } from '../model/task';
import { parseOrThrow } from '../util/validate';
import { requireAdmin, type Actor } from './actor';
import type { ServiceContext } from './context';
import type { RecoveryReport, RecoveryService } from './recovery';
import { repriceLocation, type UsageReportQuery, type UsageService } from './usage';

// Where they were before usage.ts existed (the Express adapter imports them from here).
export { UsageReportQuerySchema, type UsageReportQuery } from './usage';

/** Input of {@link SettingsService.setLocationSettings}; omitted fields keep their value. */
export const LocationSettingsInputSchema = z.strictObject({
  imagesEnabled: z.boolean().optional(),
  /** Whether customers may import images from a URL into this location. */
  urlImportEnabled: z.boolean().optional(),
  pricePerGbMonth: DecimalStringSchema.optional(),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be a 3-letter currency code')
    .optional(),
  defaultImageLimit: z.number().int().nonnegative().nullable().optional(),
  /** Default cap of an account's total image bytes in this location; `null`: unlimited. */
  defaultImageBytesLimit: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable().optional(),
});
/** Input of {@link SettingsService.setLocationSettings}. */
export type LocationSettingsInput = z.input<typeof LocationSettingsInputSchema>;

/** Settings; and, as the facade's `settings` namespace, the usage report, size correction and recovery. */
export class SettingsService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly usage: UsageService,
    private readonly recovery: RecoveryService,
    private readonly currency: string,
  ) {}

  /** A location's settings (defaults when never set: disabled, price "0", unlimited). */
  async getLocationSettings(actor: Actor, locationId: string): Promise<LocationSettings> {
    requireAdmin(actor);
    parseOrThrow(IdSchema, locationId, 'The location id');
    return (
      (await this.ctx.repos.settings.getLocation(locationId)) ?? {
        locationId,
        imagesEnabled: false,
        urlImportEnabled: false,
        pricePerGbMonth: '0',
        currency: this.currency,
        defaultImageLimit: null,
        updatedAt: new Date(0),
      }
    );
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
      await repriceLocation(this.ctx, locationId, data.pricePerGbMonth, now);
    }
    return next;
  }

  /**
   * Sets (or with `null` removes) an account's cap override: the number of images and, optionally,
   * their total bytes (each image counts its file size, or its virtual size until the file exists;
   * `null` or omitted: the location's default byte cap).
   */
  async setAccountLimit(
    actor: Actor,
    accountId: string,
    imageLimit: number | null,
    imageBytesLimit: number | null = null,
  ): Promise<AccountLimit | null> {
    requireAdmin(actor);
    parseOrThrow(IdSchema, accountId, 'The account id');
    if (imageLimit === null) {
      await this.ctx.repos.settings.putAccountLimit(accountId, null);
      return null;
    }
    parseOrThrow(z.number().int().nonnegative(), imageLimit, 'The image limit');
    parseOrThrow(z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable(), imageBytesLimit, 'The image bytes limit');
    const limit: AccountLimit = {
      accountId,
      imageLimit,
      ...(imageBytesLimit !== null ? { imageBytesLimit } : {}),
      updatedAt: this.ctx.now(),
    };
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
  usageReport(actor: Actor, query: UsageReportQuery): Promise<UsageReport> {
    return this.usage.usageReport(actor, query);
  }

  /** Re-stats an image on its backend and corrects its size (billing is split at the correction). */
  refreshImageSize(actor: Actor, imageId: string): Promise<{ image: Image; task: Task }> {
    return this.usage.refreshImageSize(actor, imageId);
  }

  /**
   * Start-up recovery: running tasks whose heartbeat lapsed and queued tasks no process keeps
   * alive are failed as interrupted, their images go to `error` and their leftovers are removed;
   * the hypervisor drivers run their recovery. `InstanceImages.recover()` calls it with the tasks
   * this process owns (never failed here); `orphaned` tells tasks known dead whatever their
   * heartbeat (a previous run of this worker), recovered at once.
   */
  recover(knownTaskIds: ReadonlySet<string> = new Set(), orphaned: (task: Task) => boolean = () => false): Promise<RecoveryReport> {
    return this.recovery.recover(knownTaskIds, orphaned);
  }
}
