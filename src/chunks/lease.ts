/**
 * Leases and the sweep marker: the two objects through which captures, deploys and garbage
 * collection agree on which chunks may not be deleted (docs/architecture.md, "Chunked layout").
 *
 * A lease is a head (`chunk-leases/<leaseId>.json`), whose time of writing says the lease is live,
 * and immutable parts (`chunk-leases/parts/<leaseId>/<n>.json`), each naming some of the digests the
 * run names or may name. A run writes a new part for the digests it adds, never rewriting one, so
 * the writes of several cover rounds go on side by side; the collector lists a live head's parts
 * rather than counting them. Leases of format 1 (a head that counted its parts and held the
 * digests not yet sealed into one, rewritten whole each time) are still read.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError } from '../errors';
import { listAll, putBuffer, readObject, throwIfAborted, type ChunkContext } from './context';
import { SWEEP_MARKER_KEY, leaseKey, leasePartKey, leasePartsPrefix } from './keys';
import { ChunkScopeSchema, SHA256_PATTERN, type ChunkScope } from './manifest';

/**
 * How long a collection waits after writing its sweep marker (G0) before it lists chunks and leases
 * (G1, G2): a writer may have sent its marker read (Wc) just before G0, beside the lease part the
 * read covers (W1), and that part must be listed. See {@link COVER_READ_BOUND_MS}.
 */
export const SWEEP_SETTLE_MS = 2000;
/**
 * A cover round's marker read, sent beside its lease part, counts only when the part was stored
 * within this long of the read being sent (half of {@link SWEEP_SETTLE_MS}, measured by the writer
 * from before sending to after the part's answer); otherwise the round reads the marker again, after
 * the part. A collection whose marker the read did not see waits {@link SWEEP_SETTLE_MS} after it,
 * so it lists leases after the part was stored.
 */
export const COVER_READ_BOUND_MS = 1000;

/** The most digests one lease part names. */
export const LEASE_PART_DIGESTS = 1024;
/** The largest lease or part object read (bytes). */
export const MAX_LEASE_BYTES = 8 * 1024 * 1024;

const Digests = z.array(z.string().regex(SHA256_PATTERN)).max(1024 * 1024);

/** The stored form of a lease of format 1 (written by earlier versions; still read). */
export const LeaseV1Schema = z.strictObject({
  format: z.literal(1),
  leaseId: z.string(),
  scope: ChunkScopeSchema,
  refreshedAt: z.iso.datetime({ offset: true }),
  parts: z.number().int().min(0).max(1_000_000),
  digests: Digests,
});
/** The stored form of a lease head (format 2): its digests are in its parts, found by listing. */
export const LeaseHeadSchema = z.strictObject({
  format: z.literal(2),
  leaseId: z.string(),
  scope: ChunkScopeSchema,
  refreshedAt: z.iso.datetime({ offset: true }),
});
/** A stored lease of either format. */
export const LeaseSchema = z.discriminatedUnion('format', [LeaseV1Schema, LeaseHeadSchema]);
/** The stored form of a lease part. */
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
 * ChunkLease.write} stores those not yet in a part as new parts (and the head the first time), and
 * several such writes may run at once; {@link ChunkLease.cover} writes and then waits out a running
 * sweep, after which the run may rely on the digests. A timer rewrites the head every third of its
 * TTL; a lease whose head was not rewritten in time is lapsed for good, and {@link
 * ChunkLease.assertHeld} fails from then on.
 */
export class ChunkLease {
  readonly key: string;
  readonly #ctx: ChunkContext;
  readonly #leaseId: string;
  readonly #scope: ChunkScope;
  readonly #partSize: number;
  readonly #known = new Set<string>();
  /** Digests added and not yet taken into a part. */
  #open: string[] = [];
  /** Parts numbered so far (written or being written). */
  #parts = 0;
  #added = 0;
  #covered = 0;
  /** What the sweep-marker read of the last completed {@link cover} found. */
  #sweep: SweepState = { running: false, gcId: null };
  /** The first head write (every write resolves only once it is stored), or null before it began. */
  #headWritten: Promise<void> | null = null;
  #refreshedAt: number | null = null;
  #lapsed: InstanceImagesError | null = null;
  /** Head writes, one at a time. */
  #headChain: Promise<void> = Promise.resolve();
  /** Every write begun and not yet settled (release waits for them). */
  readonly #writing = new Set<Promise<void>>();
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
   * Makes every digest added so far safe to rely on: writes them (W1), then waits while a
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

