/**
 * Where the chunked layout keeps its objects below a storage's root: chunks, leases, the sweep
 * marker. Manifests are at the keys their callers choose (ending in {@link MANIFEST_SUFFIX}).
 * @module
 */
import { createHash } from 'node:crypto';
import { InstanceImagesError } from '../errors';
import { normalizeStorageKey } from '../storage/keys';
import { SHA256_PATTERN, type ChunkScope } from './manifest';

/** Storage-wide chunks live below this prefix. */
export const CHUNKS_PREFIX = 'chunks/';
/** Per-account chunks live below `accounts/<segment>/chunks/`. */
export const ACCOUNT_CHUNKS_PREFIX = 'accounts/';
/** Leases of running captures and deploys. */
export const LEASES_PREFIX = 'chunk-leases/';
/** The sweep marker of a running garbage collection. */
export const SWEEP_MARKER_KEY = 'chunk-gc/sweep.json';
/** Every manifest key ends with this. */
export const MANIFEST_SUFFIX = '.manifest.json';

const SAFE_ACCOUNT = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The key segment of an account id: the id itself when it is short and plain
 * (`[A-Za-z0-9_-]{1,64}`), else `~` and the first 32 hex characters of its SHA-256. One account
 * never shares a segment with another, and no id can make a segment that leaves its folder.
 */
export function accountKeySegment(accountId: string): string {
  if (SAFE_ACCOUNT.test(accountId)) return accountId;
  return `~${createHash('sha256').update(accountId, 'utf8').digest('hex').slice(0, 32)}`;
}

/** The folder of the chunks of a scope (ends with `/`). */
export function chunkFolder(scope: ChunkScope): string {
  return scope.kind === 'storage' ? CHUNKS_PREFIX : `${ACCOUNT_CHUNKS_PREFIX}${accountKeySegment(scope.accountId)}/chunks/`;
}

/** The key of a chunk. @throws VALIDATION_FAILED when `sha256` is not 64 lowercase hex characters. */
export function chunkKey(scope: ChunkScope, sha256: string): string {
  if (!SHA256_PATTERN.test(sha256)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'A chunk digest must be 64 lowercase hex characters', {
      fields: [{ path: 'sha256', message: 'must be 64 lowercase hex characters' }],
    });
  }
  return `${chunkFolder(scope)}${sha256.slice(0, 2)}/${sha256}`;
}

const CHUNK_KEY = /^(?:chunks|accounts\/[^/]+\/chunks)\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

/** The digest of a chunk key, or null when `key` is not one. */
export function chunkDigestOfKey(key: string): string | null {
  const match = CHUNK_KEY.exec(key);
  if (!match?.[2] || !match[2].startsWith(match[1] ?? '')) return null;
  return match[2];
}

const LEASE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** Checks a lease id: 1–128 of `[A-Za-z0-9._-]`, not starting with a dot. @throws VALIDATION_FAILED. */
export function checkLeaseId(leaseId: unknown): string {
  if (typeof leaseId !== 'string' || !LEASE_ID.test(leaseId)) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      'A lease id must be 1–128 characters of A–Z, a–z, 0–9, ".", "_" or "-", not starting with "."',
      {
        fields: [{ path: 'leaseId', message: 'must match [A-Za-z0-9_-][A-Za-z0-9._-]{0,127}' }],
      },
    );
  }
  return leaseId;
}

/** The key of a lease. */
export function leaseKey(leaseId: string): string {
  return `${LEASES_PREFIX}${checkLeaseId(leaseId)}.json`;
}

/** The key of a lease part (immutable: written once, deleted with its lease). */
export function leasePartKey(leaseId: string, part: number): string {
  return `${leasePartsPrefix(leaseId)}${part}.json`;
}

/** The folder of a lease's parts. */
export function leasePartsPrefix(leaseId: string): string {
  return `${LEASES_PREFIX}parts/${checkLeaseId(leaseId)}/`;
}

/** The lease id of a lease key, or null when `key` is not one (parts are not leases). */
export function leaseIdOfKey(key: string): string | null {
  if (!key.startsWith(LEASES_PREFIX) || !key.endsWith('.json')) return null;
  const id = key.slice(LEASES_PREFIX.length, -'.json'.length);
  return LEASE_ID.test(id) ? id : null;
}

/** The lease id and part number of a part key, or null. */
export function leasePartOfKey(key: string): { leaseId: string; part: number } | null {
  const match = /^chunk-leases\/parts\/([^/]+)\/(\d{1,9})\.json$/.exec(key);
  if (!match?.[1] || !match[2] || !LEASE_ID.test(match[1])) return null;
  return { leaseId: match[1], part: Number(match[2]) };
}

/** True when `key` lies in a folder of the chunked layout itself (chunks, leases, GC marker). */
export function isReservedKey(key: string): boolean {
  return (
    key.startsWith(CHUNKS_PREFIX) || key.startsWith(LEASES_PREFIX) || key.startsWith('chunk-gc/') || /^accounts\/[^/]+\/chunks\//.test(key)
  );
}

/**
 * Checks and normalizes a manifest key: a valid storage key ending in `.manifest.json`, outside
 * the layout's own folders (garbage collection finds manifests by that suffix, so a manifest
 * stored anywhere else would not protect its chunks).
 * @throws VALIDATION_FAILED naming `key`.
 */
export function checkManifestKey(key: unknown): string {
  const normalized = normalizeStorageKey(key, 'key');
  if (!normalized.endsWith(MANIFEST_SUFFIX) || isReservedKey(normalized)) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      `A chunk manifest key must end in "${MANIFEST_SUFFIX}" and lie outside chunks/, accounts/*/chunks/, chunk-leases/ and chunk-gc/`,
      { fields: [{ path: 'key', message: `must end in ${MANIFEST_SUFFIX} outside the chunk folders` }] },
    );
  }
  return normalized;
}
