/**
 * Resumable uploads of images (the tus protocol's model, served over HTTP by the adapters): a
 * customer's custom image (where the location allows imports) or an operator's stock OS image.
 * The bytes are staged on the panel (`uploads.directory`, bounded by `uploads.maxStagingBytes`)
 * piece by piece, each piece at the offset the client names; a client that lost its connection
 * asks for the offset and continues from there. Once complete, the staged file goes through
 * exactly the pipeline of a URL import (format detected from the bytes, explicit qemu-img
 * formats, no backing files, optional sha256) as an `import` task, and the staged file is removed
 * when that task ends. Uploads are visible only to who created them (another account's id is
 * NOT_FOUND); a terminated or expired upload leaves nothing behind.
 * @module
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { z } from 'zod';
import { InstanceImagesError } from '../errors';
import {
  newUploadId,
  reservedBytes,
  UploadStaging,
  UPLOAD_ID_PATTERN,
  type PieceChecksum,
  type StagedUpload,
  type UploadTarget,
} from '../import/staging';
import { IdSchema, NameSchema, Sha256Schema } from '../model/common';
import { parseOrThrow } from '../util/validate';
import { checkActor, type Actor } from './actor';
import type { ServiceContext } from './context';
import type { ImageImportService } from './image-import';
import type { TaskWork } from './task-runner';
import { CUSTOM_IMAGE_TARGET_FIELDS, STOCK_IMAGE_TARGET_FIELDS } from './import-targets';

const GiB = 1024 ** 3;

/** The zod schema of {@link UploadOptions}. */
export const UploadOptionsSchema = z.strictObject({
  /**
   * The panel's staging directory of uploads (created with mode 0700). Uploads are off until it
   * is set (FEATURE_DISABLED naming `uploads.directory`). With several panel processes, give
   * each its own directory and route an upload's requests to the process that created it, or
   * share one directory (records are files; a piece is written by one process at a time only
   * when the requests of one upload reach one process).
   */
  directory: z.string().min(1).optional(),
  /** The largest upload (bytes as sent, compressed or not). @default 256 GiB */
  maxUploadBytes: z
    .number()
    .int()
    .positive()
    .max(Number.MAX_SAFE_INTEGER)
    .default(256 * GiB),
  /** The most bytes all unfinished uploads may hold or reserve in the directory (STORAGE_FULL beyond). @default 512 GiB */
  maxStagingBytes: z
    .number()
    .int()
    .positive()
    .max(Number.MAX_SAFE_INTEGER)
    .default(512 * GiB),
  /** An upload without a piece for this long is removed (ms). @default 86400000 (24 h) */
  expiresAfterMs: z
    .number()
    .int()
    .min(1000)
    .max(30 * 86_400_000)
    .default(86_400_000),
  /** How often expired uploads are looked for (ms); 0: only when uploads are created. @default 600000 */
  sweepIntervalMs: z.number().int().min(0).max(86_400_000).default(600_000),
});
/** The operator's options of resumable uploads (`createInstanceImages({ uploads })`). */
export type UploadOptions = z.input<typeof UploadOptionsSchema>;

/** What a custom-image upload becomes. */
export const ImageUploadTargetSchema = z.strictObject({ kind: z.literal('image'), ...CUSTOM_IMAGE_TARGET_FIELDS });

/** What an operator's stock OS image upload becomes. */
export const OsImageUploadTargetSchema = z.strictObject({ kind: z.literal('os-image'), ...STOCK_IMAGE_TARGET_FIELDS });

/** The targets as recorded with a staged upload (read back when it completes). */
const StoredTargetSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('image'),
    accountId: IdSchema,
    name: NameSchema,
    description: z.string(),
    locationId: IdSchema,
    sha256: Sha256Schema.nullable(),
  }),
  OsImageUploadTargetSchema.extend({ sha256: Sha256Schema.nullable() }),
]);

/** Input of {@link ImageUploadService.createUpload}. */
export const CreateUploadInputSchema = z.strictObject({
  target: z.discriminatedUnion('kind', [ImageUploadTargetSchema, OsImageUploadTargetSchema]),
  /** The upload's whole size in bytes, or null to say it later (at the latest with the last piece). */
  lengthBytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable(),
  /** The client's own metadata (tus `Upload-Metadata`), given back as sent. */
  metadata: z.record(z.string().max(200), z.string().max(4096)).default({}),
});
/** Input of {@link ImageUploadService.createUpload}. */
export type CreateUploadInput = z.input<typeof CreateUploadInputSchema>;

