/**
 * An NBD client and a chunk reader for chunked, deduplicated, incremental captures: speak NBD to a
 * hypervisor's export over its unix socket ({@link connectNbdUnix}) or over any Duplex, e.g. an SSH
 * stream-local channel from the SSH executor ({@link connectNbd}), then walk the export in fixed-size
 * chunks with {@link readNbdChunks}.
 * @module
 */
export { connectNbd, connectNbdUnix } from './connect';
export {
  BASE_ALLOCATION,
  dirtyBitmapContext,
  type NbdClient,
  type NbdClientStats,
  type NbdConnectOptions,
  type NbdExtent,
  type NbdReadOptions,
  type NbdRequestOptions,
  type NbdWriteOptions,
  type NbdWriteZeroesOptions,
} from './types';
export type { NbdBlockSize, NbdExportInfo } from './negotiate';
export { NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO } from './protocol';
export {
  DEFAULT_CHUNK_SIZE,
  DEFAULT_PRIME_BYTES,
  readNbdChunks,
  type ChunkPosition,
  type ChunkProgress,
  type NbdChunk,
  type ReadNbdChunksOptions,
} from './chunks';
