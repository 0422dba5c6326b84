/**
 * The manifest of a chunked image: what it is made of (the ordered chunk digests, zero markers,
 * stored sizes and codecs), its sizes and its image digest. Parsing never trusts the bytes: every
 * digest is 64 lowercase hex characters, every account id a bounded printable string (it becomes
 * a key segment only through {@link accountKeySegment}), and the sizes must agree with the list.
 * @module
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { InstanceImagesError, validationFailed } from '../errors';
import { zodIssues } from '../util/validate';

/** The manifest format this version writes and reads. */
export const CHUNK_MANIFEST_FORMAT = 1;

/** How a chunk is stored: as is, or zstd-compressed (only when that made it smaller). */
export type ChunkCodec = 'none' | 'zstd';

/** One chunk of an image; `null` = an all-zero chunk (never stored). */
export type ManifestChunk = { sha256: string; storedBytes: number; codec: ChunkCodec } | null;

/** Where the chunks of an image live: storage-wide (dedup across accounts) or per account. */
export type ChunkScope = { kind: 'storage' } | { kind: 'account'; accountId: string };

/** Where an image was captured from, for incremental captures. */
export interface ChunkManifestSource {
  hypervisorId: string;
  domainName: string;
  /** The checkpoint this capture left on that disk, or null. */
  checkpoint: string | null;
}

/** The manifest of a chunked image, stored at the image's file key (`….manifest.json`). */
export interface ChunkManifest {
  format: 1;
  virtualSizeBytes: number;
  chunkSizeBytes: number;
  scope: ChunkScope;
  /** One entry per chunk index, in order. */
  chunks: ManifestChunk[];
  /** {@link manifestDigest} over the format, the sizes and the list. */
  imageSha256: string;
  /** Where it was captured from, for incremental captures: the checkpoint left on that disk. */
  source: ChunkManifestSource | null;
  /** ISO 8601. */
  createdAt: string;
}

/** The smallest chunk size accepted (64 KiB). */
export const MIN_CHUNK_SIZE_BYTES = 64 * 1024;
/** The largest chunk size accepted (64 MiB). */
export const MAX_CHUNK_SIZE_BYTES = 64 * 1024 * 1024;
/** The most chunks one manifest may list (16 TiB at 4 MiB chunks). */
export const MAX_MANIFEST_CHUNKS = 4 * 1024 * 1024;

/** Lowercase hex SHA-256. */
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** True when `size` is a power of two from 64 KiB to 64 MiB. */
export function isValidChunkSize(size: number): boolean {
  return Number.isSafeInteger(size) && size >= MIN_CHUNK_SIZE_BYTES && size <= MAX_CHUNK_SIZE_BYTES && (size & (size - 1)) === 0;
}

/** The number of chunks of a disk. */
export function chunkCount(virtualSizeBytes: number, chunkSizeBytes: number): number {
  return Math.ceil(virtualSizeBytes / chunkSizeBytes);
}

/** The length of chunk `index` (only the last one may be shorter). */
export function chunkLength(virtualSizeBytes: number, chunkSizeBytes: number, index: number): number {
  return Math.min(chunkSizeBytes, virtualSizeBytes - index * chunkSizeBytes);
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const boundedText = (max: number) =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !CONTROL.test(s), 'must not contain control characters');

const Sha256Schema = z.string().regex(SHA256_PATTERN, 'must be a SHA-256 digest: 64 lowercase hex characters');

/** An account id as the model allows it (1–200 characters, no control characters). */
export const ChunkScopeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('storage') }),
  z.strictObject({ kind: z.literal('account'), accountId: boundedText(200) }),
]);

/** The capture source recorded in a manifest. */
export const ChunkManifestSourceSchema = z.strictObject({
  hypervisorId: boundedText(200),
  domainName: boundedText(200),
  checkpoint: boundedText(200).nullable(),
});

const ManifestChunkSchema = z
  .strictObject({
    sha256: Sha256Schema,
    storedBytes: z.number().int().min(1).max(MAX_CHUNK_SIZE_BYTES),
    codec: z.enum(['none', 'zstd']),
  })
  .nullable();

