/**
 * The panel's staging directory of resumable uploads: per upload a data file (`<id>.part`) that
 * grows by appended pieces and a small JSON record (`<id>.json`, replaced atomically) with its
 * offset, length, owner and target. The record's offset is the truth: a piece's bytes count only
 * once they are synced and the record says so, and a write first cuts the data file back to the
 * recorded offset (dropping whatever a crash or a refused piece left behind). The disk the
 * directory may use is bounded: declared lengths are reserved at creation, and uploads of a
 * deferred length count what they hold.
 * @module
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InstanceImagesError } from '../errors';

/** The shape of upload ids: `upl_` and 128 random bits (base64url), so they cannot be guessed. */
export const UPLOAD_ID_PATTERN = /^upl_[A-Za-z0-9_-]{22}$/;

/** A new upload id. */
export function newUploadId(): string {
  return `upl_${randomBytes(16).toString('base64url')}`;
}

/** What an upload becomes once complete (the service that created it reads its fields back with its own schema). */
export interface UploadTarget {
  kind: 'image' | 'os-image';
  /** The expected sha256 of the decompressed image. */
  sha256: string | null;
  [field: string]: unknown;
}

/** The record of one upload in the staging directory. */
export interface StagedUpload {
  id: string;
  /** Who may see and continue it: a customer's account id, or `admin` for operators' uploads. */
  owner: { kind: 'customer'; accountId: string } | { kind: 'admin' };
  target: UploadTarget;
  /** The whole upload's size; null while deferred (tus `Upload-Defer-Length`). */
  lengthBytes: number | null;
  /** Bytes stored so far. */
  offsetBytes: number;
  /** The client's tus metadata, given back as sent. */
  metadata: Record<string, string>;
  createdAt: string;
  /** Extended by every piece; an upload past it is removed. */
  expiresAt: string;
  /** Set once complete: the import started from it. */
  result: { imageId: string; taskId: string } | null;
}

/** A piece's checksum (tus `Upload-Checksum`), checked over its bytes before they count. */
export interface PieceChecksum {
  algorithm: 'sha1' | 'sha256' | 'md5';
  digest: Buffer;
}

/** Options of {@link UploadStaging.append}. */
export interface AppendOptions {
  /** The most bytes the upload may hold after this piece; more fails with VALIDATION_FAILED (`too-large`). */
  limitBytes: number;
  /** The most bytes the directory may hold for all uploads, with `reservedByOthers` already taken. */
  stagingLimitBytes: number;
  reservedByOthers: number;
  checksum: PieceChecksum | null;
}

/** The outcome of an append: bytes kept, and the error that ended the piece early (kept bytes still count). */
export interface AppendOutcome {
  offsetBytes: number;
  error: unknown;
}

/** Bytes a live upload holds or has reserved in the directory. */
export function reservedBytes(upload: StagedUpload): number {
  if (upload.result) return 0;
  return upload.lengthBytes ?? upload.offsetBytes;
}

function tooLarge(limit: number): InstanceImagesError {
  return new InstanceImagesError('VALIDATION_FAILED', `The upload exceeds the limit of ${limit} bytes`, {
    fields: [{ path: 'body', message: `must be at most ${limit} bytes in all` }],
    details: { reason: 'too-large', limitBytes: limit },
  });
}

/** The staging directory. Ids are checked against {@link UPLOAD_ID_PATTERN} before they name a file. */
export class UploadStaging {
  constructor(readonly directory: string) {}

  private path(id: string, ext: 'json' | 'part' | 'tmp'): string {
    if (!UPLOAD_ID_PATTERN.test(id))
      throw new InstanceImagesError('NOT_FOUND', 'Upload was not found', { details: { kind: 'Upload', id } });
    return join(this.directory, `${id}.${ext}`);
  }

  /** The data file of an upload. */
  dataPath(id: string): string {
    return this.path(id, 'part');
  }

