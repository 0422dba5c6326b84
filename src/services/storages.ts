/**
 * Operator workflows of Image Storages: create/update/delete with driver config validated by the
 * driver's schema (secrets masked in every answer), bindings to hypervisors, health, the image
 * browser and reconcile.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import type { ReconcileFinding } from '../events';
import { IdSchema, NameSchema } from '../model/common';
import type { Image } from '../model/image';
import {
  ChunkLayoutSchema,
  StorageLayoutSchema,
  StoragePurposeSchema,
  type ImageStorage,
  type StorageBinding,
} from '../model/image-storage';
import type { StoredObject } from '../ports/storage-driver';
import { parseOrThrow } from '../util/validate';
import { collectPages, eachPage } from '../util/pages';
import { MASKED_SECRET } from '../storage';
import { requireAdmin, type Actor } from './actor';
import { ChunkedStorageService, checkStorageLayout, isChunkDataKey, type ChunkGcOptions, type ChunkStorageStats } from './chunked-storage';
import type { Task } from '../model/task';
import type { DriverCache, ServiceContext } from './context';
import { transitionImage } from './image-state';
import { stopBilling } from './usage';
import { importKeyBase, isImportKey } from './import-leftovers';
import { draft, recordEvents } from './outbox-events';
import { failureReason } from '../messages';

/** Input of {@link StorageService.createStorage}. */
export const CreateStorageInputSchema = z.strictObject({
  name: NameSchema,
  driver: z.string().min(1).max(50),
  config: z.record(z.string(), z.unknown()),
  purpose: StoragePurposeSchema.default('custom-images'),
  enabled: z.boolean().default(true),
  /** `chunks`: deduplicated, incremental captures (custom-images storages without path access, e.g. S3). @default 'files' */
  layout: StorageLayoutSchema.default('files'),
  /** The chunked layout's settings (defaults: storage-wide dedup, no compression, 4 MiB chunks). */
  chunks: ChunkLayoutSchema.optional(),
});
/** Input of {@link StorageService.createStorage}. */
export type CreateStorageInput = z.input<typeof CreateStorageInputSchema>;

/** Input of {@link StorageService.updateStorage}. A masked secret (`********`) keeps the stored value. */
export const UpdateStorageInputSchema = z.strictObject({
  name: NameSchema.optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  enabled: z.boolean().optional(),
  /** Only while the storage holds no image (IN_USE otherwise). */
  layout: StorageLayoutSchema.optional(),
  /** New settings of the chunked layout; they apply to new captures, stored images keep theirs. */
  chunks: ChunkLayoutSchema.optional(),
});
/** Input of {@link StorageService.updateStorage}. */
export type UpdateStorageInput = z.input<typeof UpdateStorageInputSchema>;

/** A storage as answered to callers: secrets masked, with its bindings. */
export interface StorageView extends ImageStorage {
  /** Hypervisors the storage is bound to. */
  hypervisorIds: string[];
}

/** One file of the image browser, classified against the database. */
export interface BrowsedFile {
  key: string;
  size: number;
  modifiedAt: Date;
  /**
   * ok (a record points at it, or it is a work file of a running import), orphan (no record),
   * stale (its source instance is gone), size-mismatch.
   */
  kind: 'ok' | 'orphan' | 'stale' | 'size-mismatch';
  imageId: string | null;
  /**
   * The running task the file belongs to: a work file of an import (received, part, fetch files) or
   * the part file of a capture; absent otherwise.
   */
  taskId?: string;
  message: string;
}

/** An import or capture that runs (its task queued or running, its heartbeat fresh) and writes into a storage. */
interface LiveWork {
  taskId: string;
  kind: 'import' | 'capture';
  /** Whether a file or incomplete upload of the storage is one it writes. */
  owns(key: string): boolean;
  /** The custom image it makes (null for a stock image, recorded only once complete). */
  imageId: string | null;
}

/** Everything that may claim a file of a storage: image and ISO records by file key, and the imports writing there. */
interface StorageRecords {
  images: Map<string, Image[]>;
  isos: Map<string, string>;
  work: LiveWork[];
}

