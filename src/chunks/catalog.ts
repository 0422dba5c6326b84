/**
 * Finding what a storage holds of the chunked layout: its chunk objects and its manifests.
 * @module
 */
import { InstanceImagesError, isInstanceImagesError } from '../errors';
import { listAll, readObject, type ChunkContext } from './context';
import { ACCOUNT_CHUNKS_PREFIX, CHUNKS_PREFIX, MANIFEST_SUFFIX, chunkDigestOfKey, isReservedKey } from './keys';
import { MAX_MANIFEST_CHUNKS, parseManifest, type ChunkManifest } from './manifest';

/** The largest manifest read (bytes): room for {@link MAX_MANIFEST_CHUNKS} entries. */
export const MAX_MANIFEST_BYTES = 100 * MAX_MANIFEST_CHUNKS;

/** Every chunk object of the storage (all scopes), by key. */
export async function listChunks(ctx: ChunkContext, signal?: AbortSignal): Promise<Map<string, number>> {
  const chunks = new Map<string, number>();
  for (const prefix of [CHUNKS_PREFIX, ACCOUNT_CHUNKS_PREFIX]) {
    for await (const object of listAll(ctx, prefix, signal)) if (chunkDigestOfKey(object.key) !== null) chunks.set(object.key, object.size);
  }
  return chunks;
}

/**
 * Reads a manifest, or null when it does not exist.
 * @throws VALIDATION_FAILED or CHECKSUM_MISMATCH (naming `key`) when it is not a valid manifest.
 */
export async function readManifestAt(ctx: ChunkContext, key: string, signal?: AbortSignal): Promise<ChunkManifest | null> {
  const bytes = await readObject(ctx, key, signal ? { maxBytes: MAX_MANIFEST_BYTES, signal } : { maxBytes: MAX_MANIFEST_BYTES });
  if (bytes === null) return null;
  try {
    return parseManifest(bytes);
  } catch (error) {
    if (!isInstanceImagesError(error)) throw error;
    throw new InstanceImagesError(error.code, `${key}: ${error.message}`, {
      cause: error,
      fields: error.fields,
      details: { ...error.details, key },
    });
  }
}

/** A manifest found in the storage: parsed, or the error that kept it from being read. */
export type FoundManifest =
  { key: string; manifest: ChunkManifest; error: null } | { key: string; manifest: null; error: InstanceImagesError };

/** Every manifest below the store's manifest prefix, in key order (deleted ones skipped). */
export async function* readManifests(ctx: ChunkContext, signal?: AbortSignal): AsyncGenerator<FoundManifest> {
  for await (const object of listAll(ctx, ctx.manifestPrefix, signal)) {
    if (!object.key.endsWith(MANIFEST_SUFFIX) || isReservedKey(object.key)) continue;
    try {
      const manifest = await readManifestAt(ctx, object.key, signal);
      if (manifest !== null) yield { key: object.key, manifest, error: null };
    } catch (error) {
      if (!isInstanceImagesError(error, 'VALIDATION_FAILED') && !isInstanceImagesError(error, 'CHECKSUM_MISMATCH')) throw error;
      yield { key: object.key, manifest: null, error };
    }
  }
}