  /** Creates the record and an empty data file. */
  async create(upload: StagedUpload): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    await writeFile(this.path(upload.id, 'part'), new Uint8Array(0), { flag: 'wx', mode: 0o600 });
    await this.save(upload);
  }

  /** Replaces the record atomically. */
  async save(upload: StagedUpload): Promise<void> {
    const tmp = this.path(upload.id, 'tmp');
    await writeFile(tmp, JSON.stringify(upload), { mode: 0o600 });
    await rename(tmp, this.path(upload.id, 'json'));
  }

  /** The record, or null when there is none (or it cannot be read). */
  async read(id: string): Promise<StagedUpload | null> {
    if (!UPLOAD_ID_PATTERN.test(id)) return null;
    try {
      return JSON.parse(await readFile(this.path(id, 'json'), 'utf8')) as StagedUpload;
    } catch {
      return null;
    }
  }

  /** Every record in the directory. */
  async list(): Promise<StagedUpload[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return [];
    }
    const ids = names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length));
    const records = await Promise.all(ids.map((id) => this.read(id)));
    return records.filter((r): r is StagedUpload => r !== null);
  }

  /** Removes the data file (the record stays, e.g. to answer where a complete upload went). */
  async removeData(id: string): Promise<void> {
    await rm(this.path(id, 'part'), { force: true });
  }

  /** Removes the record only (a complete upload's data file stays for its import task). */
  async removeRecord(id: string): Promise<void> {
    await rm(this.path(id, 'tmp'), { force: true });
    await rm(this.path(id, 'json'), { force: true });
  }

  /** Removes data files that have no record and were last written before `before` (ms since the epoch). */
  async removeOrphans(before: number): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return;
    }
    const records = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)));
    for (const name of names) {
      const id = name.slice(0, -'.part'.length);
      if (!name.endsWith('.part') || records.has(id) || !UPLOAD_ID_PATTERN.test(id)) continue;
      const info = await stat(join(this.directory, name)).catch(() => null);
      if (info && info.mtimeMs < before) await rm(join(this.directory, name), { force: true });
    }
  }

  /** Removes the upload: data file, record and any temporary record. */
  async remove(id: string): Promise<void> {
    await rm(this.path(id, 'part'), { force: true });
    await rm(this.path(id, 'tmp'), { force: true });
    await rm(this.path(id, 'json'), { force: true });
  }

  /**
   * Appends a piece at the recorded offset. Without a checksum, the bytes received before the
   * piece ended early (a dropped connection) are kept; with one, the piece counts whole or not at
   * all. A piece that would pass a limit is refused whole. The caller saves the new offset.
   */
  async append(upload: StagedUpload, body: AsyncIterable<Uint8Array>, options: AppendOptions): Promise<AppendOutcome> {
    const start = upload.offsetBytes;
    const file = await open(this.dataPath(upload.id), 'r+');
    let written = 0;
    let error: unknown = null;
    const hash: Hash | null = options.checksum ? createHash(options.checksum.algorithm) : null;
    try {
      await file.truncate(start);
      try {
        for await (const piece of body) {
          const bytes = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
          if (start + written + bytes.length > options.limitBytes) throw tooLarge(options.limitBytes);
          if (options.reservedByOthers + start + written + bytes.length > options.stagingLimitBytes)
            throw new InstanceImagesError('STORAGE_FULL', "The panel's upload staging space is full; try again later", {
              details: { reason: 'staging-full' },
            });
          hash?.update(bytes);
          let done = 0;
          while (done < bytes.length) {
            const { bytesWritten } = await file.write(bytes, done, bytes.length - done, start + written + done);
            done += bytesWritten;
          }
          written += bytes.length;
        }
      } catch (caught) {
        error = caught;
      }
      const refused = error instanceof InstanceImagesError && (error.code === 'VALIDATION_FAILED' || error.code === 'STORAGE_FULL');
      if (options.checksum && error === null && hash && !hash.digest().equals(options.checksum.digest))
        error = new InstanceImagesError('CHECKSUM_MISMATCH', 'The piece does not match its Upload-Checksum; send it again', {
          details: { reason: 'piece-checksum' },
        });
      if (refused || (options.checksum && error !== null)) written = 0;
      await file.truncate(start + written);
      await file.datasync();
    } finally {
      await file.close();
    }
    return { offsetBytes: start + written, error };
  }
}
