/**
 * Garbage collection of chunks no manifest and no live lease names (G0–G4 of the protocol in
 * docs/architecture.md, "Chunked layout"). Leases are read before manifests, so a capture that
 * commits (manifest, then lease deleted) while the collector reads is seen in one or the other;
 * the sweep marker keeps captures from relying on a chunk the collector may be deleting.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { InstanceImagesError } from '../errors';
import { listChunks, readManifests } from './catalog';
import { forEachLimit, listAll, putBuffer, readObject, throwIfAborted, type ChunkContext } from './context';
import { LEASES_PREFIX, SWEEP_MARKER_KEY, chunkKey, leaseIdOfKey, leasePartKey, leasePartOfKey } from './keys';
import { LeasePartSchema, LeaseSchema, MAX_LEASE_BYTES, SWEEP_SETTLE_MS, isFreshMarker, readSweepMarker, safeJson } from './lease';

/** What a garbage collection found and did. */
export interface GarbageReport {
  /** Chunk objects listed. */
  chunks: number;
  /** Listed chunks kept because a manifest or a live lease names them. */
  referenced: number;
  /** Chunks deleted (with dryRun: that would be deleted). */
  deleted: number;
  /** Stored bytes of those chunks. */
  bytesFreed: number;
  /** Expired leases (deleted unless dryRun). */
  leasesExpired: number;
}

/** Options of {@link ChunkStore.collectGarbage}. */
export interface CollectGarbageOptions {
  /** List what would be deleted without deleting anything (no marker is written). */
  dryRun?: boolean;
  signal?: AbortSignal;
}

/**
 * The collector's marker (G0): written with a fresh random id, refreshed every third of sweepTtlMs,
 * and marked finished at the end (G4). It is never deleted: its id is how a writer that stored a
 * chunk before its lease named it learns whether a collection started meanwhile.
 */
class SweepMarker {
  readonly #ctx: ChunkContext;
  readonly #gcId = randomUUID();
  readonly #startedAt: string;
  #refreshedAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #chain: Promise<void> = Promise.resolve();

  constructor(ctx: ChunkContext) {
    this.#ctx = ctx;
    this.#startedAt = ctx.now().toISOString();
  }

