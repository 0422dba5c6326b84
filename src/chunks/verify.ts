/**
 * Checking a chunk store: re-hashing every chunk the manifests name (verify), and its sizes (stats).
 * @module
 */
import { isInstanceImagesError } from '../errors';
import { listChunks, readManifests } from './catalog';
import { decodeChunk } from './codec';
import { forEachLimit, readObject, throwIfAborted, type ChunkContext } from './context';
import { chunkKey } from './keys';
import { chunkLength, standaloneSize } from './manifest';

/** A chunk verify found broken, with the manifests that name it. */
export interface BrokenChunk {
  sha256: string;
  /** The chunk's key. */
  key: string;
  /** Keys of the manifests that name it (the images it breaks). */
  manifests: string[];
}

/** What {@link ChunkStore.verify} found. */
export interface VerifyReport {
  /** Chunks read and re-hashed. */
  checked: number;
  /** Chunks whose bytes do not match their digest. */
  corrupt: BrokenChunk[];
  /** Chunks a manifest names that the storage does not hold. */
  missing: BrokenChunk[];
  /** Manifests that could not be read (addition): their key and why. */
  unreadableManifests: Array<{ key: string; code: string; message: string }>;
}

/** Options of {@link ChunkStore.verify}. */
export interface VerifyOptions {
  signal?: AbortSignal;
  /** Chunks checked so far, of all the manifests name. */
  onProgress?: (p: { chunksDone: number; chunksTotal: number }) => void;
}

/** What {@link ChunkStore.stats} reports. */
export interface ChunkStoreStats {
  manifests: number;
  /** Chunk objects stored (all scopes, referenced or not). */
  chunks: number;
  /** The sum of the standalone sizes of all manifests. */
  logicalBytes: number;
  /** The bytes of the stored chunks. */
  uniqueBytes: number;
  /** logicalBytes / uniqueBytes with two decimals, rounded half up (`"1.00"` when nothing is stored). */
  dedupRatio: string;
  /** Manifests that could not be read (addition); not counted above. */
  unreadableManifests: number;
}

type Named = { sha256: string; length: number; manifests: string[] };

/** The verifier of {@link ChunkStore.verify}. */
export async function verifyStore(ctx: ChunkContext, options: VerifyOptions = {}): Promise<VerifyReport> {
  const { signal } = options;
  const named = new Map<string, Named>();
  const unreadableManifests: VerifyReport['unreadableManifests'] = [];
  for await (const found of readManifests(ctx, signal)) {
    if (found.error) {
      unreadableManifests.push({ key: found.key, code: found.error.code, message: found.error.message });
      continue;
    }
    const { manifest } = found;
    manifest.chunks.forEach((chunk, index) => {
      if (chunk === null) return;
      const key = chunkKey(manifest.scope, chunk.sha256);
      const entry = named.get(key) ?? {
        sha256: chunk.sha256,
        length: chunkLength(manifest.virtualSizeBytes, manifest.chunkSizeBytes, index),
        manifests: [],
      };
      if (entry.manifests.at(-1) !== found.key) entry.manifests.push(found.key);
      named.set(key, entry);
    });
  }
  const report: VerifyReport = { checked: 0, corrupt: [], missing: [], unreadableManifests };
  let done = 0;
  await forEachLimit(named, ctx.parallel, async ([key, entry]) => {
    throwIfAborted(signal, 'The chunk verification');
    const broken = { sha256: entry.sha256, key, manifests: entry.manifests };
    const stored = await readObject(ctx, key, { maxBytes: entry.length, ...(signal ? { signal } : {}) }).catch((error: unknown) => {
      if (isInstanceImagesError(error, 'VALIDATION_FAILED')) return 'too large' as const;
      throw error;
    });
    if (stored === null) report.missing.push(broken);
    else if (stored === 'too large') report.corrupt.push(broken);
    else {
      report.checked += 1;
      try {
        await decodeChunk(stored, { sha256: entry.sha256, length: entry.length, key });
      } catch (error) {
        if (!isInstanceImagesError(error, 'CHECKSUM_MISMATCH')) throw error;
        report.corrupt.push(broken);
      }
    }
    done += 1;
    options.onProgress?.({ chunksDone: done, chunksTotal: named.size });
  });
  // Images deleted while verify ran are not broken: keep only manifests that still exist.
  for (const list of [report.corrupt, report.missing]) {
    for (const item of list) item.manifests = await stillThere(ctx, item.manifests);
  }
  report.corrupt = report.corrupt.filter((item) => item.manifests.length > 0);
  report.missing = report.missing.filter((item) => item.manifests.length > 0);
  return report;
}

async function stillThere(ctx: ChunkContext, keys: string[]): Promise<string[]> {
  const kept: string[] = [];
  for (const key of keys) if ((await ctx.disk.stat(key)) !== null) kept.push(key);
  return kept;
}

/** `numerator / denominator` with two decimals, rounded half up, in integer arithmetic. */
export function ratioString(numerator: number, denominator: number): string {
  if (denominator <= 0) return '1.00';
  const n = BigInt(numerator);
  const d = BigInt(denominator);
  const hundredths = (n * 200n + d) / (2n * d);
  const whole = hundredths / 100n;
  const fraction = (hundredths % 100n).toString().padStart(2, '0');
  return `${whole}.${fraction}`;
}

/** The sizes of {@link ChunkStore.stats}. */
export async function storeStats(ctx: ChunkContext, signal?: AbortSignal): Promise<ChunkStoreStats> {
  let manifests = 0;
  let logicalBytes = 0;
  let unreadableManifests = 0;
  for await (const found of readManifests(ctx, signal)) {
    if (found.error) {
      unreadableManifests += 1;
      continue;
    }
    manifests += 1;
    logicalBytes += standaloneSize(found.manifest);
  }
  const listed = await listChunks(ctx, signal);
  let uniqueBytes = 0;
  for (const size of listed.values()) uniqueBytes += size;
  return {
    manifests,
    chunks: listed.size,
    logicalBytes,
    uniqueBytes,
    dedupRatio: ratioString(logicalBytes, uniqueBytes),
    unreadableManifests,
  };
}
