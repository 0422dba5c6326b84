/**
 * Leases and the sweep marker: the two objects through which captures, deploys and garbage
 * collection agree on which chunks may not be deleted (docs/architecture.md, "Chunked layout").
 *
 * A lease (`chunk-leases/<leaseId>.json`) lists the digests a run names or may name, with the time
 * it was last written. It grows as the run decides on chunks; to keep each rewrite small, every
 * {@link LEASE_PART_DIGESTS} digests are sealed into an immutable part
 * (`chunk-leases/parts/<leaseId>/<n>.json`), written before the lease that counts it.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, isInstanceImagesError } from '../errors';
import { putBuffer, readObject, throwIfAborted, type ChunkContext } from './context';
import { SWEEP_MARKER_KEY, leaseKey, leasePartKey } from './keys';
import { ChunkScopeSchema, SHA256_PATTERN, type ChunkScope } from './manifest';

/** Digests a lease holds itself before they are sealed into a part. */
export const LEASE_PART_DIGESTS = 1024;
/** The largest lease or part object read (bytes). */
export const MAX_LEASE_BYTES = 8 * 1024 * 1024;

const Digests = z.array(z.string().regex(SHA256_PATTERN)).max(1024 * 1024);

/** The stored form of a lease. */
export const LeaseSchema = z.strictObject({
  format: z.literal(1),
  leaseId: z.string(),
  scope: ChunkScopeSchema,
  refreshedAt: z.iso.datetime({ offset: true }),
  parts: z.number().int().min(0).max(1_000_000),
  digests: Digests,
});
/** The stored form of a sealed lease part. */
export const LeasePartSchema = z.strictObject({
  format: z.literal(1),
  leaseId: z.string(),
  part: z.number().int().min(0),
  writtenAt: z.iso.datetime({ offset: true }),
  digests: Digests,
});

/**
 * The stored form of the sweep marker: a collection's, refreshed while it runs (G0), and kept with
 * `finishedAt` once it ended (G4), so that the marker's `gcId` tells writers whether a collection
 * started since they last read it.
 */
export const SweepMarkerSchema = z.strictObject({
  format: z.literal(1),
  gcId: z.string(),
  startedAt: z.iso.datetime({ offset: true }),
  refreshedAt: z.iso.datetime({ offset: true }),
  finishedAt: z.iso.datetime({ offset: true }).optional(),
});

/**
 * What one read of the sweep marker found: whether a collection runs (`running`: its marker is
 * fresh and not finished), and the id of the newest collection (`gcId`; null when there is no
 * marker or it does not parse). Every collection writes a fresh random id when it starts, and the
 * marker is never deleted, so two reads that find no collection running and the same `gcId` prove
 * that no collection started between them.
 */
export interface SweepState {
  running: boolean;
  gcId: string | null;
}

/** A lease is trusted for this share of its TTL after it was written: the rest absorbs clock skew and slow writes. */
const TRUSTED_SHARE = 0.75;

/**
 * The lease of one capture or deploy. {@link ChunkLease.add} records digests; {@link
 * ChunkLease.cover} writes them and waits out a running sweep, after which the run may rely on
 * them. A timer rewrites the lease every third of its TTL; a lease that was not rewritten in time
 * is lapsed for good, and {@link ChunkLease.assertHeld} fails from then on.
 */
export class ChunkLease {
  readonly key: string;
  readonly #ctx: ChunkContext;
  readonly #leaseId: string;
  readonly #scope: ChunkScope;
  readonly #partSize: number;
  readonly #known = new Set<string>();
  #open: string[] = [];
  #parts = 0;
  #added = 0;
  #covered = 0;
  /** What the sweep-marker read of the last completed {@link cover} found. */
  #sweep: SweepState = { running: false, gcId: null };
  /** The {@link add} count the last successful write included. */
  #written = -1;
  #refreshedAt: number | null = null;
  #lapsed: InstanceImagesError | null = null;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #released = false;

  constructor(ctx: ChunkContext, leaseId: string, scope: ChunkScope, partSize = LEASE_PART_DIGESTS) {
    this.key = leaseKey(leaseId);
    this.#ctx = ctx;
    this.#leaseId = leaseId;
    this.#scope = scope;
    this.#partSize = partSize;
  }