  async begin(signal?: AbortSignal): Promise<void> {
    const existing = await readSweepMarker(this.#ctx, signal);
    if (existing !== null && !existing.finished && isFreshMarker(this.#ctx, existing.refreshedAt)) {
      throw new InstanceImagesError(
        'CONFLICT',
        'Another chunk garbage collection is running on this storage; try again when it has finished',
        {
          details: { gcId: existing.gcId },
        },
      );
    }
    await this.#write();
    this.#timer = setInterval(
      () => {
        this.#chain = this.#chain
          .then(() => this.#write())
          .catch((error: unknown) => this.#ctx.logger.warn('Refreshing the chunk sweep marker failed', { error: String(error) }));
      },
      Math.max(1, Math.floor(this.#ctx.sweepTtlMs / 3)),
    );
    this.#timer.unref();
  }

  async #write(finished = false): Promise<void> {
    const now = this.#ctx.now();
    const marker = {
      format: 1,
      gcId: this.#gcId,
      startedAt: this.#startedAt,
      refreshedAt: now.toISOString(),
      ...(finished ? { finishedAt: now.toISOString() } : {}),
    };
    await putBuffer(this.#ctx, SWEEP_MARKER_KEY, Buffer.from(JSON.stringify(marker)));
    this.#refreshedAt = now.getTime();
  }

  /** Deleting is allowed only while writers certainly see the marker as fresh. @throws STORAGE_UNAVAILABLE. */
  assertFresh(): void {
    if (this.#ctx.now().getTime() - this.#refreshedAt < this.#ctx.sweepTtlMs * 0.75) return;
    throw new InstanceImagesError(
      'STORAGE_UNAVAILABLE',
      'The chunk garbage collection stopped deleting: its sweep marker could not be refreshed in time; run it again',
      { details: { reason: 'marker-lapsed' } },
    );
  }

  async end(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#chain;
    const current = await readSweepMarker(this.#ctx).catch(() => null);
    if (current === null || current.gcId === null || current.gcId === this.#gcId) await this.#write(true);
  }
}

/** A damaged lease object: the collection stops before it deletes anything. */
function damagedLease(key: string, what: string): InstanceImagesError {
  return new InstanceImagesError('INVALID_STATE', `${what} ${key} cannot be read; garbage collection stopped without deleting anything`, {
    details: { key },
  });
}

/**
 * G2a: the chunk keys live leases name; expired leases are counted and (unless dryRun) deleted.
 * A live head of format 2 protects the digests of every part listed with it (parts are written
 * before the marker read that lets their run rely on them, so a collection that started after that
 * read lists them); one of format 1 those of the parts it counts.
 */
async function readLeases(ctx: ChunkContext, referenced: Set<string>, dryRun: boolean, signal?: AbortSignal): Promise<number> {
  const heads: { key: string; leaseId: string; modifiedAt: Date }[] = [];
  const parts = new Map<string, { key: string; modifiedAt: Date }[]>();
  for await (const object of listAll(ctx, LEASES_PREFIX, signal)) {
    const leaseId = leaseIdOfKey(object.key);
    if (leaseId !== null) heads.push({ key: object.key, leaseId, modifiedAt: object.modifiedAt });
    const part = leasePartOfKey(object.key);
    if (part !== null) parts.set(part.leaseId, [...(parts.get(part.leaseId) ?? []), { key: object.key, modifiedAt: object.modifiedAt }]);
  }
  const now = ctx.now().getTime();
  const expired = (time: number) => now - time >= ctx.leaseTtlMs;
  const readOptions = { maxBytes: MAX_LEASE_BYTES, ...(signal ? { signal } : {}) };
  let leasesExpired = 0;
  for (const head of heads) {
    throwIfAborted(signal, 'The chunk garbage collection');
    const listed = parts.get(head.leaseId) ?? [];
    parts.delete(head.leaseId);
    const bytes = await readObject(ctx, head.key, readOptions);
    if (bytes === null) continue; // released since the listing: its manifest, if any, is read next
    const lease = LeaseSchema.safeParse(safeJson(bytes));
    if (!lease.success || lease.data.leaseId !== head.leaseId) {
      if (!expired(head.modifiedAt.getTime())) throw damagedLease(head.key, 'The chunk lease');
      leasesExpired += 1;
      if (!dryRun) await ctx.disk.delete(head.key);
      continue;
    }
    const counted = lease.data.format === 1 ? Array.from({ length: lease.data.parts }, (_, part) => leasePartKey(head.leaseId, part)) : [];
    if (expired(Date.parse(lease.data.refreshedAt))) {
      leasesExpired += 1;
      if (!dryRun) {
        await ctx.disk.delete(head.key);
        for (const key of new Set([...counted, ...listed.map((part) => part.key)])) await ctx.disk.delete(key);
      }
      continue;
    }
    const { scope } = lease.data;
    const add = (digests: string[]) => digests.forEach((digest) => referenced.add(chunkKey(scope, digest)));
    if (lease.data.format === 1) {
      add(lease.data.digests);
      for (const key of counted) {
        const partBytes = await readObject(ctx, key, readOptions);
        const parsed = partBytes === null ? null : LeasePartSchema.safeParse(safeJson(partBytes));
        if (parsed?.success) {
          add(parsed.data.digests);
          continue;
        }
        // A part goes only after its lease: a missing part with its lease still there is damage.
        if ((await ctx.disk.stat(head.key)) === null) break;
        throw damagedLease(key, 'The chunk lease part');
      }
      continue;
    }
    await forEachLimit(listed, ctx.parallel, async (part) => {
      const partBytes = await readObject(ctx, part.key, readOptions);
      if (partBytes === null) return; // deleted with its lease since the listing
      const parsed = LeasePartSchema.safeParse(safeJson(partBytes));
      if (!parsed.success || parsed.data.leaseId !== head.leaseId) throw damagedLease(part.key, 'The chunk lease part');
      add(parsed.data.digests);
    });
  }
  // Parts whose lease is gone (a run that died while releasing): removed once old enough.
  for (const [leaseId, orphans] of parts) {
    if (heads.some((head) => head.leaseId === leaseId) || dryRun) continue;
    for (const orphan of orphans) if (expired(orphan.modifiedAt.getTime())) await ctx.disk.delete(orphan.key);
  }
  return leasesExpired;
}

/** G2b: the chunk keys the manifests name. An unreadable manifest stops the collection. */
async function readManifestReferences(ctx: ChunkContext, referenced: Set<string>, signal?: AbortSignal): Promise<void> {
  for await (const found of readManifests(ctx, signal)) {
    if (found.error) {
      throw new InstanceImagesError(
        found.error.code,
        `Garbage collection stopped without deleting anything: the manifest ${found.key} cannot be read, so the chunks it names are unknown (${found.error.message}); restore or delete it`,
        { cause: found.error, details: { key: found.key } },
      );
    }
    for (const chunk of found.manifest.chunks) if (chunk !== null) referenced.add(chunkKey(found.manifest.scope, chunk.sha256));
  }
}

/** The collector of {@link ChunkStore.collectGarbage}. */
export async function collectGarbage(ctx: ChunkContext, options: CollectGarbageOptions = {}): Promise<GarbageReport> {
  const dryRun = options.dryRun === true;
  const { signal } = options;
  const marker = dryRun ? null : new SweepMarker(ctx);
  await marker?.begin(signal); // G0
  try {
    const listed = await listChunks(ctx, signal); // G1
    // Writers' cover rounds send their marker read beside the lease part it covers: a part whose
    // read came before G0 is stored within COVER_READ_BOUND_MS of it, so before this wait ends.
    if (marker) await ctx.sleep(SWEEP_SETTLE_MS, signal);
    throwIfAborted(signal, 'The chunk garbage collection');
    const referenced = new Set<string>();
    const leasesExpired = await readLeases(ctx, referenced, dryRun, signal); // G2: leases first,
    await readManifestReferences(ctx, referenced, signal); // then manifests
    const garbage = [...listed].filter(([key]) => !referenced.has(key));
    const report: GarbageReport = {
      chunks: listed.size,
      referenced: listed.size - garbage.length,
      deleted: 0,
      bytesFreed: 0,
      leasesExpired,
    };
    if (dryRun) return { ...report, deleted: garbage.length, bytesFreed: garbage.reduce((sum, [, size]) => sum + size, 0) };
    await forEachLimit(garbage, ctx.parallel, async ([key, size]) => {
      throwIfAborted(signal, 'The chunk garbage collection');
      marker?.assertFresh();
      await ctx.disk.delete(key); // G3
      report.deleted += 1;
      report.bytesFreed += size;
    });
    ctx.logger.info('Chunk garbage collection finished', { ...report });
    return report;
  } finally {
    // G4; a marker that cannot be marked finished goes stale after sweepTtlMs, and writers then go on
    await marker?.end().catch((error: unknown) => ctx.logger.warn('Marking the chunk sweep finished failed', { error: String(error) }));
  }
}
