/**
 * In-process fakes of OUR ports (storage driver, hypervisor driver, host directory) for unit tests
 * of the services. They share one "world" so a capture into a path is visible to the storage.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { InstanceImagesError } from '../../src/errors';
import type { HostDirectory, HostHypervisor, HostInstance } from '../../src/ports/host-directory';
import type {
  CapturedChunk,
  CaptureRequest,
  CaptureResult,
  DomainInfo,
  ChunkCaptureOutput,
  HypervisorDriver,
  HypervisorDriverFactory,
  MaterializeRequest,
} from '../../src/ports/hypervisor-driver';
import type { StorageDriver, StorageDriverFactory, StoredObject } from '../../src/ports/storage-driver';
import type { Executor, ExecutorProvider } from '../../src/ports/executor';

export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

export interface FakeDomain {
  state: 'running' | 'shutoff';
  disk: Buffer;
  virtualSize: number;
  /** What `inspect` reports of the domain's boot (firmware, architecture); absent: not reported. */
  boot?: { firmware: 'bios' | 'uefi' | null; architecture: string | null };
  /** What `inspect` reports of the guest (OS type, cloud-init) from the domain's definition; absent: not reported. */
  guest?: Pick<DomainInfo, 'osType' | 'cloudInit'>;
  /** Chunked captures: checkpoints of the disk, each with the byte ranges written since it was created. */
  checkpoints?: Map<string, Array<[number, number]>>;
}

/** The shared state of the fakes. */
export class FakeWorld {
  /** Files by "bucket:key" (stream storages) or absolute path (path storages, hypervisor disks). */
  readonly files = new Map<string, { bytes: Buffer; modifiedAt: Date }>();
  readonly domains = new Map<string, FakeDomain>();
  readonly instances = new Map<string, HostInstance>();
  readonly hypervisors = new Map<string, HostHypervisor>();
  readonly mounted = new Map<string, string>();
  /** The storage root each path a hypervisor driver was given came with (`null`: none), in order. */
  readonly pathRoots: Array<{ operation: string; path: string; root: string | null }> = [];
  /** Free bytes reported by storages and hypervisors (null = unlimited for storages). */
  storageFree: number | null = null;
  scratchFree = 1e12;
  /** Make the next capture fail with this code. */
  failNextCapture: string | null = null;
  /** Corrupt the bytes a stream capture reports (sha mismatch). */
  corruptNextStream = false;
  /** Make deletes fail with STORAGE_UNAVAILABLE. */
  failDeletes = false;
  /** When set, captures wait for this promise (to test cancel and races). */
  captureGate: Promise<void> | null = null;
  /** When set, deploys (materialize) wait for this promise. */
  deployGate: Promise<void> | null = null;
  captures = 0;
  /** Chunked captures: when set, the capture waits for it halfway through the disk (cancel mid-capture). */
  midCaptureGate: Promise<void> | null = null;
  /**
   * Chunked captures asked to `endLater`: the result's `ended` (resolved when null). Each such
   * capture is recorded in {@link endedLater}.
   */
  chunkJobEnd: Promise<void> | null = null;
  /** Chunked captures: run after the consumer resolved, before the capture returns. */
  afterChunksConsumed: (() => Promise<void>) | null = null;
  /** Chunked captures that ended their job behind the result, by domain. */
  readonly endedLater: string[] = [];
  /** Chunked captures: every chunk handed to a consumer, by capture (index, kind). */
  readonly chunkReads: Array<Array<{ index: number; kind: 'zero' | 'unchanged' | 'data' }>> = [];
  /** Checkpoints deleted through `deleteCheckpoints`, as `domain/name`. */
  readonly deletedCheckpoints: string[] = [];
  /** When set, every hypervisor driver call throws it (as a driver quoting commands and paths would). */
  hypervisorFailure: InstanceImagesError | null = null;
  /** Paths whose files the hypervisor no longer has (an ISO mount of one fails like the libvirt driver's). */
  readonly goneFiles = new Set<string>();
  /** Every command `run` by a hypervisor's executor, as `hypervisorId` and argv. */
  readonly commands: Array<{ hypervisorId: string; argv: string[] }> = [];
  /** When set, the stdout of a command `run` by an executor (default empty). */
  commandOutput: ((argv: readonly string[]) => string) | null = null;
  /** Every hypervisor recovery asked for (domainName null = the whole hypervisor). */
  readonly recoveries: Array<{ hypervisorId: string; domainName: string | null }> = [];