  /** Records digests the run names or may name; true when any was new. */
  add(digests: Iterable<string>): boolean {
    let added = false;
    for (const digest of digests) {
      if (this.#known.has(digest)) continue;
      this.#known.add(digest);
      this.#open.push(digest);
      added = true;
    }
    if (added) this.#added += 1;
    return added;
  }

  /** True when `digest` is in the lease (written or about to be). */
  has(digest: string): boolean {
    return this.#known.has(digest);
  }

  /**
   * Makes every digest added so far safe to rely on: writes the lease (W1), then waits while a
   * collection runs (Wm). Does nothing when that was done since the last {@link add}.
   * @returns what the last marker read found (no collection running, and the newest one's id).
   */
  async cover(signal?: AbortSignal): Promise<SweepState> {
    if (this.#covered === this.#added && this.#refreshedAt !== null) {
      this.assertHeld();
      return this.#sweep;
    }
    const target = this.#added;
    await this.write();
    const sweep = await waitForSweep(this.#ctx, signal);
    this.#covered = Math.max(this.#covered, target);
    this.#sweep = sweep;
    this.assertHeld();
    return sweep;
  }

  /** Starts the refresh timer (every third of the TTL). */
  startRefreshing(): void {
    if (this.#timer || this.#released) return;
    this.#timer = setInterval(
      () => {
        this.write().catch((error: unknown) =>
          this.#ctx.logger.warn('Refreshing a chunk lease failed', { key: this.key, error: String(error) }),
        );
      },
      Math.max(1, Math.floor(this.#ctx.leaseTtlMs / 3)),
    );
    this.#timer.unref();
  }

  /**
   * Writes the lease when its refresh is due (its last write started a third of the TTL ago or
   * more, when the timer would write it) or digests were added since, and otherwise leaves it: a
   * lease written since then, naming every digest, is
   * as live for a collector as one written now. Before a commit's manifest (W4), this saves a
   * request when the lease is fresh; what makes W4 safe is {@link assertHeld} after it.
   */
  async refreshIfDue(): Promise<void> {
    await this.#chain;
    const refreshedAt = this.#refreshedAt;
    const fresh = refreshedAt !== null && this.#ctx.now().getTime() - refreshedAt < this.#ctx.leaseTtlMs / 3;
    if (fresh && this.#written === this.#added) return;
    await this.write();
  }

  /** Writes the lease now (serialized with other writes); seals full parts first. */
  write(): Promise<void> {
    const run = this.#chain.then(() => this.#writeNow());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #writeNow(): Promise<void> {
    if (this.#released) return;
    const ctx = this.#ctx;
    while (this.#open.length >= this.#partSize) {
      const digests = this.#open.slice(0, this.#partSize);
      const part = { format: 1, leaseId: this.#leaseId, part: this.#parts, writtenAt: ctx.now().toISOString(), digests };
      await putBuffer(ctx, leasePartKey(this.#leaseId, this.#parts), Buffer.from(JSON.stringify(part)));
      this.#parts += 1;
      this.#open = this.#open.slice(this.#partSize);
    }
    const startedAt = ctx.now().getTime();
    const added = this.#added;
    const lease = {
      format: 1,
      leaseId: this.#leaseId,
      scope: this.#scope,
      refreshedAt: new Date(startedAt).toISOString(),
      parts: this.#parts,
      digests: this.#open,
    };
    await putBuffer(ctx, this.key, Buffer.from(JSON.stringify(lease)));
    const previous = this.#refreshedAt;
    if (previous !== null && ctx.now().getTime() - previous >= ctx.leaseTtlMs * TRUSTED_SHARE) this.#lapse();
    this.#refreshedAt = startedAt;
    this.#written = added;
  }

  #lapse(): void {
    this.#lapsed ??= new InstanceImagesError(
      'STORAGE_UNAVAILABLE',
      `The chunk lease ${this.key} could not be refreshed in time, so garbage collection may have removed chunks this run relies on; retry`,
      { details: { key: this.key, reason: 'lease-lapsed' } },
    );
  }

  /** @throws STORAGE_UNAVAILABLE (retryable) when the lease lapsed or is older than it may be trusted. */
  assertHeld(): void {
    if (this.#refreshedAt !== null && this.#ctx.now().getTime() - this.#refreshedAt >= this.#ctx.leaseTtlMs * TRUSTED_SHARE) this.#lapse();
    if (this.#lapsed) throw this.#lapsed;
    if (this.#released) throw new InstanceImagesError('INVALID_STATE', `The chunk lease ${this.key} was already released`);
  }

  /** Stops refreshing and deletes the lease and its parts (best effort: an orphan expires). */
  async release(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#chain;
    if (this.#released) return;
    this.#released = true;
    try {
      await this.#ctx.disk.delete(this.key);
      for (let part = 0; part < this.#parts; part++) await this.#ctx.disk.delete(leasePartKey(this.#leaseId, part));
    } catch (error) {
      this.#ctx.logger.warn('Deleting a chunk lease failed; it expires on its own', { key: this.key, error: String(error) });
    }
  }
}

/**
 * The sweep marker, or null when there is none. A marker that does not parse counts as running
 * from its stored time, without an id.
 */
export async function readSweepMarker(
  ctx: ChunkContext,
  signal?: AbortSignal,
): Promise<{ gcId: string | null; refreshedAt: number; finished: boolean } | null> {
  const bytes = await readObject(ctx, SWEEP_MARKER_KEY, signal ? { maxBytes: 64 * 1024, signal } : { maxBytes: 64 * 1024 });
  if (bytes === null) return null;
  try {
    const marker = SweepMarkerSchema.parse(JSON.parse(bytes.toString('utf8')));
    return { gcId: marker.gcId, refreshedAt: Date.parse(marker.refreshedAt), finished: marker.finishedAt !== undefined };
  } catch {
    const stored = await ctx.disk.stat(SWEEP_MARKER_KEY);
    return stored ? { gcId: null, refreshedAt: stored.modifiedAt.getTime(), finished: false } : null;
  }
}

/** True when a marker refreshed at `refreshedAt` still counts. */
export function isFreshMarker(ctx: ChunkContext, refreshedAt: number): boolean {
  return ctx.now().getTime() - refreshedAt < ctx.sweepTtlMs;
}

/** One read of the sweep marker: is a collection running (fresh, not finished), and the newest one's id. */
export async function readSweepState(ctx: ChunkContext, signal?: AbortSignal): Promise<SweepState> {
  const marker = await readSweepMarker(ctx, signal);
  if (marker === null) return { running: false, gcId: null };
  return { running: !marker.finished && isFreshMarker(ctx, marker.refreshedAt), gcId: marker.gcId };
}

/**
 * Waits while a collection runs (Wm): a fresh marker that is not finished. A stale marker (older
 * than sweepTtlMs: its collector stopped refreshing it, and so stopped deleting) is ignored.
 * @returns the last read, which found no collection running.
 */
export async function waitForSweep(ctx: ChunkContext, signal?: AbortSignal): Promise<SweepState> {
  let logged = false;
  for (;;) {
    const state = await readSweepState(ctx, signal);
    if (!state.running) return state;
    if (!logged) ctx.logger.info('Waiting for a chunk garbage collection to finish', { gcId: state.gcId });
    logged = true;
    await ctx.sleep(ctx.sweepPollMs, signal);
    throwIfAborted(signal);
  }
}

/** Deletes a lease and its parts (recovery of runs that are gone); idempotent. */
export async function deleteLease(ctx: ChunkContext, leaseId: string): Promise<void> {
  const key = leaseKey(leaseId);
  const bytes = await readObject(ctx, key, { maxBytes: MAX_LEASE_BYTES }).catch((error: unknown) => {
    if (isInstanceImagesError(error, 'VALIDATION_FAILED')) return null;
    throw error;
  });
  let parts = 0;
  if (bytes !== null) {
    const parsed = LeaseSchema.safeParse(safeJson(bytes));
    if (parsed.success) parts = parsed.data.parts;
  }
  await ctx.disk.delete(key);
  for (let part = 0; part < parts; part++) await ctx.disk.delete(leasePartKey(leaseId, part));
}

/** JSON.parse that returns undefined on bad input. */
export function safeJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
