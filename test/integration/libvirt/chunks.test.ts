import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import type { Executor } from '../../../src/ports/executor';
import { captureScratch } from '../../../drivers/hypervisor/libvirt/names';
import { mapConsumer, reassemble } from '../../support/chunk-consumer';
import { createTestGuest, diskChainSnapshot, sh, virsh, type TestGuest } from '../../support/guests';
import { sshTarget } from '../exec/ssh-target';
import { startTcpProxy } from '../exec/tcp-proxy';
import { freshScratchDir, leftovers, libvirtSkipReason, makeDriver, recordGuest, withFullDirectory } from './setup';

const skip = libvirtSkipReason();
const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;

describe.skipIf(skip !== null)(`libvirt driver: chunked captures and checkpoints${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let guest: TestGuest;
  let scratch: string;
  let outDir: string;

  /** The guest's primary disk as raw bytes, read by qemu-img itself. */
  function rawDisk(): Buffer {
    const out = `${outDir}/reference.raw`;
    execFileSync('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', guest.primaryPath, out]);
    try {
      return readFileSync(out);
    } finally {
      rmSync(out, { force: true });
    }
  }
  const checkpoints = () => virsh('checkpoint-list', '--name', '--domain', guest.name).split('\n').filter(Boolean);
  const imageBitmaps = () => {
    const info = JSON.parse(sh('qemu-img', 'info', '--output=json', '-U', guest.primaryPath).stdout) as {
      'format-specific': { data: { bitmaps?: Array<{ name: string }> } };
    };
    return (info['format-specific'].data.bitmaps ?? []).map((b) => b.name).sort();
  };
  const stop = () => virsh('destroy', '--domain', guest.name);
  const start = () => virsh('start', '--domain', guest.name);
  const noJob = () => expect(virsh('domjobinfo', '--domain', guest.name)).toMatch(/Job type:\s+None/);
  const qemuNbdRunning = () => spawnSync('pgrep', ['-f', `qemu-nbd.*${scratch}`]).status === 0;

  /** Resolved bytes of each checkpoint's image, for the incremental captures built on it. */
  const images = new Map<string, Buffer>();

  beforeAll(() => {
    guest = createTestGuest({ diskMiB: 256 });
    scratch = freshScratchDir('chunks');
    outDir = freshScratchDir('chunks-out');
  });
  afterAll(() => {
    if (guest) sh('virsh', '-c', 'qemu:///system', 'undefine', '--domain', guest.name, '--checkpoints-metadata');
    guest?.remove();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  });

  it('a full chunked capture of a running domain reassembles to the disk byte for byte and leaves its checkpoint', async () => {
    const before = recordGuest(guest.name);
    const { output, kept } = mapConsumer({ checkpoint: { create: 'ii-cp-1' } });
    const progress: number[] = [];
    const result = await makeDriver(scratch).capture({
      domainName: guest.name,
      output,
      onProgress: (p) => progress.push(p.bytesDone),
    });
    expect(result).toMatchObject({
      method: 'pull-backup',
      format: 'raw',
      checkpoint: 'ii-cp-1',
      incrementalSince: null,
      virtualSizeBytes: 256 * MiB,
    });
    expect(kept.info).toEqual({ virtualSizeBytes: 256 * MiB, chunkSizeBytes: CHUNK, incrementalSince: null });
    // The guest's two 1 MiB patterns sit in chunks 0 and 8; the rest is never written.
    expect(kept.counts).toEqual({ data: 2, zero: 62, unchanged: 0 });
    expect(result.sizeBytes).toBe(2 * CHUNK);
    const disk = reassemble(kept);
    expect(disk.equals(rawDisk())).toBe(true);
    images.set('ii-cp-1', disk);
    expect(progress.at(-1)).toBe(256 * MiB);
    before.expectUntouched();
    expect(checkpoints()).toEqual(['ii-cp-1']);
    expect(leftovers(scratch)).toEqual([]);
  });

  it('after a power-off and 64 MiB written to the stopped disk, an incremental capture reads only the changed chunks', async () => {
    stop();
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x77 64M 64M', guest.primaryPath], { stdio: 'ignore' });
    start();
    const before = recordGuest(guest.name);
    const { output, kept } = mapConsumer({ checkpoint: { create: 'ii-cp-2', since: 'ii-cp-1' } });
    const result = await makeDriver(scratch).capture({ domainName: guest.name, output });
    expect(result).toMatchObject({ method: 'pull-backup', checkpoint: 'ii-cp-2', incrementalSince: 'ii-cp-1' });
    expect(kept.info?.incrementalSince).toBe('ii-cp-1');
    // 64 MiB at 64 MiB: chunks 16..31 exactly.
    expect(kept.counts).toEqual({ data: 16, zero: 0, unchanged: 48 });
    expect([...kept.chunks].filter(([, c]) => c !== 'unchanged').map(([i]) => i)).toEqual([...Array(16).keys()].map((i) => i + 16));
    const base = images.get('ii-cp-1');
    const disk = reassemble(kept, base);
    // The same point in time read in full, by the driver and by qemu-img.
    const full = mapConsumer();
    await makeDriver(scratch).capture({ domainName: guest.name, output: full.output });
    expect(full.kept.counts.unchanged).toBe(0);
    expect(disk.equals(reassemble(full.kept))).toBe(true);
    expect(disk.equals(rawDisk())).toBe(true);
    images.set('ii-cp-2', disk);
    before.expectUntouched();
    expect(checkpoints().sort()).toEqual(['ii-cp-1', 'ii-cp-2']);
    expect(leftovers(scratch)).toEqual([]);
  });

  it('a stopped domain is read through qemu-nbd, incrementally from a trusted checkpoint, and leaves no checkpoint', async () => {
    stop();
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x42 200M 8M', guest.primaryPath], { stdio: 'ignore' });
    const chain = diskChainSnapshot(guest.name);
    const { output, kept } = mapConsumer({ checkpoint: { create: 'ii-cp-3', since: 'ii-cp-2' } });
    const result = await makeDriver(scratch).capture({ domainName: guest.name, output });
    expect(result).toMatchObject({ method: 'cold-convert', consistency: 'cold', checkpoint: null, incrementalSince: 'ii-cp-2' });
    expect(kept.counts).toEqual({ data: 2, zero: 0, unchanged: 62 });
    expect(reassemble(kept, images.get('ii-cp-2')).equals(rawDisk())).toBe(true);
    // A full read of the stopped disk too.
    const full = mapConsumer();
    const fullResult = await makeDriver(scratch).capture({ domainName: guest.name, output: full.output });
    expect(fullResult.incrementalSince).toBeNull();
    expect(reassemble(full.kept).equals(rawDisk())).toBe(true);
    expect(diskChainSnapshot(guest.name)).toEqual(chain);
    expect(checkpoints().sort()).toEqual(['ii-cp-1', 'ii-cp-2']);
    expect(qemuNbdRunning()).toBe(false);
    expect(leftovers(scratch)).toEqual([]);
    start(); // qemu-nbd released its lock on the disk
  });

  it('a since checkpoint the domain does not have means a full read', async () => {
    const { output, kept } = mapConsumer({ checkpoint: { create: 'ii-cp-4', since: 'ii-cp-gone' } });
    const result = await makeDriver(scratch).capture({ domainName: guest.name, output });
    expect(result.incrementalSince).toBeNull();
    expect(kept.counts.unchanged).toBe(0);
    expect(reassemble(kept).equals(rawDisk())).toBe(true);
    await makeDriver(scratch).deleteCheckpoints!(guest.name, ['ii-cp-4']);
  });

  it('a consumer that rejects midway leaves no job, no new checkpoint and the chain as it was', async () => {
    const before = recordGuest(guest.name);
    const bitmaps = imageBitmaps();
    const { output } = mapConsumer({
      checkpoint: { create: 'ii-cp-fail', since: 'ii-cp-2' },
      onChunk: (index) => {
        if (index === 20) throw new Error('the store is gone');
      },
    });
    const error = await makeDriver(scratch)
      .capture({ domainName: guest.name, output })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CAPTURE_FAILED' });
    before.expectUntouched();
    expect(checkpoints().sort()).toEqual(['ii-cp-1', 'ii-cp-2']);
    expect(imageBitmaps()).toEqual(bitmaps);
    expect(leftovers(scratch)).toEqual([]);
  });

  it('an abort right after the job started ends with CANCELLED and no new checkpoint', async () => {
    const before = recordGuest(guest.name);
    const controller = new AbortController();
    const { output } = mapConsumer({ checkpoint: { create: 'ii-cp-abort' } });
    const driver = makeDriver(scratch, { hooks: { afterJobStart: () => controller.abort() } });
    await expect(driver.capture({ domainName: guest.name, output, signal: controller.signal })).rejects.toMatchObject({
      code: 'CANCELLED',
    });
    before.expectUntouched();
    expect(checkpoints()).not.toContain('ii-cp-abort');
    expect(leftovers(scratch)).toEqual([]);
  });

  it('over SSH: a chunked capture reads through a stream-local channel, and a dropped connection mid-read fails cleanly', async () => {
    const target = await sshTarget();
    if ('skip' in target) throw new Error(target.skip);
    const proxy = await startTcpProxy('127.0.0.1', target.connection.port ?? 22);
    const executor = createSshExecutor({ ...target.connection, port: proxy.port });
    try {
      const before = recordGuest(guest.name);
      const ok = mapConsumer({ checkpoint: { create: 'ii-cp-ssh', since: 'ii-cp-2' } });
      const result = await makeDriver(scratch, {}, executor).capture({ domainName: guest.name, output: ok.output });
      expect(result.incrementalSince).toBe('ii-cp-2');
      expect(reassemble(ok.kept, images.get('ii-cp-2')).equals(rawDisk())).toBe(true);
      await makeDriver(scratch, {}, executor).deleteCheckpoints!(guest.name, ['ii-cp-ssh']);

      const dropped = mapConsumer({
        checkpoint: { create: 'ii-cp-drop' },
        onChunk: (index) => {
          if (index === 3) proxy.dropAll();
        },
      });
      const error = await makeDriver(scratch, {}, executor)
        .capture({ domainName: guest.name, output: dropped.output })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'CAPTURE_FAILED' });
      // The cleanup ran on a new connection: nothing for recovery to do.
      noJob();
      before.expectUntouched();
      expect(checkpoints().sort()).toEqual(['ii-cp-1', 'ii-cp-2']);
      expect(leftovers(scratch)).toEqual([]);
    } finally {
      await executor.close();
      await proxy.close();
    }
  });

  it('a full scratch directory fails a chunked capture with STORAGE_FULL, over RPC (checked once the job ran) and over the script, leaving nothing', async () => {
    await withFullDirectory('chunks-full', async (mount) => {
      const before = recordGuest(guest.name);
      const bitmaps = imageBitmaps();
      for (const libvirtRpc of [true, false]) {
        let chunks = 0;
        const { output } = mapConsumer({ checkpoint: { create: 'ii-cp-full', since: 'ii-cp-2' }, onChunk: () => void chunks++ });
        await expect(makeDriver(mount, { libvirtRpc }).capture({ domainName: guest.name, output })).rejects.toMatchObject({
          code: 'STORAGE_FULL',
          details: { where: 'scratch' },
        });
        expect(chunks).toBe(0);
        noJob();
        expect(checkpoints().sort()).toEqual(['ii-cp-1', 'ii-cp-2']);
        expect(imageBitmaps()).toEqual(bitmaps);
        expect(leftovers(mount)).toEqual(['filler']);
      }
      before.expectUntouched();
    });
  });

  it("the job starts and ends over libvirt's RPC protocol, without a virsh process; with libvirtRpc false the script's virsh does it", async () => {
    const before = recordGuest(guest.name);
    /** The local executor, with every command it runs recorded. */
    const recorded = (): { executor: Executor; commands: string[][] } => {
      const local = createLocalExecutor();
      const commands: string[][] = [];
      const executor: Executor = {
        label: local.label,
        run: (argv, options) => (commands.push([...argv]), local.run(argv, options)),
        stream: (argv, options) => (commands.push([...argv]), local.stream(argv, options)),
        openStreamLocal: (path, options) => (commands.push(['open', path]), local.openStreamLocal!(path, options)),
        close: () => local.close(),
      };
      return { executor, commands };
    };
    const usesVirsh = (commands: string[][]) => commands.some((argv) => argv.includes('virsh') || argv.some((a) => /\bvirsh\b/.test(a)));

    try {
      // The driver learns the hypervisor's capabilities once (with virsh); the capture comes after.
      const rpc = recorded();
      const rpcDriver = makeDriver(scratch, {}, rpc.executor);
      await rpcDriver.capabilities();
      rpc.commands.length = 0;
      const viaRpc = mapConsumer({ checkpoint: { create: 'ii-cp-rpc', since: 'ii-cp-2' } });
      const result = await rpcDriver.capture({ domainName: guest.name, output: viaRpc.output });
      expect(result.incrementalSince).toBe('ii-cp-2');
      const rpcImage = reassemble(viaRpc.kept, images.get('ii-cp-2'));
      expect(rpcImage.equals(rawDisk())).toBe(true);
      expect(rpc.commands).toContainEqual(['open', '/var/run/libvirt/libvirt-sock']);
      expect(usesVirsh(rpc.commands)).toBe(false);

      const script = recorded();
      const viaScript = mapConsumer({ checkpoint: { create: 'ii-cp-script', since: 'ii-cp-rpc' } });
      const scripted = await makeDriver(scratch, { libvirtRpc: false }, script.executor).capture({
        domainName: guest.name,
        output: viaScript.output,
      });
      expect(scripted.incrementalSince).toBe('ii-cp-rpc');
      expect(viaScript.kept.counts.data).toBe(0);
      expect(reassemble(viaScript.kept, rpcImage).equals(rawDisk())).toBe(true);
      expect(script.commands.some((argv) => argv.includes('/var/run/libvirt/libvirt-sock'))).toBe(false);
      expect(usesVirsh(script.commands)).toBe(true);

      // Hostile domain names travel as XDR strings: not found, nothing run, nothing created.
      for (const name of ["x'; touch /tmp/ii-pwned-rpc; '", '$(touch /tmp/ii-pwned-rpc)', 'a\nb', '-x']) {
        const hostile = recorded();
        const hostileDriver = makeDriver(scratch, {}, hostile.executor);
        await hostileDriver.capabilities();
        hostile.commands.length = 0;
        const { output } = mapConsumer({ checkpoint: { create: 'ii-cp-hostile' } });
        await expect(hostileDriver.capture({ domainName: name, output })).rejects.toMatchObject({
          code: expect.stringMatching(/^(NOT_FOUND|VALIDATION_FAILED)$/),
        });
        expect(usesVirsh(hostile.commands)).toBe(false);
      }
      expect(sh('test', '-e', '/tmp/ii-pwned-rpc').code).not.toBe(0);
    } finally {
      await makeDriver(scratch).deleteCheckpoints!(guest.name, ['ii-cp-rpc', 'ii-cp-script']);
    }
    before.expectUntouched();
    expect(checkpoints().sort()).toEqual(['ii-cp-1', 'ii-cp-2']);
    expect(leftovers(scratch)).toEqual([]);
  });

  it('hostile checkpoint names are refused before anything runs', async () => {
    const before = recordGuest(guest.name);
    const driver = makeDriver(scratch);
    for (const name of ["x'; touch /tmp/ii-pwned; '", '-x', '../a', 'a b', '$(id)', '', 'a/b', 'é', 'a\nb', 'x'.repeat(101)]) {
      for (const checkpoint of [{ create: name }, { create: 'ii-ok', since: name }]) {
        const { output } = mapConsumer({ checkpoint });
        await expect(driver.capture({ domainName: guest.name, output })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
      }
      await expect(driver.deleteCheckpoints!(guest.name, ['ii-cp-1', name])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    }
    const { output } = mapConsumer({ checkpoint: { create: 'ii-cp-1', since: 'ii-cp-1' } });
    await expect(driver.capture({ domainName: guest.name, output })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(driver.capture({ domainName: guest.name, output: mapConsumer({ chunkSizeBytes: 3 * MiB }).output })).rejects.toMatchObject(
      { code: 'VALIDATION_FAILED' },
    );
    before.expectUntouched();
    expect(checkpoints().sort()).toEqual(['ii-cp-1', 'ii-cp-2']);
    expect(sh('test', '-e', '/tmp/ii-pwned').code).not.toBe(0);
  });

  it('deleteCheckpoints removes checkpoints and bitmaps only (running and stopped), ignoring unknown names', async () => {
    const data = rawDisk();
    const driver = makeDriver(scratch);
    await driver.deleteCheckpoints!(guest.name, ['ii-cp-1', 'ii-cp-unknown']);
    expect(checkpoints()).toEqual(['ii-cp-2']);
    stop();
    const chain = diskChainSnapshot(guest.name);
    expect(imageBitmaps()).toEqual(['ii-cp-2']);
    await driver.deleteCheckpoints!(guest.name, ['ii-cp-2', 'ii-cp-2']);
    expect(checkpoints()).toEqual([]);
    expect(imageBitmaps()).toEqual([]);
    expect(diskChainSnapshot(guest.name)).toEqual(chain);
    expect(rawDisk().equals(data)).toBe(true);
    await expect(driver.deleteCheckpoints!('ii-test-no-such-domain', ['ii-cp-2'])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    start();
  });

  it('recover() stops a qemu-nbd left by an interrupted capture of a stopped domain and removes its files', async () => {
    stop();
    const names = captureScratch(scratch, guest.name);
    execFileSync('qemu-nbd', [
      '--read-only',
      '--format=qcow2',
      '--fork',
      `--pid-file=${names.qemuNbdPid}`,
      `--socket=${names.qemuNbdSocket}`,
      '--export-name=vda',
      '--',
      guest.primaryPath,
    ]);
    expect(qemuNbdRunning()).toBe(true);
    const actions = await makeDriver(scratch).recover(guest.name);
    expect(actions.map((a) => a.action)).toContain('stop-qemu-nbd');
    expect(qemuNbdRunning()).toBe(false);
    expect(leftovers(scratch)).toEqual([]);
    start();
  });

  it('with endLater, the capture resolves with the disk whole and its job ends behind it (running over RPC and the script, stopped)', async () => {
    const driver = makeDriver(scratch);
    const data = rawDisk();
    for (const [create, capturer] of [
      ['ii-cp-late', driver],
      ['ii-cp-late-virsh', makeDriver(scratch, { libvirtRpc: false })],
    ] as const) {
      const before = recordGuest(guest.name);
      const { output, kept } = mapConsumer({ checkpoint: { create } });
      const result = await capturer.capture({ domainName: guest.name, output: { ...output, endLater: true } });
      expect(result).toMatchObject({ method: 'pull-backup', checkpoint: create });
      expect(result.ended).toBeInstanceOf(Promise);
      expect(reassemble(kept).equals(data)).toBe(true);
      await result.ended;
      noJob();
      expect(leftovers(scratch)).toEqual([]);
      expect(checkpoints()).toContain(create);
      before.expectUntouched();
    }
    // Without endLater the job has ended when the capture resolves: nothing to wait for.
    const plain = mapConsumer();
    expect((await driver.capture({ domainName: guest.name, output: plain.output })).ended).toBeUndefined();
    noJob();
    await driver.deleteCheckpoints!(guest.name, ['ii-cp-late', 'ii-cp-late-virsh']);
    stop();
    const { output, kept } = mapConsumer();
    const result = await driver.capture({ domainName: guest.name, output: { ...output, endLater: true } });
    expect(result).toMatchObject({ method: 'cold-convert', checkpoint: null });
    expect(reassemble(kept).equals(data)).toBe(true);
    await result.ended;
    expect(qemuNbdRunning()).toBe(false);
    expect(leftovers(scratch)).toEqual([]);
    start();
  });
});
