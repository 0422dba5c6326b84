/**
 * TEMPORARY STAND-IN for the chunk store of branch chunk-store (CHUNKS.md), so the services of
 * branch chunk-wiring compile and their tests run before that branch lands. It implements the
 * contract's API minimally (no sweep marker, no compression); it is removed when chunk-store is
 * merged, and nothing here is meant to survive that merge.
 * @module
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { InstanceImagesError } from '../errors';
import type { CapturedChunk, ChunkSourceInfo } from '../ports/hypervisor-driver';
import type { Logger } from '../ports/logger';
import type { StorageDisk } from '../storage/disk';
import { eachPage } from '../util/pages';

/** The manifest format version. */
export const CHUNK_MANIFEST_FORMAT = 1;
/** How a chunk is compressed. */
export type ChunkCodec = 'none' | 'zstd';
/** One chunk of a manifest; null = an all-zero chunk (never stored). */
export type ManifestChunk = { sha256: string; storedBytes: number; codec: ChunkCodec } | null;
/** The manifest of a chunked image. */
export interface ChunkManifest {
  format: 1;
  virtualSizeBytes: number;
  chunkSizeBytes: number;
  scope: { kind: 'storage' } | { kind: 'account'; accountId: string };
  chunks: ManifestChunk[];
  imageSha256: string;
  source: { hypervisorId: string; domainName: string; checkpoint: string | null } | null;
  createdAt: string;
}

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** The image digest over format, sizes and the chunk list. */
export function manifestDigest(m: Omit<ChunkManifest, 'imageSha256' | 'createdAt' | 'source'>): string {
  return sha(JSON.stringify([m.format, m.virtualSizeBytes, m.chunkSizeBytes, m.scope, m.chunks]));
}

/** Parses a manifest; CHECKSUM_MISMATCH when its digest is wrong. */
export function parseManifest(bytes: Buffer): ChunkManifest {
  const m = JSON.parse(bytes.toString('utf8')) as ChunkManifest;
  if (manifestDigest(m) !== m.imageSha256) throw new InstanceImagesError('CHECKSUM_MISMATCH', 'The manifest digest does not match');
  return m;
}

/** Serializes a manifest. */
export function serializeManifest(m: ChunkManifest): Buffer {
  return Buffer.from(JSON.stringify(m));
}

/** The sum of storedBytes over the distinct non-zero chunks of the image. */
export function standaloneSize(m: ChunkManifest): number {
  const seen = new Map<string, number>();
  for (const c of m.chunks) if (c) seen.set(c.sha256, c.storedBytes);
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

/** Options of {@link createChunkStore}. */
export interface ChunkStoreOptions {
  scope?: ChunkManifest['scope'];
  codec?: ChunkCodec;
  parallel?: number;
  leaseTtlMs?: number;
  sweepTtlMs?: number;
  logger?: Logger;
  now?: () => Date;
}

/** A capture's chunks, stored but not yet named by a manifest. */
export interface PendingImage {
  manifest: ChunkManifest;
  uploadedBytes: number;
  reusedChunks: number;
  uploadedChunks: number;
  commit(key: string): Promise<void>;
  abandon(): Promise<void>;
}

/** The chunk store of one storage. */
export interface ChunkStore {
  writeImage(
    chunks: AsyncIterable<CapturedChunk>,
    info: ChunkSourceInfo,
    options: {
      leaseId: string;
      base?: ChunkManifest | null;
      source?: ChunkManifest['source'];
      signal?: AbortSignal;
      onProgress?: (p: { bytesDone: number; bytesTotal: number; uploadedBytes: number }) => void;
    },
  ): Promise<PendingImage>;
  readManifest(key: string): Promise<ChunkManifest | null>;
  readImage(
    manifest: ChunkManifest,
    options: { leaseId: string; signal?: AbortSignal; onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void },
  ): AsyncIterable<{ offset: number; bytes: Buffer }>;
  deleteManifest(key: string): Promise<void>;
  collectGarbage(options?: {
    dryRun?: boolean;
    signal?: AbortSignal;
  }): Promise<{ chunks: number; referenced: number; deleted: number; bytesFreed: number; leasesExpired: number }>;
  verify(options?: { signal?: AbortSignal; onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void }): Promise<{
    checked: number;
    corrupt: Array<{ sha256: string; manifests: string[] }>;
    missing: Array<{ sha256: string; manifests: string[] }>;
  }>;
  stats(): Promise<{ manifests: number; chunks: number; logicalBytes: number; uniqueBytes: number; dedupRatio: string }>;
  releaseLease(leaseId: string): Promise<void>;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Buffer));
  return Buffer.concat(parts);
}

