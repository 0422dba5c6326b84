/**
 * The NBD client's writes against a real qemu-nbd serving a writable qcow2 on a unix socket:
 * WRITE, WRITE_ZEROES and FLUSH read back by qemu-img after the server exited; a read-only export
 * refused before anything is sent.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNbdUnix } from '../../../drivers/nbd';
import { codeOf } from '../../support/errors';
import { freshDir, makeImage, qemuImgMap, qemuSkipReason, rawBytes, startQemuNbd, type QemuNbd } from './qemu';

const skip = qemuSkipReason();
const suite = skip === null ? describe : describe.skip;
const MiB = 1024 * 1024;

/** qemu-nbd serving `image` writable for one client; resolves with its exit code once that client left. */
async function serveWritable(image: string, socket: string): Promise<{ exited: Promise<number | null> }> {
  const child = spawn('qemu-nbd', ['--format=qcow2', '--cache=writeback', '--discard=unmap', '--shared=1', `--socket=${socket}`, image], {
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  // Wrapped: an async function returning the promise itself would wait for the exit.
  return { exited };
}

suite(`NBD writes against qemu-nbd${skip ? ` (skipped: ${skip})` : ''}`, { timeout: 60_000 }, () => {
  let dir: string;
  let readOnly: QemuNbd;

  beforeAll(async () => {
    dir = freshDir('write');
    makeImage(`${dir}/ro.qcow2`, '8M', ['write -P 0x11 0 1M']);
    readOnly = await startQemuNbd(`${dir}/ro.qcow2`, `${dir}/ro.sock`);
  });
  afterAll(async () => {
    await readOnly?.stop();
  });

  it('writes data and zeroes, flushes, and qemu-img reads exactly that back', async () => {
    const image = `${dir}/rw.qcow2`;
    makeImage(image, '32M', ['write -P 0x77 8M 4M']);
    const { exited } = await serveWritable(image, `${dir}/rw.sock`);
    const client = await connectNbdUnix(`${dir}/rw.sock`, { maxInFlight: 4 });
    expect(client.info.readOnly).toBe(false);
    const data = randomBytes(6 * MiB);
    await Promise.all([
      client.write(0, data.subarray(0, 2 * MiB)),
      client.write(2 * MiB, data.subarray(2 * MiB, 4 * MiB)),
      client.write(4 * MiB, data.subarray(4 * MiB), { fua: true }),
      client.writeZeroes(9 * MiB, 2 * MiB),
      client.write(31 * MiB, Buffer.alloc(MiB, 0xee)),
    ]);
    await client.flush();
    expect(client.stats).toMatchObject({ writeRequests: 4, dataBytesSent: 7 * MiB, writeZeroesRequests: 1, flushRequests: 1 });
    await client.close();
    expect(await exited).toBe(0);
    const raw = rawBytes(image, dir);
    expect(raw.subarray(0, 6 * MiB).equals(data)).toBe(true);
    expect(raw.subarray(6 * MiB, 8 * MiB).every((b) => b === 0)).toBe(true);
    expect(raw.subarray(8 * MiB, 9 * MiB).every((b) => b === 0x77)).toBe(true);
    expect(raw.subarray(9 * MiB, 11 * MiB).every((b) => b === 0)).toBe(true);
    expect(raw.subarray(11 * MiB, 12 * MiB).every((b) => b === 0x77)).toBe(true);
    expect(raw.subarray(31 * MiB).every((b) => b === 0xee)).toBe(true);
    // The zeroed range is no longer data in the image.
    const zeroed = qemuImgMap(image).filter((e) => e.start < 11 * MiB && e.start + e.length > 9 * MiB);
    expect(zeroed.every((e) => !e.data || e.zero)).toBe(true);
  });

  it('refuses WRITE, WRITE_ZEROES and FLUSH on a read-only export', async () => {
    const client = await connectNbdUnix(readOnly.socket, { exportName: 'vda' });
    expect(client.info.readOnly).toBe(true);
    expect(await codeOf(client.write(0, Buffer.alloc(4096)))).toBe('INVALID_STATE');
    expect(await codeOf(client.writeZeroes(0, 4096))).toBe('INVALID_STATE');
    expect(await codeOf(client.flush())).toBe('INVALID_STATE');
    // The connection is still good for reads.
    expect((await client.read(0, 4096)).every((b) => b === 0x11)).toBe(true);
    await client.close();
  });
});
