/**
 * Manifests and keys of the chunked layout never trust their input: hostile digests, account ids,
 * sizes and tampered lists are refused before any key is built from them.
 */
import { describe, expect, it } from 'vitest';
import {
  CHUNK_MANIFEST_FORMAT,
  manifestDigest,
  parseManifest,
  serializeManifest,
  standaloneSize,
  type ChunkManifest,
} from '../../../src/chunks';
import { accountKeySegment, checkManifestKey, chunkDigestOfKey, chunkKey, leaseIdOfKey, leaseKey } from '../../../src/chunks/keys';
import { ratioString } from '../../../src/chunks/verify';
import { InstanceImagesError } from '../../../src/errors';
import { normalizeStorageKey } from '../../../src/storage/keys';
import { CHUNK } from '../../support/memory-storage';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

function manifest(overrides: Partial<ChunkManifest> = {}): ChunkManifest {
  const body = {
    format: CHUNK_MANIFEST_FORMAT as 1,
    virtualSizeBytes: 3 * CHUNK - 10,
    chunkSizeBytes: CHUNK,
    scope: { kind: 'storage' } as const,
    chunks: [{ sha256: A, storedBytes: CHUNK, codec: 'none' as const }, null, { sha256: B, storedBytes: 100, codec: 'zstd' as const }],
    ...overrides,
  };
  return { ...body, imageSha256: manifestDigest(body), source: null, createdAt: '2026-12-03T05:00:00.000Z', ...overrides };
}

function refusal(run: () => unknown): InstanceImagesError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InstanceImagesError);
    return error as InstanceImagesError;
  }
  throw new Error('expected a refusal');
}

/** The stored bytes of a manifest with one field changed after its digest was computed. */
function tampered(change: (json: Record<string, unknown>) => void): Buffer {
  const json = JSON.parse(serializeManifest(manifest()).toString('utf8')) as Record<string, unknown>;
  change(json);
  return Buffer.from(JSON.stringify(json));
}

describe('chunk manifest', () => {
  it('round-trips through its stored form and knows its standalone size', () => {
    const m = manifest({ source: { hypervisorId: 'hv-1', domainName: 'vm-1', checkpoint: 'ii-img-1' } });
    expect(parseManifest(serializeManifest(m))).toEqual(m);
    expect(standaloneSize(m)).toBe(CHUNK + 100);
    expect(
      standaloneSize(
        manifest({
          chunks: [{ sha256: A, storedBytes: CHUNK, codec: 'none' }, { sha256: A, storedBytes: CHUNK, codec: 'none' }, null],
          virtualSizeBytes: 3 * CHUNK,
        }),
      ),
    ).toBe(CHUNK);
  });

  it('has an image digest over the content only: codec, stored size and scope do not change it, a digest does', () => {
    const m = manifest();
    const digest = (changes: Partial<ChunkManifest>) => manifestDigest({ ...m, ...changes });
    expect(digest({ scope: { kind: 'account', accountId: 'x' } })).toBe(m.imageSha256);
    expect(digest({ chunks: [m.chunks[0]!, null, { sha256: B, storedBytes: CHUNK - 10, codec: 'none' }] })).toBe(m.imageSha256);
    expect(digest({ chunks: [m.chunks[0]!, null, { sha256: A, storedBytes: 100, codec: 'zstd' }] })).not.toBe(m.imageSha256);
    expect(digest({ chunks: [null, null, m.chunks[2]!] })).not.toBe(m.imageSha256);
    expect(digest({ virtualSizeBytes: 3 * CHUNK - 11 })).not.toBe(m.imageSha256);
  });

  it('refuses a tampered list with CHECKSUM_MISMATCH', () => {
    const bytes = tampered((json) => {
      (json.chunks as unknown[])[1] = { sha256: A, storedBytes: CHUNK, codec: 'none' };
    });
    expect(refusal(() => parseManifest(bytes)).code).toBe('CHECKSUM_MISMATCH');
  });

  it.each([
    [
      'a digest of 63 hex characters',
      (j: Record<string, unknown>) => ((j.chunks as { sha256: string }[])[0]!.sha256 = A.slice(1)),
      'chunks.0.sha256',
    ],
    [
      'an uppercase digest',
      (j: Record<string, unknown>) => ((j.chunks as { sha256: string }[])[0]!.sha256 = A.toUpperCase()),
      'chunks.0.sha256',
    ],
    [
      'a digest that is a path',
      (j: Record<string, unknown>) => ((j.chunks as { sha256: string }[])[0]!.sha256 = `../../${A.slice(6)}`),
      'chunks.0.sha256',
    ],
    [
      'an account id with control characters',
      (j: Record<string, unknown>) => (j.scope = { kind: 'account', accountId: 'a\nb' }),
      'scope.accountId',
    ],
    ['an unknown scope', (j: Record<string, unknown>) => (j.scope = { kind: 'bucket', name: '..' }), 'scope.kind'],
    ['an unknown field', (j: Record<string, unknown>) => (j.path = '/etc/passwd'), 'path'],
    ['a chunk size that is not a power of two', (j: Record<string, unknown>) => (j.chunkSizeBytes = 3 * CHUNK), 'chunkSizeBytes'],
    ['a negative size', (j: Record<string, unknown>) => (j.virtualSizeBytes = -1), 'virtualSizeBytes'],
    ['too few chunks', (j: Record<string, unknown>) => (j.chunks as unknown[]).pop(), 'chunks'],
    [
      'a stored size that does not fit its codec',
      (j: Record<string, unknown>) => ((j.chunks as { storedBytes: number }[])[0]!.storedBytes = 5),
      'chunks.0.storedBytes',
    ],
    ['another format', (j: Record<string, unknown>) => (j.format = 2), 'format'],
  ])('refuses %s (VALIDATION_FAILED naming the field)', (_what, change, path) => {
    const error = refusal(() => parseManifest(tampered(change)));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.fields.map((f) => f.path)).toContain(path);
  });

  it('refuses bytes that are not JSON', () => {
    expect(refusal(() => parseManifest(Buffer.from('{"format":1,'))).code).toBe('VALIDATION_FAILED');
  });
});

