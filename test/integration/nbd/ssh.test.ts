/**
 * The NBD client through the real sshd: a stream-local channel from the SSH executor (pinned host
 * key) to qemu-nbd's unix socket, the way the panel reaches a remote hypervisor's backup export.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSshExecutor, type SshExecutor } from '../../../drivers/exec/ssh';
import { connectNbd, readNbdChunks, type NbdChunk } from '../../../drivers/nbd';
import { isInstanceImagesError } from '../../../src/errors';
import { codeOf } from '../../support/errors';
import { sshTarget, SSH_HOST, SSH_PORT } from '../exec/ssh-target';
import { startTcpProxy, type TcpProxy } from '../exec/tcp-proxy';
import { freshDir, makeImage, qemuSkipReason, rawBytes, sha256, startQemuNbd, type QemuNbd } from './qemu';

const qemuSkip = qemuSkipReason();
const target = await sshTarget();
const skip = qemuSkip ?? ('skip' in target ? target.skip : null);
const suite = skip === null ? describe : describe.skip;
const MiB = 1024 * 1024;

suite(`NBD over an SSH stream-local channel${skip ? ` (skipped: ${skip})` : ''}`, { timeout: 60_000 }, () => {
  if ('skip' in target) return;
  const { connection } = target;
  let dir: string;
  let image: string;
  let raw: Buffer;
  let server: QemuNbd;
  let executor: SshExecutor;
  let proxy: TcpProxy;

  beforeAll(async () => {
    dir = freshDir('ssh');
    image = `${dir}/disk.qcow2`;
    makeImage(image, '48M', ['write -P 0x3c 0 6M', 'write -P 0x4d 20M 64k', 'write -P 0x5e 40M 8M']);
    raw = rawBytes(image, dir);
    server = await startQemuNbd(image, `${dir}/nbd.sock`);
    executor = createSshExecutor(connection, { maxConnections: 1, maxChannelsPerConnection: 2 });
    proxy = await startTcpProxy(SSH_HOST, SSH_PORT);
  });
  afterAll(async () => {
    await executor?.close();
    await proxy?.close();
    await server?.stop();
  });

  it('reads every chunk through the channel with the digests of an independent read, then frees the channel', async () => {
    const stream = await executor.openStreamLocal(server.socket);
    const client = await connectNbd(stream, { exportName: 'vda', label: `NBD export vda on ${SSH_HOST}` });
    expect(client.info.size).toBe(48 * MiB);
    const chunks: NbdChunk[] = [];
    for await (const chunk of readNbdChunks(client)) chunks.push(chunk);
    expect(chunks).toHaveLength(12);
    for (const chunk of chunks) {
      const slice = raw.subarray(chunk.offset, chunk.offset + chunk.length);
      if (chunk.kind === 'data') expect(chunk.sha256).toBe(sha256(slice));
      else expect(slice.every((b) => b === 0)).toBe(true);
    }
    expect(chunks.filter((c) => c.kind === 'data').map((c) => c.index)).toEqual([0, 1, 5, 10, 11]);
    await client.close();
    // A client failed hard (destroyed mid-handshake of nothing) frees its channel too.
    const broken = await connectNbd(await executor.openStreamLocal(server.socket), { exportName: 'vda' });
    const reading = broken.read(0, 4 * MiB);
    broken.destroy();
    expect(await codeOf(reading)).toBe('INVALID_STATE');
    // Both channel slots are free again: four channels, two at a time, fit on the one connection.
    for (let round = 0; round < 2; round++) {
      const more = await Promise.all([0, 1].map(() => executor.openStreamLocal(server.socket)));
      for (const channel of more) {
        const closed = new Promise((resolve) => channel.once('close', resolve));
        channel.destroy();
        channel.resume();
        await closed;
      }
    }
    expect((await executor.run(['true'])).exitCode).toBe(0);
    expect(executor.connectionCount).toBe(1);
  });

  it('a socket that does not exist is COMMAND_FAILED naming it', async () => {
    const error = await executor.openStreamLocal(`${dir}/missing.sock`).catch((e: unknown) => e);
    expect(isInstanceImagesError(error, 'COMMAND_FAILED')).toBe(true);
    expect(String((error as Error).message)).toContain(`${dir}/missing.sock`);
    expect((await executor.run(['true'])).exitCode).toBe(0);
  });

  it('an SSH connection dropped mid-read is HYPERVISOR_UNREACHABLE', async () => {
    const viaProxy = createSshExecutor({ ...connection, port: proxy.port });
    try {
      const client = await connectNbd(await viaProxy.openStreamLocal(server.socket), { exportName: 'vda' });
      const seen: number[] = [];
      const result = codeOf(
        (async () => {
          for await (const chunk of readNbdChunks(client, { parallel: 2 })) {
            seen.push(chunk.index);
            if (seen.length === 1) proxy.dropAll();
          }
        })(),
      );
      expect(await result).toBe('HYPERVISOR_UNREACHABLE');
      expect(seen.length).toBeLessThan(12);
    } finally {
      await viaProxy.close();
    }
  });
});
