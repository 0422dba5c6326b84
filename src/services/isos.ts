/**
 * ISOs: registered or uploaded to a template storage (operator), listed, and mounted to an own
 * instance as its cdrom (customer).
 * @module
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import { DescriptionSchema, IdSchema, NameSchema, type Page } from '../model/common';
import type { Iso } from '../model/iso';
import { parseOrThrow } from '../util/validate';
import { checkActor, requireAdmin, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import type { ImageService } from './images';
import { createTask, runTask } from './task-runner';
import type { TemplateFiles } from './template-files';
import { draft, recordEvents } from './outbox-events';

/** Input of `CatalogService.registerIso` and `CatalogService.uploadIso`. */
export const IsoInputSchema = z.strictObject({
  name: NameSchema,
  description: DescriptionSchema.optional(),
  storageId: IdSchema,
  /** For per-hypervisor storages: the hypervisor holding the file. */
  hypervisorId: IdSchema.nullish(),
  fileKey: z.string().min(1).max(1024),
  customerVisible: z.boolean().default(true),
});
/** Input of ISO registration/upload. */
export type IsoInput = z.input<typeof IsoInputSchema>;

/** Input of `CatalogService.updateIso`. */
export const UpdateIsoInputSchema = z.strictObject({
  name: NameSchema.optional(),
  description: DescriptionSchema.optional(),
  customerVisible: z.boolean().optional(),
});
/** Input of `CatalogService.updateIso`. */
export type UpdateIsoInput = z.input<typeof UpdateIsoInputSchema>;