  /** Starts the refresh timer (every third of the TTL): it rewrites the head. */
  startRefreshing(): void {
    if (this.#timer || this.#released) return;
    this.#timer = setInterval(
      () => {
        this.#track(this.#writeHead()).catch((error: unknown) =>
          this.#ctx.logger.warn('Refreshing a chunk lease failed', { key: this.key, error: String(error) }),
        );
      },
      Math.max(1, Math.floor(this.#ctx.leaseTtlMs / 3)),
    );
    this.#timer.unref();
  }

  /**
   * Writes what is due before a commit's manifest (W4): the digests added and not yet in a part,
   * and the head when its refresh is due (its last write started a third of the TTL ago or more,
   * when the timer would write it). A head written since then is as live for a collector as one
   * written now, so a fresh lease costs no request here; what makes W4 safe is {@link assertHeld}
   * after it.
   */
  async refreshIfDue(): Promise<void> {
    await this.#headChain;
    const refreshedAt = this.#refreshedAt;
    const fresh = refreshedAt !== null && this.#ctx.now().getTime() - refreshedAt < this.#ctx.leaseTtlMs / 3;
    // The first head is written by write(); a later one only when due.
    const first = this.#headWritten === null;
    await Promise.all([this.#open.length > 0 || first ? this.write() : undefined, fresh || first ? undefined : this.#writeHead()]);
  }

  /**
   * Stores every digest added and not yet in a part, as new parts; the first call writes the head
   * too. Calls may overlap: each part is a new object. Resolves once those parts (and the head) are
   * stored.
   */
  write(): Promise<void> {
    return this.#track(this.#writeNow());
  }

  #track(write: Promise<void>): Promise<void> {
    this.#writing.add(write);
    void write.catch(() => undefined).finally(() => this.#writing.delete(write));
    return write;
  }

  async #writeNow(): Promise<void> {
    if (this.#released) return;
    const ctx = this.#ctx;
    const digests = this.#open;
    this.#open = [];
    const puts: Promise<void>[] = [];
    if (this.#headWritten === null) {
      const head = this.#writeHead();
      this.#headWritten = head;
      // A failed first head is written again by the next write.
      head.catch(() => {
        if (this.#headWritten === head) this.#headWritten = null;
      });
    }
    puts.push(this.#headWritten);
    for (let from = 0; from < digests.length; from += this.#partSize) {
      const number = this.#parts;
      this.#parts += 1;
      const part = {
        format: 1,
        leaseId: this.#leaseId,
        part: number,
        writtenAt: ctx.now().toISOString(),
        digests: digests.slice(from, from + this.#partSize),
      };
      puts.push(putBuffer(ctx, leasePartKey(this.#leaseId, number), Buffer.from(JSON.stringify(part))));
    }
    const results = await Promise.allSettled(puts);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) {
      // Some of those digests may be in no part: the next write names them all again (a part that
      // was stored only repeats them). No spread: a large disk's base names 100 000s of digests.
      this.#open = digests.concat(this.#open);
      throw failed.reason;
    }
  }

  /** Writes the head now (serialized with other head writes). */
  #writeHead(): Promise<void> {
    const run = this.#headChain.then(() => this.#writeHeadNow());
    this.#headChain = run.catch(() => undefined);
    return run;
  }

  async #writeHeadNow(): Promise<void> {
    if (this.#released) return;
    const ctx = this.#ctx;
    const startedAt = ctx.now().getTime();
    const head = { format: 2, leaseId: this.#leaseId, scope: this.#scope, refreshedAt: new Date(startedAt).toISOString() };
    await putBuffer(ctx, this.key, Buffer.from(JSON.stringify(head)));
    const previous = this.#refreshedAt;
    if (previous !== null && ctx.now().getTime() - previous >= ctx.leaseTtlMs * TRUSTED_SHARE) this.#lapse();
    this.#refreshedAt = startedAt;
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

  /** Stops refreshing and deletes the head and the parts, side by side (best effort: an orphan expires). */
  async release(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    while (this.#writing.size > 0) await Promise.allSettled([...this.#writing]);
    if (this.#released) return;
    this.#released = true;
    const keys = [this.key];
    for (let part = 0; part < this.#parts; part++) keys.push(leasePartKey(this.#leaseId, part));
    const results = await Promise.allSettled(keys.map((key) => this.#ctx.disk.delete(key)));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) {
      this.#ctx.logger.warn('Deleting a chunk lease failed; it expires on its own', { key: this.key, error: String(failed.reason) });
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

/** Deletes a lease and its parts, of either format (recovery of runs that are gone); idempotent. */
export async function deleteLease(ctx: ChunkContext, leaseId: string): Promise<void> {
  const key = leaseKey(leaseId);
  await ctx.disk.delete(key);
  const parts: string[] = [];
  for await (const object of listAll(ctx, leasePartsPrefix(leaseId))) parts.push(object.key);
  for (const part of parts) await ctx.disk.delete(part);
}

/** JSON.parse that returns undefined on bad input. */
export function safeJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