/** An upload as its owner sees it. */
export interface UploadInfo {
  id: string;
  lengthBytes: number | null;
  offsetBytes: number;
  metadata: Record<string, string>;
  expiresAt: Date;
  /** Once complete: the import task and the image it makes (a stock image is recorded when the task completes). */
  imageId: string | null;
  taskId: string | null;
}

/** Input of {@link ImageUploadService.writeUpload}. */
export interface WriteUploadInput {
  /** The offset the client believes is stored; another is CONFLICT (`details.offsetBytes` says the right one). */
  offsetBytes: number;
  /** The piece. */
  body: AsyncIterable<Uint8Array>;
  /** The piece's declared size, when known: refused at once when it would pass the upload's length. */
  contentLength?: number | null;
  /** Sets a deferred length (or repeats the known one). */
  lengthBytes?: number | null;
  checksum?: PieceChecksum | null;
}

function uploadNotFound(id: string): InstanceImagesError {
  return new InstanceImagesError('NOT_FOUND', `Upload ${JSON.stringify(id)} was not found`, { details: { kind: 'Upload', id } });
}

function infoOf(upload: StagedUpload): UploadInfo {
  return {
    id: upload.id,
    lengthBytes: upload.lengthBytes,
    offsetBytes: upload.offsetBytes,
    metadata: upload.metadata,
    expiresAt: new Date(upload.expiresAt),
    imageId: upload.result?.imageId ?? null,
    taskId: upload.result?.taskId ?? null,
  };
}