/** ISOs and ISO mounting. Reached through `InstanceImages.catalog`. */
export class IsoService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
    private readonly images: ImageService,
    private readonly templates: TemplateFiles,
  ) {}

  /** Lists ISOs (customers: visible and available ones). */
  async listIsos(actor: Actor, query: { cursor?: string | null; limit?: number } = {}): Promise<Page<Iso>> {
    checkActor(actor);
    return this.ctx.repos.isos.list(actor.kind === 'customer' ? { customerVisible: true, status: 'available' } : {}, {
      cursor: query.cursor ?? null,
      limit: query.limit ?? 50,
    });
  }

  /** One ISO the actor may see. */
  async getIso(actor: Actor, isoId: string): Promise<Iso> {
    checkActor(actor);
    parseOrThrow(IdSchema, isoId, 'The ISO id');
    const iso = await this.ctx.repos.isos.get(isoId);
    if (!iso || (actor.kind === 'customer' && (!iso.customerVisible || iso.status !== 'available'))) throw notFound('ISO', isoId);
    return iso;
  }

  /** A new ISO record of `data` on a template storage (registered or being uploaded). */
  private newIso(
    data: z.output<typeof IsoInputSchema>,
    storageId: string,
    fileKey: string,
    state: Pick<Iso, 'sizeBytes' | 'sha256' | 'status'>,
  ): Iso {
    const now = this.ctx.now();
    return {
      id: this.ctx.newId(),
      name: data.name,
      description: data.description ?? '',
      storageId,
      fileKey,
      ...state,
      customerVisible: data.customerVisible,
      statusReason: null,
      createdAt: now,
      updatedAt: now,
    };
  }

  /** Registers an ISO file already on a template storage (size and checksum recorded). */
  async registerIso(actor: Actor, input: IsoInput): Promise<Iso> {
    requireAdmin(actor);
    const data = parseOrThrow(IsoInputSchema, input, 'The ISO');
    const { storage, disk, fileKey } = await this.templates.file(data);
    const { size, sha256 } = await this.templates.measure(disk, fileKey);
    const iso = this.newIso(data, storage.id, fileKey, { sizeBytes: size, sha256, status: 'available' });
    await this.ctx.repos.isos.insert(iso);
    return iso;
  }

  /** Uploads an ISO: streams `body` to the template storage (checksum computed, progress as an `iso-upload` task). */
  async uploadIso(actor: Actor, input: IsoInput, body: Readable, options: { sizeBytes?: number; signal?: AbortSignal } = {}): Promise<Iso> {
    requireAdmin(actor);
    const data = parseOrThrow(IsoInputSchema, input, 'The ISO');
    const { storage, disk, fileKey } = await this.templates.file(data);
    const iso = this.newIso(data, storage.id, fileKey, { sizeBytes: null, sha256: null, status: 'uploading' });
    await this.ctx.repos.isos.insert(iso);
    const task = await createTask(this.ctx, {
      type: 'iso-upload',
      subjectKind: 'iso',
      subjectId: iso.id,
      accountId: null,
      hypervisorId: null,
    });
    const controller = new AbortController();
    options.signal?.addEventListener('abort', () => controller.abort(), { once: true });
    let written: { size: number; sha256: string } | null = null;
    const outcome = await runTask(this.ctx, task.id, controller.signal, async ({ progress }) => {
      written = await disk.put(fileKey, body, {
        ...(options.sizeBytes ? { size: options.sizeBytes } : {}),
        signal: controller.signal,
        onProgress: (p) => progress({ step: 'uploading', bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
      });
    });
    const result = written as { size: number; sha256: string } | null;
    if (!outcome.ok || !result) {
      body.resume();
      await this.ctx.repos.isos.update(
        iso.id,
        {
          status: 'error',
          statusReason: {
            code: outcome.ok ? 'STORAGE_UNAVAILABLE' : outcome.error.code,
            message: outcome.ok ? 'Upload failed' : outcome.error.message,
          },
        },
        this.ctx.now(),
      );
      throw outcome.ok ? new InstanceImagesError('STORAGE_UNAVAILABLE', 'The ISO upload failed') : outcome.error;
    }
    const updated = await this.ctx.repos.isos.update(
      iso.id,
      { status: 'available', sizeBytes: result.size, sha256: result.sha256 },
      this.ctx.now(),
    );
    if (!updated) throw notFound('ISO', iso.id);
    return updated;
  }

  /** Edits an ISO's name, description or visibility. */
  async updateIso(actor: Actor, isoId: string, input: UpdateIsoInput): Promise<Iso> {
    requireAdmin(actor);
    const data = parseOrThrow(UpdateIsoInputSchema, input, 'The ISO');
    const patch = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
    const updated = await this.ctx.repos.isos.update(isoId, patch, this.ctx.now());
    if (!updated) throw notFound('ISO', isoId);
    return updated;
  }

  /** Deletes an ISO record; with `deleteFile`, also its file on the storage. */
  async deleteIso(actor: Actor, isoId: string, options: { deleteFile?: boolean; hypervisorId?: string } = {}): Promise<void> {
    requireAdmin(actor);
    const iso = await this.ctx.repos.isos.get(isoId);
    if (!iso) throw notFound('ISO', isoId);
    if (options.deleteFile) {
      const storage = await this.ctx.repos.storages.get(iso.storageId);
      if (storage) await (await this.drivers.storage(storage, options.hypervisorId)).delete(iso.fileKey);
    }
    await this.ctx.repos.isos.delete(isoId);
  }

  /** Mounts a visible ISO to an own instance as its cdrom and boots from it. */
  async mountIso(actor: Actor, input: { instanceId: string; isoId: string }): Promise<void> {
    const instance = await this.images.instanceFor(actor, input.instanceId);
    const iso = await this.getIso(actor, input.isoId);
    if (iso.status !== 'available') throw new InstanceImagesError('INVALID_STATE', 'The ISO is not available');
    const storage = await this.ctx.repos.storages.get(iso.storageId);
    if (!storage) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The ISO storage was removed');
    const disk = await this.drivers.storage(storage, instance.hypervisorId);
    if (!disk.capabilities.pathAccess)
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        'This ISO lives on a storage the hypervisor cannot read directly; ask your provider to keep ISOs on local or NFS storage',
      );
    const hv = await this.drivers.hypervisorDriver(instance.hypervisorId);
    const isoFile = disk.storagePath(iso.fileKey);
    await hv.attachIso(instance.domainName, isoFile.path, isoFile.root === undefined ? {} : { root: isoFile.root });
    // No repository write to record it with: the change is the hypervisor's, so the event follows it.
    await recordEvents(this.ctx, [
      draft('iso.mounted', instance.id, { isoId: iso.id, instanceId: instance.id, accountId: instance.accountId }),
    ]);
  }

  /** Unmounts the ISO from an own instance and restores disk-first boot (idempotent). */
  async unmountIso(actor: Actor, input: { instanceId: string }): Promise<void> {
    const instance = await this.images.instanceFor(actor, input.instanceId);
    const hv = await this.drivers.hypervisorDriver(instance.hypervisorId);
    await hv.detachIso(instance.domainName);
    await recordEvents(this.ctx, [
      draft('iso.unmounted', instance.id, { isoId: null, instanceId: instance.id, accountId: instance.accountId }),
    ]);
  }
}