/** Options of {@link StorageService.reconcile}. */
export const ReconcileOptionsSchema = z.strictObject({
  /** For per-hypervisor storages: the hypervisor whose directory is inspected. */
  hypervisorId: IdSchema.nullish(),
  /** Delete orphan files (no record). */
  deleteOrphans: z.boolean().default(false),
  /** Remove temp files and incomplete uploads older than the leftover age. */
  deleteLeftovers: z.boolean().default(false),
  /** Mark images whose file is missing as `error`. */
  markMissing: z.boolean().default(false),
  /** Only report what would be done. @default true */
  dryRun: z.boolean().default(true),
});
/** Options of {@link StorageService.reconcile}. */
export type ReconcileOptions = z.input<typeof ReconcileOptionsSchema>;

function restoreMaskedSecrets(next: Record<string, unknown>, previous: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(next)) {
    if (value === MASKED_SECRET && key in previous) out[key] = previous[key];
    else if (value && typeof value === 'object' && !Array.isArray(value) && previous[key] && typeof previous[key] === 'object')
      out[key] = restoreMaskedSecrets(value as Record<string, unknown>, previous[key] as Record<string, unknown>);
    else out[key] = value;
  }
  return out;
}

/** Image storages, bindings, health, browser and reconcile. */
export class StorageService {
  private readonly chunked: ChunkedStorageService;

  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
  ) {
    this.chunked = new ChunkedStorageService(ctx, drivers);
  }

  private async view(storage: ImageStorage): Promise<StorageView> {
    const bindings = await this.ctx.repos.storages.listBindings({ storageId: storage.id });
    return {
      ...storage,
      config: this.ctx.registry.maskSecrets(storage.driver, storage.config),
      hypervisorIds: bindings.map((b) => b.hypervisorId),
    };
  }

  private async load(storageId: string): Promise<ImageStorage> {
    const storage = await this.ctx.repos.storages.get(storageId);
    if (!storage) throw notFound('Image storage', storageId);
    return storage;
  }

  /** Lists storages (secrets masked). */
  async listStorages(actor: Actor, filter: { purpose?: ImageStorage['purpose'] } = {}): Promise<StorageView[]> {
    requireAdmin(actor);
    return Promise.all((await this.ctx.repos.storages.list(filter)).map((s) => this.view(s)));
  }

  /** One storage (secrets masked). */
  async getStorage(actor: Actor, storageId: string): Promise<StorageView> {
    requireAdmin(actor);
    return this.view(await this.load(storageId));
  }

  /** Creates a storage; the config is validated by the driver's schema (VALIDATION_FAILED names `config.<field>`). */
  async createStorage(actor: Actor, input: CreateStorageInput): Promise<StorageView> {
    requireAdmin(actor);
    const data = parseOrThrow(CreateStorageInputSchema, input, 'The image storage');
    this.ctx.registry.validateConfig(data.driver, data.config);
    const layout = checkStorageLayout(this.ctx.registry.get(data.driver).capabilities, data.purpose, data.layout, data.chunks);
    const now = this.ctx.now();
    const { name, driver, config, purpose, enabled } = data;
    const storage: ImageStorage = {
      id: this.ctx.newId(),
      name,
      driver,
      config,
      purpose,
      enabled,
      ...layout,
      createdAt: now,
      updatedAt: now,
    };
    await this.ctx.repos.storages.insert(storage);
    return this.view(storage);
  }

  /** Updates a storage (masked secrets keep their stored value). */
  async updateStorage(actor: Actor, storageId: string, input: UpdateStorageInput): Promise<StorageView> {
    requireAdmin(actor);
    const data = parseOrThrow(UpdateStorageInputSchema, input, 'The image storage');
    const storage = await this.load(storageId);
    const config = data.config ? restoreMaskedSecrets(data.config, storage.config) : undefined;
    if (config && data.config) {
      // A kept (masked) secret is only reused for the same destination: changing any other setting
      // (endpoint, bucket, server...) requires entering the secret again, so a stored secret is
      // never sent somewhere new.
      const maskedKept = JSON.stringify(data.config).includes(JSON.stringify(MASKED_SECRET));
      const others = (c: Record<string, unknown>) =>
        JSON.stringify(this.ctx.registry.maskSecrets(storage.driver, c), Object.keys(c).sort());
      if (maskedKept && others(config) !== others(storage.config)) {
        const secrets = this.ctx.registry.get(storage.driver).secretFields;
        throw new InstanceImagesError('VALIDATION_FAILED', 'Enter the secret again when changing the other connection settings', {
          fields: secrets.map((path) => ({ path: `config.${path}`, message: 'must be entered again when other settings change' })),
        });
      }
      this.ctx.registry.validateConfig(storage.driver, config);
    }
    let layout: Pick<ImageStorage, 'layout' | 'chunks'> = {};
    if (data.layout !== undefined || data.chunks !== undefined) {
      const next = data.layout ?? storage.layout ?? 'files';
      layout = checkStorageLayout(this.ctx.registry.get(storage.driver).capabilities, storage.purpose, next, data.chunks ?? storage.chunks);
      if (next !== (storage.layout ?? 'files') && (await this.anyImageOn(storageId)))
        throw new InstanceImagesError('IN_USE', 'The layout of a storage that holds images cannot change; use a new storage instead');
    }
    const updated = await this.ctx.repos.storages.update(
      storageId,
      {
        ...(data.name ? { name: data.name } : {}),
        ...(data.enabled !== undefined ? { enabled: data.enabled } : {}),
        ...(config ? { config } : {}),
        ...layout,
      },
      this.ctx.now(),
    );
    if (!updated) throw notFound('Image storage', storageId);
    return this.view(updated);
  }

  /** Whether any image (not deleted) on the storage matches `predicate`; pages through all of them. */
  private async anyImageOn(storageId: string, predicate: (image: Image) => boolean = () => true): Promise<boolean> {
    for await (const images of eachPage((cursor) => this.ctx.repos.images.list({ storageId }, { cursor, limit: 1000 }))) {
      if (images.some(predicate)) return true;
    }
    return false;
  }

  /** Deletes a storage; IN_USE while images or ISOs still live on it. */
  async deleteStorage(actor: Actor, storageId: string): Promise<void> {
    requireAdmin(actor);
    await this.load(storageId);
    if (await this.anyImageOn(storageId)) throw new InstanceImagesError('IN_USE', 'Images still live on this storage; delete them first');
    if ((await this.ctx.repos.isos.list({ storageId }, { limit: 1 })).items.length > 0)
      throw new InstanceImagesError('IN_USE', 'ISOs still live on this storage; delete them first');
    await this.ctx.repos.storages.delete(storageId);
  }

  /** Binds a storage to a hypervisor (idempotent). */
  async bindHypervisor(actor: Actor, storageId: string, hypervisorId: string): Promise<StorageBinding> {
    requireAdmin(actor);
    parseOrThrow(IdSchema, hypervisorId, 'The hypervisor id');
    await this.load(storageId);
    if (!(await this.ctx.host.getHypervisor(hypervisorId))) throw notFound('Hypervisor', hypervisorId);
    return this.ctx.repos.storages.bind(storageId, hypervisorId, this.ctx.now());
  }

  /** Unbinds; IN_USE while images on this storage live on that hypervisor (or it is a shared storage's last binding with images). */
  async unbindHypervisor(actor: Actor, storageId: string, hypervisorId: string): Promise<void> {
    requireAdmin(actor);
    const storage = await this.load(storageId);
    const shared = this.ctx.registry.get(storage.driver).capabilities.shared;
    const bindings = await this.ctx.repos.storages.listBindings({ storageId });
    const blocking = shared
      ? bindings.length <= 1 && (await this.anyImageOn(storageId))
      : await this.anyImageOn(storageId, (i) => i.hypervisorId === hypervisorId);
    if (blocking) throw new InstanceImagesError('IN_USE', 'Images on this storage are reached through this hypervisor; delete them first');
    if (!(await this.ctx.repos.storages.unbind(storageId, hypervisorId))) throw notFound('Binding', `${storageId}/${hypervisorId}`);
  }

  /** Checks a storage (through a bound hypervisor for path drivers). Never throws for an unhealthy backend. */
  async checkHealth(
    actor: Actor,
    storageId: string,
    hypervisorId?: string,
  ): Promise<{ ok: boolean; message: string; freeBytes: number | null; chunks?: ChunkStorageStats }> {
    requireAdmin(actor);
    const storage = await this.load(storageId);
    try {
      const disk = await this.drivers.storage(storage, hypervisorId);
      const health = await disk.health();
      const freeBytes = health.ok ? await disk.freeSpace().catch(() => null) : null;
      const chunks = health.ok ? await this.chunked.stats(storage) : null;
      return { ...health, freeBytes, ...(chunks ? { chunks } : {}) };
    } catch (error) {
      return { ok: false, message: error instanceof Error ? error.message : 'The storage could not be checked', freeBytes: null };
    }
  }

  /**
   * The imports and captures that write into a storage while they run: queued or running tasks
   * whose heartbeat is fresh (a task whose worker died is not; what it left is an orphan, or
   * recovery's). An import writes files named after its key base; a capture writes its image's
   * file key (an incomplete upload) or `<file key>.part` (a path storage), renamed when complete.
   */
  private async liveWorkOn(storageId: string): Promise<LiveWork[]> {
    const cutoff = this.ctx.now().getTime() - this.ctx.settings.heartbeatTimeoutMs;
    const live: LiveWork[] = [];
    for (const type of ['import', 'capture'] as const) {
      const tasks = await collectPages((cursor) =>
        this.ctx.repos.tasks.list({ type, statuses: ['queued', 'running'] }, { cursor, limit: 500 }),
      );
      for (const task of tasks) {
        if ((task.heartbeatAt ?? task.createdAt).getTime() < cutoff || task.subjectKind !== 'image') continue;
        const image = await this.ctx.repos.images.get(task.subjectId);
        // Tasks recorded before they named their storage: a custom image names it.
        if ((task.storageId ?? image?.storageId) !== storageId) continue;
        if (type === 'import') {
          const keyBase = importKeyBase(task, image);
          live.push({
            taskId: task.id,
            kind: type,
            owns: (key) => isImportKey(key, keyBase),
            imageId: image?.kind === 'custom' ? image.id : null,
          });
        } else if (image) {
          const { fileKey } = image;
          live.push({ taskId: task.id, kind: type, owns: (key) => key === fileKey || key === `${fileKey}.part`, imageId: image.id });
        }
      }
    }
    return live;
  }

  /** Every record pointing into a storage, by file key (paged through once per browse/reconcile), and the imports writing there. */
  private async recordsOf(storageId: string): Promise<StorageRecords> {
    const images = new Map<string, Image[]>();
    for await (const page of eachPage((cursor) => this.ctx.repos.images.list({ storageId }, { cursor, limit: 1000 }))) {
      for (const image of page) images.set(image.fileKey, [...(images.get(image.fileKey) ?? []), image]);
    }
    const isos = new Map<string, string>();
    for await (const page of eachPage((cursor) => this.ctx.repos.isos.list({ storageId }, { cursor, limit: 1000 }))) {
      for (const iso of page) isos.set(iso.fileKey, iso.name);
    }
    return { images, isos, work: await this.liveWorkOn(storageId) };
  }

  private async classify(records: StorageRecords, files: StoredObject[], hypervisorId: string | null): Promise<BrowsedFile[]> {
    const out: BrowsedFile[] = [];
    for (const file of files) {
      if (isChunkDataKey(file.key)) {
        // Chunks, leases and the GC marker belong to the manifests (summarized in health and browse; GC collects unnamed chunks).
        out.push({ ...file, kind: 'ok', imageId: null, message: 'Data of the chunked layout' });
        continue;
      }
      const image = (records.images.get(file.key) ?? []).find(
        (i) => i.hypervisorId === null || hypervisorId === null || i.hypervisorId === hypervisorId,
      );
      const isoName = image ? undefined : records.isos.get(file.key);
      const work = image || isoName !== undefined ? undefined : records.work.find((live) => live.owns(file.key));
      if (work) {
        // Received, part and fetch files of an import, the part file of a capture: never an orphan while its task runs.
        out.push({
          ...file,
          kind: 'ok',
          imageId: work.imageId,
          taskId: work.taskId,
          message:
            work.kind === 'import'
              ? `A work file of the running import task ${work.taskId}`
              : `The part file of the running capture task ${work.taskId}`,
        });
      } else if (!image && isoName === undefined) {
        out.push({ ...file, kind: 'orphan', imageId: null, message: 'No image or ISO record points at this file' });
      } else if (image && image.kind === 'custom' && image.sourceInstanceId && !(await this.ctx.host.getInstance(image.sourceInstanceId))) {
        out.push({ ...file, kind: 'stale', imageId: image.id, message: `The source instance ${image.sourceInstanceId} no longer exists` });
      } else if (
        image &&
        image.status === 'available' &&
        image.sizeBytes !== null &&
        image.sizeBytes !== file.size &&
        // A manifest is small; the image's size is that of its chunks.
        !file.key.endsWith('.manifest.json')
      ) {
        out.push({
          ...file,
          kind: 'size-mismatch',
          imageId: image.id,
          message: `The record says ${image.sizeBytes} bytes, the file has ${file.size}`,
        });
      } else {
        out.push({ ...file, kind: 'ok', imageId: image?.id ?? null, message: image ? `Image ${image.name}` : `ISO ${isoName ?? ''}` });
      }
    }
    return out;
  }

  /**
   * The image browser: a page of the files really on a storage, each matched with its record and
   * classified; the work files of an import that runs (received, part, fetch files) are `ok`, with
   * its `taskId`, until its task ends or its worker's heartbeat lapses. On a chunked storage the manifests are the images, chunks and leases are `ok` data
   * of the layout, and the first page carries the storage's chunk statistics.
   */
  async browse(
    actor: Actor,
    storageId: string,
    options: { hypervisorId?: string | null; prefix?: string; cursor?: string | null; limit?: number } = {},
  ): Promise<{ items: BrowsedFile[]; nextCursor: string | null; chunks?: ChunkStorageStats }> {
    requireAdmin(actor);
    const storage = await this.load(storageId);
    const hv = await this.drivers.viaHypervisor(storage, options.hypervisorId);
    const disk = await this.drivers.storage(storage, hv);
    const page = await disk.list({
      ...(options.prefix ? { prefix: options.prefix } : {}),
      cursor: options.cursor ?? null,
      limit: options.limit ?? 100,
    });
    const items = await this.classify(await this.recordsOf(storage.id), page.items, hv);
    const chunks = options.cursor ? null : await this.chunked.stats(storage);
    return { items, nextCursor: page.nextCursor, ...(chunks ? { chunks } : {}) };
  }

  /**
   * Scans a whole storage and reports every finding: orphans, stale, size mismatches, missing files
   * (a record without its file) and leftovers (temp files/incomplete uploads older than the leftover
   * age). The files and incomplete uploads of an import that runs are none of these: they are
   * neither reported nor deleted while it runs. With fixes chosen (and `dryRun: false`), applies them. Every finding is emitted as a
   * `reconcile.finding` event. Dry run by default.
   */
  async reconcile(actor: Actor, storageId: string, options: ReconcileOptions = {}): Promise<ReconcileFinding[]> {
    requireAdmin(actor);
    const opts = parseOrThrow(ReconcileOptionsSchema, options, 'The reconcile options');
    const storage = await this.load(storageId);
    const hv = await this.drivers.viaHypervisor(storage, opts.hypervisorId);
    const disk = await this.drivers.storage(storage, hv);
    const findings: ReconcileFinding[] = [];
    const seen = new Set<string>();
    const records = await this.recordsOf(storage.id);
    const orphans: { file: BrowsedFile; finding: ReconcileFinding }[] = [];
    for await (const files of eachPage((cursor) => disk.list({ cursor, limit: 500 }))) {
      for (const file of await this.classify(records, files, hv)) {
        seen.add(file.key);
        if (file.kind === 'ok') continue;
        let action: ReconcileFinding['action'] = 'none';
        if (file.kind === 'orphan' && opts.deleteOrphans) action = 'deleted-file';
        const finding: ReconcileFinding = {
          storageId,
          hypervisorId: hv,
          kind: file.kind,
          key: file.key,
          imageId: file.imageId,
          message: file.message,
          action,
          dryRun: opts.dryRun,
        };
        findings.push(finding);
        if (action === 'deleted-file' && !opts.dryRun) orphans.push({ file, finding });
      }
    }
    if (orphans.length > 0) {
      // Records are written before their files: re-read them after listing, so a file whose capture
      // or upload started during the scan is never taken for an orphan.
      const fresh = await this.recordsOf(storage.id);
      for (const { file, finding } of orphans) {
        const [now] = await this.classify(fresh, [file], hv);
        if (now?.kind === 'orphan') await disk.delete(file.key);
        else
          Object.assign(finding, {
            kind: now?.kind ?? finding.kind,
            imageId: now?.imageId ?? null,
            message: 'A record now points at this file; it was kept',
            action: 'none',
          });
      }
    }

    const expected = [...records.images.values()]
      .flat()
      .filter(
        (i) => (i.status === 'available' || i.status === 'error') && (i.hypervisorId === null || hv === null || i.hypervisorId === hv),
      );
    /** Findings whose event was recorded with the write they caused. */
    const recorded = new Set<ReconcileFinding>();
    for (const image of expected) {
      if (seen.has(image.fileKey) || (image.status === 'error' && image.sizeBytes === null)) continue;
      const finding: ReconcileFinding = {
        storageId,
        hypervisorId: hv,
        kind: 'missing',
        key: image.fileKey,
        imageId: image.id,
        message: `The file of image ${image.name} is missing`,
        action: opts.markMissing && image.status === 'available' ? 'marked-error' : 'none',
        dryRun: opts.dryRun,
      };
      if (finding.action === 'marked-error' && !opts.dryRun) {
        // available -> deleting -> error: the lifecycle has no direct edge, and billing must stop for a file that is gone.
        const deleting = await transitionImage(this.ctx, image, 'deleting', {}, actor);
        await stopBilling(this.ctx, image.id, deleting.updatedAt);
        // The finding is recorded with the move to error it caused.
        await transitionImage(this.ctx, deleting, 'error', {}, actor, failureReason('storage', 'MISSING_FILE'), () => [
          draft('reconcile.finding', storageId, { finding }),
        ]);
        recorded.add(finding);
      }
      findings.push(finding);
    }

    const olderThan = new Date(this.ctx.now().getTime() - this.ctx.settings.leftoverAgeMs);
    // An import or capture that runs long keeps its multipart upload or part file, however old.
    const work = await this.liveWorkOn(storage.id);
    for (const upload of await disk.listIncomplete({ olderThan })) {
      if (work.some((live) => live.owns(upload.key))) continue;
      let action: ReconcileFinding['action'] = 'none';
      if (opts.deleteLeftovers) {
        action = 'deleted-file';
        if (!opts.dryRun) await disk.abortIncomplete(upload);
      }
      findings.push({
        storageId,
        hypervisorId: hv,
        kind: 'leftover',
        key: upload.key,
        imageId: null,
        message: `An incomplete upload or temp file (${upload.id}) was left behind`,
        action,
        dryRun: opts.dryRun,
      });
    }
    // Findings that changed no record (a report, or files the storage removed) are recorded on their own.
    await recordEvents(
      this.ctx,
      findings.filter((finding) => !recorded.has(finding)).map((finding) => draft('reconcile.finding', finding.storageId, { finding })),
    );
    return findings;
  }

  /**
   * Starts garbage collection of a chunked storage (a `chunk-gc` task; the running one when there
   * is one): chunks no manifest and no running capture or deploy names are deleted.
   * @throws INVALID_STATE for a storage that keeps files.
   */
  async collectGarbage(actor: Actor, storageId: string, options: ChunkGcOptions = {}): Promise<Task> {
    requireAdmin(actor);
    await this.load(storageId);
    return this.chunked.startGarbageCollection(actor, storageId, options);
  }

  /**
   * Starts verification of a chunked storage (a `chunk-verify` task): every chunk is re-hashed;
   * images naming a missing or corrupt chunk go to `error` and their billing stops.
   * @throws INVALID_STATE for a storage that keeps files.
   */
  async verifyChunks(actor: Actor, storageId: string): Promise<Task> {
    requireAdmin(actor);
    await this.load(storageId);
    return this.chunked.startVerification(actor, storageId);
  }
}