/** Resumable uploads. Reached through `InstanceImages.uploads`. */
export class ImageUploadService {
  private readonly options: z.output<typeof UploadOptionsSchema>;
  private readonly staging: UploadStaging | null;
  /** The piece being written per upload: a newer request for the same upload stops it and waits. */
  private readonly active = new Map<string, { stop: AbortController; done: Promise<unknown> }>();
  /** Serializes creations, so two cannot both take the last free staging bytes. */
  private reserving: Promise<unknown> = Promise.resolve();
  private readonly timer: ReturnType<typeof setInterval> | null;

  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly imports: ImageImportService,
    options: UploadOptions = {},
  ) {
    this.options = parseOrThrow(UploadOptionsSchema, options, 'The upload options');
    this.staging = this.options.directory === undefined ? null : new UploadStaging(this.options.directory);
    this.timer =
      this.staging && this.options.sweepIntervalMs > 0
        ? setInterval(() => {
            this.removeExpired().catch((error: unknown) =>
              this.ctx.logger.warn('sweeping expired uploads failed', { error: String(error) }),
            );
          }, this.options.sweepIntervalMs)
        : null;
    this.timer?.unref();
    // Import jobs of this process read complete uploads from the staging directory (jobs as data:
    // the job names the upload; its bytes are read where the job runs).
    const staging = this.staging;
    if (staging)
      imports.readStagedUploads({
        read: (uploadId, lengthBytes, work) => stagedBytes(staging, uploadId, lengthBytes, work),
        release: (uploadId) =>
          staging
            .removeData(uploadId)
            .catch((error: unknown) => this.ctx.logger.warn('removing a staged upload failed', { uploadId, error: String(error) })),
      });
  }

  /** The largest upload accepted (tus `Tus-Max-Size`). */
  get maxUploadBytes(): number {
    return this.options.maxUploadBytes;
  }

  private stagingOrThrow(): UploadStaging {
    if (!this.staging)
      throw new InstanceImagesError('FEATURE_DISABLED', 'Uploads are not enabled on this panel (the operator sets uploads.directory)', {
        details: { option: 'uploads.directory' },
      });
    return this.staging;
  }

  private expiry(): string {
    return new Date(this.ctx.now().getTime() + this.options.expiresAfterMs).toISOString();
  }

  /**
   * Starts an upload. Checks what a URL import checks before anything is stored: for a custom
   * image the location's switches (`imagesEnabled`, and `urlImportEnabled` for customers) and the
   * account's cap (checked again, atomically, when the upload completes); for a stock image
   * (admins only) the media group and the template storage. A declared length over
   * `uploads.maxUploadBytes` is VALIDATION_FAILED (`details.reason: 'too-large'`); one that does
   * not fit the staging space is STORAGE_FULL.
   */
  async createUpload(actor: Actor, input: CreateUploadInput): Promise<UploadInfo> {
    checkActor(actor);
    const staging = this.stagingOrThrow();
    const data = parseOrThrow(CreateUploadInputSchema, input, 'The upload');
    if (data.lengthBytes !== null && data.lengthBytes > this.options.maxUploadBytes)
      throw new InstanceImagesError('VALIDATION_FAILED', `The upload exceeds the limit of ${this.options.maxUploadBytes} bytes`, {
        fields: [{ path: 'lengthBytes', message: `must be at most ${this.options.maxUploadBytes}` }],
        details: { reason: 'too-large', limitBytes: this.options.maxUploadBytes },
      });
    const target = await this.checkTarget(actor, data.target, data.lengthBytes);
    await this.removeExpired();
    const now = this.ctx.now();
    const upload: StagedUpload = {
      id: newUploadId(),
      owner: actor.kind === 'customer' ? { kind: 'customer', accountId: actor.accountId } : { kind: 'admin' },
      target,
      lengthBytes: data.lengthBytes,
      offsetBytes: 0,
      metadata: data.metadata,
      createdAt: now.toISOString(),
      expiresAt: this.expiry(),
      result: null,
    };
    const reserve = this.reserving.then(async () => {
      const taken = (await staging.list()).reduce((sum, u) => sum + reservedBytes(u), 0);
      if (taken + (upload.lengthBytes ?? 0) > this.options.maxStagingBytes)
        throw new InstanceImagesError('STORAGE_FULL', "The panel's upload staging space is full; try again later", {
          details: { reason: 'staging-full' },
        });
      await staging.create(upload);
    });
    this.reserving = reserve.catch(() => undefined);
    await reserve;
    return infoOf(upload);
  }

  private async checkTarget(
    actor: Actor,
    target: z.output<typeof CreateUploadInputSchema>['target'],
    lengthBytes: number | null,
  ): Promise<UploadTarget> {
    if (target.kind === 'os-image') {
      if (actor.kind !== 'admin') throw new InstanceImagesError('FORBIDDEN', 'Only an administrator can upload OS images');
      await this.imports.checkOsImport(target);
      return { ...target, sha256: target.sha256 ?? null };
    }
    if (actor.kind === 'customer' && target.accountId !== undefined && target.accountId !== actor.accountId)
      throw new InstanceImagesError('FORBIDDEN', 'Customers upload into their own account only');
    const accountId = actor.kind === 'customer' ? actor.accountId : target.accountId;
    if (accountId === undefined)
      throw new InstanceImagesError('VALIDATION_FAILED', 'An administrator uploading a custom image names its account', {
        fields: [{ path: 'accountId', message: 'is required for administrators' }],
      });
    await this.imports.checkCustomImport({ accountId, locationId: target.locationId, byAdmin: actor.kind === 'admin' }, lengthBytes);
    return {
      kind: 'image',
      accountId,
      name: target.name,
      description: target.description ?? '',
      locationId: target.locationId,
      sha256: target.sha256 ?? null,
    };
  }

  /** The upload, when the actor may see it and it has not expired. */
  private async find(actor: Actor, id: string): Promise<StagedUpload> {
    checkActor(actor);
    const staging = this.stagingOrThrow();
    if (typeof id !== 'string' || !UPLOAD_ID_PATTERN.test(id)) throw uploadNotFound(String(id));
    const upload = await staging.read(id);
    const visible =
      upload !== null &&
      (actor.kind === 'admin'
        ? upload.owner.kind === 'admin'
        : upload.owner.kind === 'customer' && upload.owner.accountId === actor.accountId);
    if (!visible) throw uploadNotFound(id);
    if (new Date(upload.expiresAt).getTime() <= this.ctx.now().getTime()) {
      await this.removeUpload(upload);
      throw uploadNotFound(id);
    }
    return upload;
  }

  /** Stops the piece being written to the upload (a client that reconnected) and waits until its bytes are recorded. */
  private async takeOver(id: string): Promise<() => void> {
    for (let current = this.active.get(id); current; current = this.active.get(id)) {
      current.stop.abort();
      await current.done.catch(() => undefined);
    }
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    this.active.set(id, { stop: new AbortController(), done });
    return () => {
      this.active.delete(id);
      release();
    };
  }

  /** The upload's state (tus `HEAD`). Another account's upload is NOT_FOUND. */
  async getUpload(actor: Actor, id: string): Promise<UploadInfo> {
    const release = await this.takeOver(id);
    try {
      return infoOf(await this.find(actor, id));
    } finally {
      release();
    }
  }

  /**
   * Writes a piece at `offsetBytes` (tus `PATCH`). Refused: another offset (CONFLICT), a piece
   * past the length or `maxUploadBytes` (VALIDATION_FAILED, `too-large`: nothing of it is kept),
   * a finished upload (INVALID_STATE), a piece whose checksum differs (CHECKSUM_MISMATCH: nothing
   * of it is kept). When the client goes away mid-piece, the bytes received count. The piece
   * that completes the upload starts its import (the cap is checked again, atomically): the
   * answer then names the image and task. Should that start fail (e.g. IMAGE_LIMIT_REACHED), the
   * upload is removed.
   */
  async writeUpload(actor: Actor, id: string, input: WriteUploadInput): Promise<UploadInfo> {
    const release = await this.takeOver(id);
    const stop = this.active.get(id)?.stop.signal;
    try {
      const staging = this.stagingOrThrow();
      const upload = await this.find(actor, id);
      if (upload.result) throw new InstanceImagesError('INVALID_STATE', 'The upload is complete', { details: { ...infoOf(upload) } });
      if (input.lengthBytes !== undefined && input.lengthBytes !== null) this.setLength(upload, input.lengthBytes);
      if (input.offsetBytes !== upload.offsetBytes)
        throw new InstanceImagesError('CONFLICT', `The upload holds ${upload.offsetBytes} bytes; continue from there`, {
          details: { offsetBytes: upload.offsetBytes },
        });
      const limitBytes = upload.lengthBytes ?? this.options.maxUploadBytes;
      if (input.contentLength != null && upload.offsetBytes + input.contentLength > limitBytes)
        throw new InstanceImagesError('VALIDATION_FAILED', `The upload exceeds its length of ${limitBytes} bytes`, {
          fields: [{ path: 'body', message: `must end at byte ${limitBytes}` }],
          details: { reason: 'too-large', limitBytes },
        });
      const others = (await staging.list()).filter((u) => u.id !== id).reduce((sum, u) => sum + reservedBytes(u), 0);
      const outcome = await staging.append(upload, stoppable(input.body, stop), {
        limitBytes,
        stagingLimitBytes: upload.lengthBytes === null ? this.options.maxStagingBytes : Number.MAX_SAFE_INTEGER,
        reservedByOthers: others,
        checksum: input.checksum ?? null,
      });
      upload.offsetBytes = outcome.offsetBytes;
      upload.expiresAt = this.expiry();
      await staging.save(upload);
      if (outcome.error instanceof InstanceImagesError) throw outcome.error;
      if (outcome.error !== null)
        throw new InstanceImagesError('CANCELLED', 'The piece ended early (the connection dropped); ask for the offset and continue', {
          cause: outcome.error,
          details: { offsetBytes: upload.offsetBytes },
        });
      if (upload.lengthBytes !== null && upload.offsetBytes === upload.lengthBytes) await this.finish(upload);
      return infoOf(upload);
    } finally {
      release();
    }
  }

  private setLength(upload: StagedUpload, lengthBytes: number): void {
    if (upload.lengthBytes !== null && upload.lengthBytes !== lengthBytes)
      throw new InstanceImagesError('VALIDATION_FAILED', 'The upload length cannot change', {
        fields: [{ path: 'lengthBytes', message: `is ${upload.lengthBytes}` }],
      });
    if (!Number.isSafeInteger(lengthBytes) || lengthBytes < upload.offsetBytes || lengthBytes > this.options.maxUploadBytes)
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        `The upload length must be between ${upload.offsetBytes} and ${this.options.maxUploadBytes}`,
        {
          fields: [{ path: 'lengthBytes', message: 'is out of range' }],
          details: lengthBytes > this.options.maxUploadBytes ? { reason: 'too-large', limitBytes: this.options.maxUploadBytes } : {},
        },
      );
    upload.lengthBytes = lengthBytes;
  }

  /** Starts the import of a complete upload (all its bytes are staged); its staged file goes when the task ends. */
  private async finish(upload: StagedUpload): Promise<void> {
    const staging = this.stagingOrThrow();
    const target = parseOrThrow(StoredTargetSchema, upload.target, 'The staged upload record');
    const source = { kind: 'upload' as const, uploadId: upload.id, lengthBytes: upload.offsetBytes, sha256: target.sha256 };
    try {
      if (target.kind === 'image') {
        const { image, task } = await this.imports.startCustomImport({ ...target, byAdmin: upload.owner.kind === 'admin' }, source);
        upload.result = { imageId: image.id, taskId: task.id };
      } else {
        const { kind: _kind, sha256: _sha256, ...fields } = target;
        const { imageId, task } = await this.imports.startOsImport(fields, source);
        upload.result = { imageId, taskId: task.id };
      }
    } catch (error) {
      await staging.remove(upload.id);
      throw error;
    }
    await staging.save(upload);
  }

  /** Removes an upload and everything staged for it (tus `DELETE`). A complete upload's import goes on. */
  async terminateUpload(actor: Actor, id: string): Promise<void> {
    const release = await this.takeOver(id);
    try {
      await this.removeUpload(await this.find(actor, id));
    } finally {
      release();
    }
  }

  private async removeUpload(upload: StagedUpload): Promise<void> {
    const staging = this.stagingOrThrow();
    // A complete upload's data file belongs to its import task, which removes it when it ends.
    if (upload.result) await staging.removeRecord(upload.id);
    else await staging.remove(upload.id);
  }

  /** Removes the uploads past their expiry that no request is writing (also run every `sweepIntervalMs`). Returns how many. */
  async removeExpired(): Promise<number> {
    if (!this.staging) return 0;
    const now = this.ctx.now().getTime();
    let removed = 0;
    for (const upload of await this.staging.list()) {
      if (new Date(upload.expiresAt).getTime() > now || this.active.has(upload.id)) continue;
      await this.removeUpload(upload);
      removed++;
    }
    // Data files without a record (a panel that stopped while an import read one) go once expired.
    await this.staging.removeOrphans(now - this.options.expiresAfterMs);
    return removed;
  }

  /** Stops the sweep timer. @internal Called by `close()`. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/**
 * The staged bytes of a complete upload, with the task's progress. NOT_FOUND when they are not in
 * this process's staging directory (the directory is not shared with the process running the job).
 */