  addHypervisor(id: string, locationId = 'loc-1'): HostHypervisor {
    const hv: HostHypervisor = { id, name: id, locationId, connection: { type: 'local' } };
    this.hypervisors.set(id, hv);
    return hv;
  }

  addInstance(
    id: string,
    accountId: string,
    options: { hypervisorId?: string; locationId?: string; state?: 'running' | 'shutoff'; disk?: Buffer; virtualSize?: number } = {},
  ): HostInstance {
    const instance: HostInstance = {
      id,
      name: `vm-${id}`,
      accountId,
      locationId: options.locationId ?? 'loc-1',
      hypervisorId: options.hypervisorId ?? 'hv-1',
      domainName: `dom-${id}`,
    };
    this.instances.set(id, instance);
    const disk = options.disk ?? Buffer.from(`disk of ${id} `.repeat(1000));
    this.domains.set(instance.domainName, { state: options.state ?? 'running', disk, virtualSize: options.virtualSize ?? 1 << 30 });
    return instance;
  }

  /** Writes into a domain's disk (growing it as needed) and marks the range dirty in every checkpoint. */
  writeDisk(domainName: string, offset: number, bytes: Buffer): void {
    const domain = this.domains.get(domainName);
    if (!domain) throw new Error(`no domain ${domainName}`);
    if (domain.disk.length < offset + bytes.length)
      domain.disk = Buffer.concat([domain.disk, Buffer.alloc(offset + bytes.length - domain.disk.length)]);
    bytes.copy(domain.disk, offset);
    for (const ranges of domain.checkpoints?.values() ?? []) ranges.push([offset, offset + bytes.length]);
  }

  /** The disk as the guest sees it: its bytes, zero-padded to the virtual size. */
  guestDisk(domainName: string): Buffer {
    const domain = this.domains.get(domainName);
    if (!domain) throw new Error(`no domain ${domainName}`);
    return Buffer.concat([domain.disk, Buffer.alloc(Math.max(0, domain.virtualSize - domain.disk.length))]).subarray(0, domain.virtualSize);
  }

  hostDirectory(): HostDirectory {
    return {
      getInstance: async (id) => this.instances.get(id) ?? null,
      getHypervisor: async (id) => this.hypervisors.get(id) ?? null,
    };
  }

  executors(): ExecutorProvider {
    const executors = new Map<string, Executor>();
    return (hypervisor) => {
      const made = executors.get(hypervisor.id);
      if (made) return made;
      const executor: Executor = {
        label: 'fake',
        run: async (argv) => {
          this.commands.push({ hypervisorId: hypervisor.id, argv: [...argv] });
          return { exitCode: 0, stdout: this.commandOutput?.(argv) ?? '', stderr: '' };
        },
        // Only `cat -- <path>` (reading a file of this hypervisor back, e.g. a converted import).
        stream: async (argv) => {
          const file = argv[0] === 'cat' ? this.files.get(`${hypervisor.id}:${argv[argv.length - 1]}`) : undefined;
          if (!file) throw new Error(`not used by the fakes: ${argv.join(' ')}`);
          return {
            stdout: Readable.from([file.bytes]),
            done: Promise.resolve({ exitCode: 0, stdout: '', stderr: '' }),
            kill: () => undefined,
          };
        },
        close: async () => undefined,
      };
      executors.set(hypervisor.id, executor);
      return executor;
    };
  }

