/**
 * Deploy from a chunked image: the panel writes the data ranges over NBD (a stream-local channel
 * through the real sshd, or the socket itself locally) into a disk qemu-nbd serves on the
 * hypervisor. Compared with a raw reference built from the same chunks; zero ranges stay
 * unallocated; a failing source, an abort and hostile paths leave nothing behind; a disk made
 * from a captured guest boots.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { InstanceImagesError } from '../../../src/errors';
import type { Executor } from '../../../src/ports/executor';
import type { ByteProgress, ChunkedSource } from '../../../src/ports/hypervisor-driver';
import { codeOf } from '../../support/errors';
import { createTestGuest, sh, uniqueSuffix, virsh, type TestGuest } from '../../support/guests';
import { sshTarget } from '../exec/ssh-target';
import { captureScratch } from '../../../drivers/hypervisor/libvirt/names';
import { freshScratchDir, imageInfo, leftovers, libvirtSkipReason, makeDriver } from './setup';

const skip = libvirtSkipReason();
const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;
type Range = { offset: number; bytes: Buffer };

/** A disk of 65 MiB (the last chunk is short): random, patterned and all-zero chunks, and holes. */
function sampleRanges(): { virtualSize: number; ranges: Range[]; dataBytes: number } {
  const ranges: Range[] = [
    { offset: 0, bytes: randomBytes(CHUNK) },
    { offset: 3 * CHUNK, bytes: Buffer.alloc(CHUNK, 0x5a) },
    // Zero ranges should be left out by the caller; one that is not must still not be written.
    { offset: 5 * CHUNK, bytes: Buffer.alloc(CHUNK) },
    { offset: 9 * CHUNK, bytes: Buffer.concat([Buffer.alloc(CHUNK / 2), randomBytes(CHUNK / 2)]) },
    { offset: 16 * CHUNK, bytes: randomBytes(MiB) },
  ];
  return { virtualSize: 16 * CHUNK + MiB, ranges, dataBytes: CHUNK + CHUNK + CHUNK / 2 + MiB };
}

/** A sparse raw file holding the ranges: the reference the deployed disk must equal. */
function rawReference(path: string, virtualSize: number, ranges: readonly Range[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const { offset, bytes } of ranges) writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
  sh('truncate', '-s', String(virtualSize), path);
}

async function* chunksOf(ranges: readonly Range[]): AsyncGenerator<Range> {
  for (const range of ranges) {
    await new Promise((resolve) => setImmediate(resolve));
    yield range;
  }
}

/** Bytes `qemu-img map` reports as data in an image. */
function allocatedBytes(path: string, format: string): number {
  const map = JSON.parse(sh('qemu-img', 'map', '--output=json', '-f', format, path).stdout) as Array<{ length: number; data: boolean }>;
  return map.filter((e) => e.data).reduce((sum, e) => sum + e.length, 0);
}

/**
 * Python: the bytes of file `argv[1]` that are dirty or being written back in the page cache, by
 * cachestat(2) (Linux 6.5; syscall 451), which only reads the page cache's state (unlike
 * fadvise, which would start the write-back it is meant to observe).
 */
const CACHESTAT = [
  'import ctypes, os, sys',
  'class R(ctypes.Structure): _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]',
  'class S(ctypes.Structure): _fields_ = [(n, ctypes.c_uint64) for n in ("cache", "dirty", "writeback", "evicted", "recent")]',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'fd = os.open(sys.argv[1], os.O_RDONLY); r = R(0, 0); s = S()',
  'if libc.syscall(451, fd, ctypes.byref(r), ctypes.byref(s), 0) != 0: sys.exit("cachestat failed: errno %d" % ctypes.get_errno())',
  'print((s.dirty + s.writeback) * os.sysconf("SC_PAGE_SIZE"))',
].join('\n');

/** qemu-nbd processes whose command line names `dir` (none may outlive a deploy). */
function qemuNbdIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1');
      if (cmdline.startsWith('qemu-nbd\0') && cmdline.includes(dir)) pids.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}