async function stagedBytes(staging: UploadStaging, uploadId: string, lengthBytes: number, work: TaskWork): Promise<AsyncIterable<Buffer>> {
  const path = staging.dataPath(uploadId);
  await access(path).catch(() => {
    throw new InstanceImagesError(
      'NOT_FOUND',
      `The staged upload ${uploadId} is not in this process's uploads.directory; share the directory with the processes that run import jobs`,
      { details: { uploadId } },
    );
  });
  work.progress({ step: 'downloading', bytesDone: 0, bytesTotal: lengthBytes });
  let read = 0;
  return (async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of createReadStream(path, { signal: work.signal }) as AsyncIterable<Buffer>) {
      read += chunk.length;
      work.progress({ step: 'downloading', bytesDone: read, bytesTotal: lengthBytes });
      yield chunk;
    }
  })();
}

/** The body, ended early (without an error) when `signal` aborts: a newer request took the upload over. */
async function* stoppable(body: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  const iterator = body[Symbol.asyncIterator]();
  const stopped = new Promise<IteratorResult<Uint8Array>>((resolve) => {
    if (signal?.aborted) resolve({ done: true, value: undefined });
    signal?.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true });
  });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), stopped]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    void iterator.return?.(undefined)?.catch?.(() => undefined);
  }
}