  /** A storage driver over the world's files. `path: true` makes it path-capable (paths are `/<root>/<key>`). */
  storageFactory(name: string, capabilities: { shared: boolean; pathAccess: boolean }): StorageDriverFactory<{ root: string }> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the fakes' nested objects share the world
    const world = this;
    return {
      name,
      optionsSchema: z.object({ root: z.string().min(1), secret: z.string().optional() }),
      secretFields: ['secret'],
      capabilities,
      needsHypervisor: capabilities.pathAccess,
      create(options, context): StorageDriver {
        const scope = capabilities.shared ? '' : `${context.hypervisor?.id ?? 'none'}`;
        // Unfinished writes: a path storage's hidden temp files (`.<name>.<id>.part`, as the local driver names them;
        // a `<key>.part` is a file like any other there, as a capture's part file is), an object storage's `*.part`.
        const isIncomplete = (key: string): boolean => (capabilities.pathAccess ? /(^|\/)\.[^/]+\.part$/.test(key) : key.endsWith('.part'));
        const full = (key: string) => (capabilities.pathAccess ? `/${scope}${options.root}/${key}` : `${options.root}:${key}`);
        const prefixOf = capabilities.pathAccess ? `/${scope}${options.root}/` : `${options.root}:`;
        return {
          name,
          capabilities,
          async put(key, body, opts) {
            const bytes = await readAll(body);
            if (opts?.signal?.aborted) throw new InstanceImagesError('CANCELLED');
            world.files.set(full(key), { bytes, modifiedAt: new Date() });
            return { size: bytes.length };
          },
          async get(key) {
            const file = world.files.get(full(key));
            if (!file) throw new InstanceImagesError('NOT_FOUND', `no ${key}`);
            return Readable.from([file.bytes]);
          },
          async stat(key) {
            const file = world.files.get(full(key));
            return file ? { key, size: file.bytes.length, modifiedAt: file.modifiedAt } : null;
          },
          async list(opts = {}) {
            const items: StoredObject[] = [...world.files.entries()]
              .filter(([k]) => k.startsWith(prefixOf))
              .map(([k, f]) => ({ key: k.slice(prefixOf.length), size: f.bytes.length, modifiedAt: f.modifiedAt }))
              .filter((o) => !isIncomplete(o.key) && (!opts.prefix || o.key.startsWith(opts.prefix)))
              .sort((a, b) => (a.key < b.key ? -1 : 1));
            const start = opts.cursor ? Number(opts.cursor) : 0;
            const limit = opts.limit ?? 50;
            const page = items.slice(start, start + limit);
            return { items: page, nextCursor: start + limit < items.length ? String(start + limit) : null };
          },
          async delete(key) {
            if (world.failDeletes) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'fake outage');
            world.files.delete(full(key));
          },
          async freeSpace() {
            return world.storageFree;
          },
          async health() {
            return { ok: true, message: 'fake ok' };
          },
          async listIncomplete() {
            return [...world.files.keys()]
              .filter((k) => k.startsWith(prefixOf) && isIncomplete(k.slice(prefixOf.length)))
              .map((k) => ({ key: k.slice(prefixOf.length), id: k, startedAt: new Date(0) }));
          },
          async abortIncomplete(upload) {
            world.files.delete(upload.id);
          },
          ...(capabilities.pathAccess ? { pathOf: (key: string) => full(key), pathRoot: () => `/${scope}${options.root}` } : {}),
        };
      },
    };
  }

  /**
   * A chunked capture of a fake disk: chunks of the guest disk in order, `zero` when all zero,
   * `unchanged` when incremental to a checkpoint of this domain and not written since, else `data`.
   * Creates the asked checkpoint once the consumer resolved.
   */
  async captureChunks(domain: FakeDomain, request: CaptureRequest, output: ChunkCaptureOutput): Promise<CaptureResult> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the generator below shares the world
    const world = this;
    const since = output.checkpoint?.since ?? null;
    const dirty = since ? domain.checkpoints?.get(since) : undefined;
    const incrementalSince = dirty ? since : null;
    const size = domain.virtualSize;
    const disk = Buffer.concat([domain.disk, Buffer.alloc(Math.max(0, size - domain.disk.length))]).subarray(0, size);
    const reads: Array<{ index: number; kind: 'zero' | 'unchanged' | 'data' }> = [];
    this.chunkReads.push(reads);
    const chunkSize = output.chunkSizeBytes;
    const count = Math.ceil(size / chunkSize);
    async function* chunks(): AsyncGenerator<CapturedChunk> {
      for (let index = 0; index < count; index++) {
        if (index === Math.floor(count / 2) && world.midCaptureGate) {
          const gate = world.midCaptureGate;
          await new Promise<void>((resolve, reject) => {
            void gate.then(resolve);
            request.signal?.addEventListener('abort', () => reject(new InstanceImagesError('CANCELLED', 'Capture cancelled')), {
              once: true,
            });
          });
        }
        if (request.signal?.aborted) throw new InstanceImagesError('CANCELLED', 'Capture cancelled');
        const offset = index * chunkSize;
        const bytes = Buffer.from(disk.subarray(offset, Math.min(size, offset + chunkSize)));
        const base = { index, offset, length: bytes.length };
        if (dirty && !dirty.some(([from, to]) => from < offset + bytes.length && to > offset)) {
          reads.push({ index, kind: 'unchanged' });
          yield { ...base, kind: 'unchanged' };
        } else if (bytes.every((b) => b === 0)) {
          reads.push({ index, kind: 'zero' });
          yield { ...base, kind: 'zero' };
        } else {
          reads.push({ index, kind: 'data' });
          yield { ...base, kind: 'data', bytes, sha256: sha256(bytes) };
        }
      }
    }
    const consumed = await output.consume(chunks(), { virtualSizeBytes: size, chunkSizeBytes: chunkSize, incrementalSince });
    await this.afterChunksConsumed?.();
    const checkpoint = output.checkpoint?.create ?? null;
    if (checkpoint) (domain.checkpoints ??= new Map()).set(checkpoint, []);
    return {
      format: 'raw',
      sizeBytes: consumed.sizeBytes,
      virtualSizeBytes: size,
      sha256: consumed.sha256,
      consistency: domain.state === 'running' ? 'crash-consistent' : 'cold',
      method: domain.state === 'running' ? 'pull-backup' : 'cold-convert',
      checkpoint,
      incrementalSince,
      ...(output.endLater === true ? { ended: this.endLater(request.domainName) } : {}),
    };
  }

  private endLater(domainName: string): Promise<void> {
    this.endedLater.push(domainName);
    const ended = this.chunkJobEnd ?? Promise.resolve();
    ended.catch(() => undefined);
    return ended;
  }

  hypervisorFactory(): HypervisorDriverFactory {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the fakes' nested objects share the world
    const world = this;
    // The libvirt driver's own message for a domain that is gone (virsh's stderr, quoted).
    const noDomain = (domainName: string) =>
      new InstanceImagesError('NOT_FOUND', `virsh dumpxml failed (exit 1): error: failed to get domain '${domainName}'`, {
        details: { exitCode: 1 },
      });
    const failing = () => {
      if (world.hypervisorFailure) throw world.hypervisorFailure;
    };
    return (hypervisor): HypervisorDriver => ({
      async inspect(domainName) {
        failing();
        const domain = world.domains.get(domainName);
        if (!domain) throw noDomain(domainName);
        return {
          name: domainName,
          state: domain.state,
          hasGuestAgent: false,
          ...domain.boot,
          ...domain.guest,
          primaryDisk: {
            target: 'vda',
            path: `/disks/${domainName}.qcow2`,
            format: 'qcow2',
            virtualSizeBytes: domain.virtualSize,
            allocationBytes: domain.disk.length,
          },
        };
      },
      async capture(request: CaptureRequest): Promise<CaptureResult> {
        failing();
        world.captures++;
        const domain = world.domains.get(request.domainName);
        if (!domain) throw new InstanceImagesError('NOT_FOUND', 'Domain not found');
        request.onProgress?.({ step: 'copying', bytesDone: 0, bytesTotal: domain.disk.length });
        if (world.captureGate) {
          const gate = world.captureGate;
          await new Promise<void>((resolve, reject) => {
            void gate.then(resolve);
            request.signal?.addEventListener('abort', () => reject(new InstanceImagesError('CANCELLED', 'Capture cancelled')), {
              once: true,
            });
          });
        }
        if (world.failNextCapture) {
          const code = world.failNextCapture;
          world.failNextCapture = null;
          throw new InstanceImagesError(code as 'CAPTURE_FAILED', 'injected failure');
        }
        const bytes = Buffer.from(domain.disk);
        if (request.output.kind === 'path') {
          world.pathRoots.push({ operation: 'capture', path: request.output.path, root: request.output.root ?? null });
          world.files.set(request.output.path, { bytes, modifiedAt: new Date() });
        } else if (request.output.kind === 'chunks') {
          return world.captureChunks(domain, request, request.output);
        } else {
          const sent = world.corruptNextStream ? Buffer.concat([bytes.subarray(0, -1), Buffer.from('X')]) : bytes;
          world.corruptNextStream = false;
          await request.output.consume(Readable.from([sent]), sent.length);
        }
        request.onProgress?.({ step: 'copying', bytesDone: bytes.length, bytesTotal: bytes.length });
        return {
          format: request.format ?? 'qcow2',
          sizeBytes: bytes.length,
          virtualSizeBytes: domain.virtualSize,
          sha256: sha256(bytes),
          consistency: domain.state === 'running' ? 'crash-consistent' : 'cold',
          method: domain.state === 'running' ? 'pull-backup' : 'cold-convert',
        };
      },
      async materialize(request: MaterializeRequest) {
        if (world.deployGate) await world.deployGate;
        if (request.source.kind === 'path')
          world.pathRoots.push({ operation: 'materialize', path: request.source.path, root: request.source.root ?? null });
        if (request.source.kind === 'chunks') {
          const disk = Buffer.alloc(request.source.virtualSizeBytes);
          for await (const chunk of request.source.chunks) chunk.bytes.copy(disk, chunk.offset);
          world.files.set(`${hypervisor.id}:${request.targetPath}`, { bytes: disk, modifiedAt: new Date() });
          return { path: request.targetPath, format: request.targetFormat ?? 'raw', virtualSizeBytes: disk.length };
        }
        const bytes = request.source.kind === 'path' ? world.files.get(request.source.path)?.bytes : await readAll(request.source.stream);
        if (!bytes) throw new InstanceImagesError('DEPLOY_FAILED', 'source missing');
        if (request.sha256 && sha256(bytes) !== request.sha256)
          throw new InstanceImagesError('CHECKSUM_MISMATCH', 'source checksum mismatch');
        world.files.set(`${hypervisor.id}:${request.targetPath}`, { bytes, modifiedAt: new Date() });
        return { path: request.targetPath, format: request.targetFormat ?? 'qcow2', virtualSizeBytes: request.sizeBytes ?? 1 << 30 };
      },
      async attachIso(domainName, isoPath, options) {
        failing();
        if (!world.domains.has(domainName)) throw noDomain(domainName);
        if (world.goneFiles.has(isoPath))
          throw new InstanceImagesError('NOT_FOUND', 'The ISO file does not exist on the hypervisor', { details: { isoPath } });
        world.pathRoots.push({ operation: 'attachIso', path: isoPath, root: options?.root ?? null });
        world.mounted.set(domainName, isoPath);
      },
      async detachIso(domainName) {
        failing();
        if (!world.domains.has(domainName)) throw noDomain(domainName);
        world.mounted.delete(domainName);
      },
      async freeSpace() {
        return world.scratchFree;
      },
      async removeFile(path) {
        world.files.delete(path);
        // A file materialized on this hypervisor (a deploy's disk, a converted import).
        world.files.delete(`${hypervisor.id}:${path}`);
      },
      async deleteCheckpoints(domainName, names) {
        failing();
        for (const name of names) {
          if (world.domains.get(domainName)?.checkpoints?.delete(name)) world.deletedCheckpoints.push(`${domainName}/${name}`);
        }
      },
      async recover(domainName?: string) {
        world.recoveries.push({ hypervisorId: hypervisor.id, domainName: domainName ?? null });
        return [];
      },
    });
  }
}