/** Creates the chunk store of a storage. */
export function createChunkStore(disk: StorageDisk, options: ChunkStoreOptions = {}): ChunkStore {
  const scope = options.scope ?? { kind: 'storage' };
  if (options.codec === 'zstd') throw new InstanceImagesError('VALIDATION_FAILED', 'zstd is not available in this stand-in');
  const chunkKey = (s: ChunkManifest['scope'], digest: string) =>
    `${s.kind === 'account' ? `accounts/${s.accountId}/` : ''}chunks/${digest.slice(0, 2)}/${digest}`;
  const leaseKey = (id: string) => `chunk-leases/${id}.json`;
  const put = (key: string, bytes: Buffer) => disk.put(key, Readable.from([bytes]), { size: bytes.length });
  const listAll = async (prefix?: string) => {
    const out: { key: string; size: number }[] = [];
    for await (const page of eachPage((cursor) => disk.list({ ...(prefix ? { prefix } : {}), cursor, limit: 1000 }))) out.push(...page);
    return out.filter((o) => !prefix || o.key.startsWith(prefix));
  };
  const manifests = async () => {
    const out: { key: string; manifest: ChunkManifest }[] = [];
    for (const o of await listAll()) {
      if (!o.key.endsWith('.manifest.json')) continue;
      const manifest = await store.readManifest(o.key).catch(() => null);
      if (manifest) out.push({ key: o.key, manifest });
    }
    return out;
  };
  const storedChunks = async () =>
    (await listAll())
      .filter((o) => /(^|\/)chunks\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(o.key))
      .map((o) => ({ ...o, sha256: o.key.slice(-64) }));

  const store: ChunkStore = {
    async writeImage(chunks, info, opts) {
      if (info.incrementalSince && !opts.base)
        throw new InstanceImagesError('VALIDATION_FAILED', 'An incremental capture needs the base manifest');
      const list: ManifestChunk[] = [];
      const named: string[] = [];
      let uploadedBytes = 0;
      let uploadedChunks = 0;
      let reusedChunks = 0;
      let bytesDone = 0;
      for (const c of opts.base?.chunks ?? []) if (c) named.push(c.sha256);
      for await (const chunk of chunks) {
        if (opts.signal?.aborted) throw new InstanceImagesError('CANCELLED', 'The capture was cancelled');
        if (chunk.kind === 'zero') list[chunk.index] = null;
        else if (chunk.kind === 'unchanged') {
          const from = opts.base?.chunks[chunk.index];
          if (from === undefined) throw new InstanceImagesError('VALIDATION_FAILED', `The base has no chunk ${chunk.index}`);
          if (from && !(await disk.stat(chunkKey(scope, from.sha256))))
            throw new InstanceImagesError('NOT_FOUND', `The base chunk ${from.sha256} is missing`);
          list[chunk.index] = from;
          reusedChunks++;
        } else {
          named.push(chunk.sha256);
          await put(leaseKey(opts.leaseId), Buffer.from(JSON.stringify({ digests: named, refreshedAt: new Date().toISOString() })));
          const key = chunkKey(scope, chunk.sha256);
          if (!(await disk.stat(key))) {
            await put(key, chunk.bytes);
            uploadedBytes += chunk.bytes.length;
            uploadedChunks++;
          } else reusedChunks++;
          list[chunk.index] = { sha256: chunk.sha256, storedBytes: chunk.bytes.length, codec: 'none' };
        }
        bytesDone += chunk.length;
        opts.onProgress?.({ bytesDone, bytesTotal: info.virtualSizeBytes, uploadedBytes });
      }
      const body = {
        format: 1 as const,
        virtualSizeBytes: info.virtualSizeBytes,
        chunkSizeBytes: info.chunkSizeBytes,
        scope,
        chunks: list,
      };
      const manifest: ChunkManifest = {
        ...body,
        imageSha256: manifestDigest(body),
        source: opts.source ?? null,
        createdAt: (options.now?.() ?? new Date()).toISOString(),
      };
      return {
        manifest,
        uploadedBytes,
        uploadedChunks,
        reusedChunks,
        commit: async (key) => {
          await put(key, serializeManifest(manifest));
          await disk.delete(leaseKey(opts.leaseId));
        },
        abandon: () => disk.delete(leaseKey(opts.leaseId)),
      };
    },
    async readManifest(key) {
      if (!(await disk.stat(key))) return null;
      return parseManifest(await readAll(await disk.get(key)));
    },
    async *readImage(manifest, opts) {
      const total = manifest.chunks.reduce((n, c) => n + (c ? c.storedBytes : 0), 0);
      let done = 0;
      for (const [index, c] of manifest.chunks.entries()) {
        if (!c) continue;
        if (opts.signal?.aborted) throw new InstanceImagesError('CANCELLED', 'The read was cancelled');
        const key = chunkKey(manifest.scope, c.sha256);
        if (!(await disk.stat(key))) throw new InstanceImagesError('NOT_FOUND', `The chunk ${c.sha256} is missing`);
        const bytes = await readAll(await disk.get(key));
        if (sha(bytes) !== c.sha256) throw new InstanceImagesError('CHECKSUM_MISMATCH', `The chunk ${c.sha256} is corrupt`);
        done += bytes.length;
        opts.onProgress?.({ bytesDone: done, bytesTotal: total });
        yield { offset: index * manifest.chunkSizeBytes, bytes };
      }
    },
    deleteManifest: (key) => disk.delete(key),
    async collectGarbage(opts = {}) {
      const chunks = await storedChunks();
      const referenced = new Set<string>();
      for (const lease of await listAll('chunk-leases/')) {
        const body = JSON.parse((await readAll(await disk.get(lease.key))).toString('utf8')) as { digests: string[] };
        for (const d of body.digests) referenced.add(d);
      }
      const keysNamed = new Set<string>();
      for (const { manifest } of await manifests())
        for (const c of manifest.chunks) if (c) keysNamed.add(chunkKey(manifest.scope, c.sha256));
      let deleted = 0;
      let bytesFreed = 0;
      for (const c of chunks) {
        if (keysNamed.has(c.key) || referenced.has(c.sha256)) continue;
        if (!opts.dryRun) await disk.delete(c.key);
        deleted++;
        bytesFreed += c.size;
      }
      return { chunks: chunks.length, referenced: chunks.length - deleted, deleted, bytesFreed, leasesExpired: 0 };
    },
    async verify() {
      const present = new Map((await storedChunks()).map((c) => [c.key, c]));
      const corrupt = new Map<string, string[]>();
      const missing = new Map<string, string[]>();
      let checked = 0;
      const checkedKeys = new Map<string, boolean>();
      for (const { key, manifest } of await manifests()) {
        for (const c of manifest.chunks) {
          if (!c) continue;
          const k = chunkKey(manifest.scope, c.sha256);
          if (!present.has(k)) missing.set(c.sha256, [...new Set([...(missing.get(c.sha256) ?? []), key])]);
          else {
            if (!checkedKeys.has(k)) {
              checked++;
              checkedKeys.set(k, sha(await readAll(await disk.get(k))) === c.sha256);
            }
            if (!checkedKeys.get(k)) corrupt.set(c.sha256, [...new Set([...(corrupt.get(c.sha256) ?? []), key])]);
          }
        }
      }
      const list = (m: Map<string, string[]>) => [...m].map(([sha256, names]) => ({ sha256, manifests: names }));
      return { checked, corrupt: list(corrupt), missing: list(missing) };
    },
    async stats() {
      const all = await manifests();
      const chunks = await storedChunks();
      const logicalBytes = all.reduce((n, { manifest }) => n + standaloneSize(manifest), 0);
      const uniqueBytes = chunks.reduce((n, c) => n + c.size, 0);
      const dedupRatio = uniqueBytes === 0 ? '1.00' : (logicalBytes / uniqueBytes).toFixed(2);
      return { manifests: all.length, chunks: chunks.length, logicalBytes, uniqueBytes, dedupRatio };
    },
    releaseLease: (leaseId) => disk.delete(leaseKey(leaseId)),
  };
  return store;
}