const ManifestSchema = z.strictObject({
  format: z.literal(CHUNK_MANIFEST_FORMAT),
  virtualSizeBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  chunkSizeBytes: z.number().int().refine(isValidChunkSize, 'must be a power of two from 64 KiB to 64 MiB'),
  scope: ChunkScopeSchema,
  chunks: z.array(ManifestChunkSchema).max(MAX_MANIFEST_CHUNKS),
  imageSha256: Sha256Schema,
  source: ChunkManifestSourceSchema.nullable(),
  createdAt: z.iso.datetime({ offset: true }),
});

/**
 * The image digest: SHA-256 over the format, the virtual and chunk sizes and, per chunk index, its
 * digest or a zero marker. It names the disk's content: the stored sizes, codecs and the scope are
 * how it is kept, not what it is, so the same disk stored twice has the same image digest.
 */
export function manifestDigest(m: Omit<ChunkManifest, 'imageSha256' | 'createdAt' | 'source'>): string {
  const hash = createHash('sha256');
  hash.update(`instance-images chunk manifest\nformat ${m.format}\nvirtual ${m.virtualSizeBytes}\nchunk ${m.chunkSizeBytes}\n`);
  for (const chunk of m.chunks) hash.update(chunk === null ? '0\n' : `${chunk.sha256}\n`);
  return hash.digest('hex');
}

/** Checks what the schema cannot: the list's length and each chunk's stored size against the sizes. */
function checkConsistency(m: ChunkManifest): void {
  const expected = chunkCount(m.virtualSizeBytes, m.chunkSizeBytes);
  if (m.chunks.length !== expected) {
    throw validationFailed(
      [
        {
          path: 'chunks',
          message: `must list ${expected} chunks for ${m.virtualSizeBytes} bytes in ${m.chunkSizeBytes}-byte chunks, lists ${m.chunks.length}`,
        },
      ],
      'The chunk manifest',
    );
  }
  m.chunks.forEach((chunk, index) => {
    if (chunk === null) return;
    const length = chunkLength(m.virtualSizeBytes, m.chunkSizeBytes, index);
    // A chunk is stored compressed only when that made it smaller; stored as is, it is its length.
    const ok = chunk.codec === 'none' ? chunk.storedBytes === length : chunk.storedBytes < length;
    if (!ok) {
      throw validationFailed(
        [
          {
            path: `chunks.${index}.storedBytes`,
            message: `${chunk.storedBytes} does not fit a ${length}-byte chunk stored with codec ${chunk.codec}`,
          },
        ],
        'The chunk manifest',
      );
    }
  });
}

/**
 * Parses and checks a stored manifest.
 * @throws VALIDATION_FAILED when it is not a manifest of this format (naming the fields, e.g. a
 *   digest that is not 64 hex characters); CHECKSUM_MISMATCH when its image digest is wrong.
 */
export function parseManifest(bytes: Buffer): ChunkManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'The chunk manifest is not valid JSON', {
      cause: error,
      fields: [{ path: '', message: 'is not JSON' }],
    });
  }
  const result = ManifestSchema.safeParse(json);
  if (!result.success) throw validationFailed(zodIssues(result.error).slice(0, 20), 'The chunk manifest');
  const manifest = result.data as ChunkManifest;
  checkConsistency(manifest);
  const actual = manifestDigest(manifest);
  if (actual !== manifest.imageSha256) {
    throw new InstanceImagesError('CHECKSUM_MISMATCH', 'The chunk manifest does not match its image digest: it was changed or damaged', {
      details: { expected: manifest.imageSha256, actual },
    });
  }
  return manifest;
}

/** The stored form of a manifest (JSON, UTF-8). */
export function serializeManifest(m: ChunkManifest): Buffer {
  const { format, virtualSizeBytes, chunkSizeBytes, scope, chunks, imageSha256, source, createdAt } = m;
  return Buffer.from(JSON.stringify({ format, virtualSizeBytes, chunkSizeBytes, scope, chunks, imageSha256, source, createdAt }), 'utf8');
}

/** The standalone stored size: the sum of storedBytes over the distinct non-zero chunks of the image. */
export function standaloneSize(m: ChunkManifest): number {
  const seen = new Set<string>();
  let total = 0;
  for (const chunk of m.chunks) {
    if (chunk === null || seen.has(chunk.sha256)) continue;
    seen.add(chunk.sha256);
    total += chunk.storedBytes;
  }
  return total;
}