describe.skipIf(skip !== null)(
  `libvirt driver: deploy from a chunked image${skip ? ` (skipped: ${skip})` : ''}`,
  { timeout: 120_000 },
  () => {
    let scratch: string;
    let outDir: string;
    let ssh: Executor;
    const executors: Array<[string, () => Executor]> = [
      ['local', () => createLocalExecutor()],
      ['ssh', () => ssh],
    ];

    beforeAll(async () => {
      scratch = freshScratchDir('chunks');
      outDir = freshScratchDir("chunks-out $(touch x);'");
      const target = await sshTarget();
      if ('skip' in target) throw new Error(target.skip);
      ssh = createSshExecutor(target.connection);
    });
    afterAll(async () => {
      await ssh?.close();
      if (scratch) rmSync(scratch, { recursive: true, force: true });
      if (outDir) rmSync(outDir, { recursive: true, force: true });
    });

    const expectNothingLeft = (target: string) => {
      expect(existsSync(target)).toBe(false);
      expect(existsSync(`${target}.part`)).toBe(false);
      expect(leftovers(scratch)).toEqual([]);
      expect(qemuNbdIn(scratch)).toEqual([]);
    };

    for (const [label, executor] of executors) {
      for (const format of ['qcow2', 'raw'] as const) {
        it(`writes the data ranges through the ${label} executor into a ${format} disk equal to the raw reference; zero ranges stay holes`, async () => {
          const { virtualSize, ranges, dataBytes } = sampleRanges();
          const reference = `${outDir}/reference-${label}-${format}.raw`;
          rawReference(reference, virtualSize, ranges);
          const target = `${outDir}/deployed-${label} $(touch x).${format}`;
          const progress: ByteProgress[] = [];
          const source: ChunkedSource = { kind: 'chunks', virtualSizeBytes: virtualSize, chunks: chunksOf(ranges) };
          // Counts the NBD connections the deploy opens (the driver's default is 4, spread over their own channels).
          const inner = executor();
          let opened = 0;
          const counting: Executor = {
            label: inner.label,
            run: inner.run.bind(inner),
            stream: inner.stream.bind(inner),
            close: () => Promise.resolve(),
            // Attempts before qemu-nbd listens fail and are retried: only the channels that opened count.
            openStreamLocal: async (path, options) => {
              const stream = await inner.openStreamLocal!(path, options);
              opened++;
              return stream;
            },
          };
          const made = await makeDriver(scratch, {}, counting).materialize({
            source,
            sourceFormat: 'raw',
            targetPath: target,
            targetFormat: format,
            sizeBytes: 96 * MiB,
            onProgress: (p) => progress.push(p),
          });
          expect(made).toEqual({ path: target, format, virtualSizeBytes: 96 * MiB });
          expect(opened).toBe(4);
          expect(imageInfo(target)).toMatchObject({ format, backing: null, virtualSize: 96 * MiB });
          // Equal to the reference, and zero beyond it (compare checks the grown tail is zero).
          const compared = sh('qemu-img', 'compare', '-f', 'raw', '-F', format, reference, target);
          expect(compared.stdout + compared.stderr).toMatch(/Images are identical/);
          expect(compared.code).toBe(0);
          // Only the non-zero bytes were written: the zero chunk and the zero half are holes.
          expect(allocatedBytes(target, format)).toBe(dataBytes);
          expect(progress.some((p) => p.step === 'write' && p.bytesTotal === virtualSize)).toBe(true);
          expect(progress.at(-1)).toEqual({ step: 'done', bytesDone: 96 * MiB, bytesTotal: 96 * MiB });
          expect(leftovers(scratch)).toEqual([]);
          expect(qemuNbdIn(scratch)).toEqual([]);
          if (format === 'qcow2') expect(sh('qemu-img', 'check', '-f', 'qcow2', target).code).toBe(0);
          rmSync(target);
          rmSync(reference);
        });
      }

      it(`a source that fails midway (CHECKSUM_MISMATCH) through the ${label} executor leaves nothing: no part file, socket or process`, async () => {
        const { virtualSize, ranges } = sampleRanges();
        let finished = false;
        async function* failing(): AsyncGenerator<Range> {
          try {
            yield* chunksOf(ranges.slice(0, 2));
            throw new InstanceImagesError('CHECKSUM_MISMATCH', 'chunk 3 does not match its digest');
          } finally {
            finished = true;
          }
        }
        const target = `${outDir}/failing-${label}.qcow2`;
        const deploy = makeDriver(scratch, {}, executor()).materialize({
          source: { kind: 'chunks', virtualSizeBytes: virtualSize, chunks: failing() },
          sourceFormat: 'raw',
          targetPath: target,
        });
        expect(await codeOf(deploy)).toBe('CHECKSUM_MISMATCH');
        expect(finished).toBe(true);
        expectNothingLeft(target);
      });

      it(`an abort while the source waits, through the ${label} executor, is CANCELLED, ends the source and leaves nothing`, async () => {
        const { virtualSize, ranges } = sampleRanges();
        const controller = new AbortController();
        async function* stalling(): AsyncGenerator<Range> {
          yield ranges[0] as Range;
          // Never resolves by itself: the deploy must not wait for the source after an abort.
          await new Promise(() => undefined);
        }
        const target = `${outDir}/aborted-${label}.raw`;
        const deploy = makeDriver(scratch, {}, executor()).materialize({
          source: { kind: 'chunks', virtualSizeBytes: virtualSize, chunks: stalling() },
          sourceFormat: 'raw',
          targetPath: target,
          targetFormat: 'raw',
          signal: controller.signal,
          onProgress: (p) => {
            if (p.step === 'write' && p.bytesDone > 0) controller.abort();
          },
        });
        expect(await codeOf(deploy)).toBe('CANCELLED');
        expectNothingLeft(target);
      });

      it(`the new disk is written back while the ${label} deploy runs: what was written is not left dirty for the final flush`, async () => {
        // 32 MiB written, then the source waits: far below the kernel's own background write-back
        // threshold (10 % of memory) and its 30 s expiry, so only the deploy's write-back cleans it.
        const ranges: Range[] = Array.from({ length: 8 }, (_, i) => ({ offset: i * CHUNK, bytes: randomBytes(CHUNK) }));
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let written!: () => void;
        const allWritten = new Promise<void>((resolve) => (written = resolve));
        async function* waiting(): AsyncGenerator<Range> {
          yield* ranges;
          await gate;
        }
        const target = `${outDir}/written-back-${label}.qcow2`;
        const deploy = makeDriver(scratch, {}, executor()).materialize({
          source: { kind: 'chunks', virtualSizeBytes: 64 * MiB, chunks: waiting() },
          sourceFormat: 'raw',
          targetPath: target,
          onProgress: (p) => {
            if (p.step === 'write' && p.bytesDone >= 8 * CHUNK) written();
          },
        });
        deploy.catch(() => undefined);
        try {
          await allWritten;
          const dirtyBytes = () => {
            const out = sh('python3', '-c', CACHESTAT, `${target}.part`);
            expect(out.code).toBe(0);
            return Number(out.stdout.trim());
          };
          let dirty = dirtyBytes();
          for (let i = 0; i < 50 && dirty >= 4 * MiB; i++) {
            await new Promise((resolve) => setTimeout(resolve, 100));
            dirty = dirtyBytes();
          }
          expect(dirty).toBeLessThan(4 * MiB);
        } finally {
          release();
        }
        await deploy;
        const reference = `${outDir}/written-back-${label}.raw`;
        rawReference(reference, 64 * MiB, ranges);
        expect(sh('qemu-img', 'compare', '-f', 'raw', '-F', 'qcow2', reference, target).code).toBe(0);
        rmSync(target, { force: true });
        rmSync(reference, { force: true });
      });
    }

    it('refuses bad requests before anything is made: hostile paths, a range outside the disk, a non-raw source, a shrink, no socket channels', async () => {
      const { virtualSize, ranges } = sampleRanges();
      const driver = makeDriver(scratch);
      const request = (targetPath: string, extra: object = {}) =>
        driver.materialize({
          source: { kind: 'chunks', virtualSizeBytes: virtualSize, chunks: chunksOf(ranges) },
          sourceFormat: 'raw',
          targetPath,
          ...extra,
        });
      for (const hostile of ['relative/disk.qcow2', `${outDir}/../escape.qcow2`, `${outDir}/new\nline.qcow2`, `${outDir}/dir/`]) {
        expect(await codeOf(request(hostile))).toBe('VALIDATION_FAILED');
      }
      expect(await codeOf(request(`${outDir}/missing-dir/disk.qcow2`))).toBe('VALIDATION_FAILED');
      expect(await codeOf(request(`${outDir}/shrunk.qcow2`, { sizeBytes: MiB }))).toBe('VALIDATION_FAILED');
      expect(await codeOf(request(`${outDir}/qcow2-source.qcow2`, { sourceFormat: 'qcow2' }))).toBe('VALIDATION_FAILED');
      const outside = driver.materialize({
        source: {
          kind: 'chunks',
          virtualSizeBytes: virtualSize,
          chunks: chunksOf([{ offset: virtualSize - 512, bytes: randomBytes(4096) }]),
        },
        sourceFormat: 'raw',
        targetPath: `${outDir}/outside.qcow2`,
      });
      expect(await codeOf(outside)).toBe('VALIDATION_FAILED');
      expectNothingLeft(`${outDir}/outside.qcow2`);
      const existing = `${outDir}/existing.qcow2`;
      writeFileSync(existing, 'keep');
      expect(await codeOf(request(existing))).toBe('CONFLICT');
      expect(readFileSync(existing, 'utf8')).toBe('keep');
      const { openStreamLocal: _dropped, ...noChannels } = createLocalExecutor();
      const plain = makeDriver(scratch, {}, noChannels);
      const refused = plain.materialize({
        source: { kind: 'chunks', virtualSizeBytes: virtualSize, chunks: chunksOf(ranges) },
        sourceFormat: 'raw',
        targetPath: `${outDir}/no-channels.qcow2`,
      });
      expect(await codeOf(refused)).toBe('INVALID_STATE');
      expectNothingLeft(`${outDir}/no-channels.qcow2`);
    });

    it('a link planted as the part file is replaced, never written through', async () => {
      const { virtualSize, ranges } = sampleRanges();
      const victim = `${outDir}/victim-${uniqueSuffix()}`;
      writeFileSync(victim, 'precious');
      const target = `${outDir}/linked.qcow2`;
      symlinkSync(victim, `${target}.part`);
      await makeDriver(scratch).materialize({
        source: { kind: 'chunks', virtualSizeBytes: virtualSize, chunks: chunksOf(ranges) },
        sourceFormat: 'raw',
        targetPath: target,
      });
      expect(readFileSync(victim, 'utf8')).toBe('precious');
      expect(imageInfo(target)).toMatchObject({ format: 'qcow2', backing: null, virtualSize });
      rmSync(target);
    });

    it('recover() stops the qemu-nbd of a deploy interrupted by a crash and removes its socket and pid file', async () => {
      // What a panel that died mid-deploy leaves: qemu-nbd serving the part file, its socket and pid file.
      const target = `${outDir}/crashed.qcow2`;
      const part = `${target}.part`;
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', part, `${16 * MiB}`]);
      const socket = captureScratch(scratch, target).socket;
      const pidFile = socket.replace(/\.sock$/, '.pid');
      execFileSync('qemu-nbd', ['--format=qcow2', '--shared=1', '--fork', `--socket=${socket}`, `--pid-file=${pidFile}`, part]);
      expect(qemuNbdIn(scratch)).toHaveLength(1);
      const actions = await makeDriver(scratch).recover();
      expect(actions).toContainEqual(expect.objectContaining({ action: 'stop-qemu-nbd', detail: expect.stringMatching(/deploy/) }));
      expect(qemuNbdIn(scratch)).toEqual([]);
      expect(leftovers(scratch)).toEqual([]);
      rmSync(part, { force: true });
    });

    it('a guest captured as a file-layout image, cut into chunks and deployed from them boots', async () => {
      let source: TestGuest | null = null;
      let host: TestGuest | null = null;
      try {
        source = createTestGuest({ start: false, cdrom: false, agentChannel: false, diskMiB: 96 });
        const image = `${outDir}/captured.raw`;
        const captured = await makeDriver(scratch).capture({
          domainName: source.name,
          output: { kind: 'path', path: image },
          format: 'raw',
        });
        const bytes = readFileSync(image);
        expect(bytes.length).toBe(captured.virtualSizeBytes);
        const zero = Buffer.alloc(CHUNK);
        const ranges: Range[] = [];
        for (let offset = 0; offset < bytes.length; offset += CHUNK) {
          const piece = bytes.subarray(offset, Math.min(bytes.length, offset + CHUNK));
          if (!piece.equals(zero.subarray(0, piece.length))) ranges.push({ offset, bytes: piece });
        }
        expect(ranges.length).toBeGreaterThan(0);
        expect(ranges.length).toBeLessThan(bytes.length / CHUNK);
        host = createTestGuest({ start: false, cdrom: false, agentChannel: false });
        const disk = `${host.dir}/from-chunks.qcow2`;
        await makeDriver(scratch, {}, ssh).materialize({
          source: { kind: 'chunks', virtualSizeBytes: captured.virtualSizeBytes, chunks: chunksOf(ranges) },
          sourceFormat: 'raw',
          targetPath: disk,
          sizeBytes: 128 * MiB,
        });
        expect(sh('qemu-img', 'compare', '-f', 'raw', '-F', 'qcow2', image, disk).code).toBe(0);
        expect(sh('qemu-img', 'compare', '-F', 'qcow2', source.primaryPath, disk).code).toBe(0);
        rmSync(image);
        virsh('detach-disk', '--domain', host.name, '--target', 'vda', '--config');
        virsh('attach-disk', '--domain', host.name, '--source', disk, '--target', 'vda', '--subdriver', 'qcow2', '--config');
        virsh('start', '--domain', host.name);
        expect(virsh('domstate', '--domain', host.name).trim()).toBe('running');
        expect(virsh('domblklist', '--domain', host.name)).toContain(disk);
        expect(leftovers(scratch)).toEqual([]);
      } finally {
        source?.remove();
        host?.remove();
      }
    });
  },
);