describe('chunk keys', () => {
  it('places chunks by digest and refuses anything but 64 lowercase hex characters', () => {
    expect(chunkKey({ kind: 'storage' }, A)).toBe(`chunks/aa/${A}`);
    expect(chunkDigestOfKey(`chunks/aa/${A}`)).toBe(A);
    expect(chunkDigestOfKey(`chunks/ab/${A}`)).toBeNull();
    for (const bad of [A.toUpperCase(), A.slice(1), `../${A.slice(3)}`, `${A}/x`])
      expect(refusal(() => chunkKey({ kind: 'storage' }, bad)).code).toBe('VALIDATION_FAILED');
  });

  it('turns any account id into one safe key segment, distinct per account', () => {
    const hostile = ['..', '.', '../../etc', 'a/b', 'a_b', 'x'.repeat(200), 'ü', ' '];
    const segments = hostile.map(accountKeySegment);
    expect(new Set(segments).size).toBe(hostile.length);
    for (const id of hostile) {
      const key = chunkKey({ kind: 'account', accountId: id }, A);
      expect(normalizeStorageKey(key)).toBe(key);
      expect(key.split('/')).toHaveLength(5);
      expect(key).toMatch(/^accounts\/[^/.][^/]*\/chunks\/aa\//);
    }
    expect(accountKeySegment('acct-42')).toBe('acct-42');
  });

  it('checks lease ids and manifest keys', () => {
    expect(leaseKey('task-1.a')).toBe('chunk-leases/task-1.a.json');
    expect(leaseIdOfKey('chunk-leases/task-1.a.json')).toBe('task-1.a');
    expect(leaseIdOfKey('chunk-leases/parts/x/0.json')).toBeNull();
    for (const bad of ['', '../x', 'a/b', '.hidden', 'x'.repeat(129)]) expect(refusal(() => leaseKey(bad)).code).toBe('VALIDATION_FAILED');
    expect(checkManifestKey('images/a/b.manifest.json')).toBe('images/a/b.manifest.json');
    for (const bad of ['images/a.raw', 'accounts/x/chunks/a.manifest.json', 'chunk-gc/a.manifest.json', 'a/../b.manifest.json'])
      expect(refusal(() => checkManifestKey(bad)).code).toBe('VALIDATION_FAILED');
  });
});

describe('dedup ratio', () => {
  it('is an exact decimal string with two places, rounded half up, from integers', () => {
    expect(ratioString(7, 4)).toBe('1.75');
    expect(ratioString(2, 3)).toBe('0.67');
    expect(ratioString(1, 8)).toBe('0.13'); // 0.125 rounds up
    expect(ratioString(10, 1)).toBe('10.00');
    expect(ratioString(0, 0)).toBe('1.00');
    expect(ratioString(Number.MAX_SAFE_INTEGER, 3)).toBe('3002399751580330.33');
  });
});
