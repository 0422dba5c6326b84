/**
 * The NBD client against a real qemu-nbd exporting qcow2 images over a unix socket: negotiation,
 * reads compared with an independent raw conversion, block status compared with `qemu-img map`,
 * many requests in flight, cancellation, and a clean close.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE_ALLOCATION,
  connectNbdUnix,
  dirtyBitmapContext,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
  type NbdClient,
  type NbdExtent,
} from '../../../drivers/nbd';
import { codeOf } from '../../support/errors';
import { freshDir, makeImage, qemuImgMap, qemuSkipReason, rawBytes, startQemuNbd, type QemuNbd } from './qemu';

const skip = qemuSkipReason();
const suite = skip === null ? describe : describe.skip;
const MiB = 1024 * 1024;

/** Merges neighbouring runs with the same classification. */
function runs(entries: Array<{ start: number; length: number; key: string }>): Array<{ start: number; end: number; key: string }> {
  const out: Array<{ start: number; end: number; key: string }> = [];
  for (const e of entries) {
    const last = out[out.length - 1];
    if (last && last.key === e.key && last.end === e.start) last.end = e.start + e.length;
    else out.push({ start: e.start, end: e.start + e.length, key: e.key });
  }
  return out;
}

suite(`NBD client against qemu-nbd${skip ? ` (skipped: ${skip})` : ''}`, { timeout: 60_000 }, () => {
  let dir: string;
  let image: string;
  let raw: Buffer;
  let server: QemuNbd;
  const clients: NbdClient[] = [];
  const open = async (options: Parameters<typeof connectNbdUnix>[1] = {}) => {
    const client = await connectNbdUnix(server.socket, { exportName: 'vda', ...options });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    dir = freshDir('client');
    image = `${dir}/disk.qcow2`;
    makeImage(image, '72M', [
      'write -P 0xab 0 4M',
      'write -P 0x5c 9M 1536K',
      'write -z 20M 2M',
      'write -P 0x00 30M 1M',
      'write -P 0x17 71M 512K',
      'write -P 0x99 50M 64k',
    ]);
    raw = rawBytes(image, dir);
    server = await startQemuNbd(image, `${dir}/nbd.sock`);
  });
  afterAll(async () => {
    for (const client of clients) client.destroy();
    await server?.stop();
  });

  it('negotiates structured replies, base:allocation and the export size, flags and block sizes', async () => {
    const client = await open();
    expect(client.info).toMatchObject({ name: 'vda', size: 72 * MiB, readOnly: true, structuredReplies: true });
    expect([...client.info.metaContexts.keys()]).toEqual([BASE_ALLOCATION]);
    expect(client.info.blockSize.minimum).toBeGreaterThanOrEqual(1);
    expect(client.maxReadBytes).toBeLessThanOrEqual(client.info.blockSize.maximum);
    await client.close();
  });

  it('refuses an unknown export with COMMAND_FAILED naming NBD_REP_ERR_UNKNOWN', async () => {
    const error = await connectNbdUnix(server.socket, { exportName: 'nope' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'COMMAND_FAILED', details: { nbd: 'NBD_REP_ERR_UNKNOWN' } });
    expect(String((error as Error).message)).toContain('no export by that name');
  });

  it('a context the server does not have is simply not negotiated', async () => {
    const client = await open({ metaContexts: [BASE_ALLOCATION, dirtyBitmapContext('missing')] });
    expect([...client.info.metaContexts.keys()]).toEqual([BASE_ALLOCATION]);
    await client.close();
  });

  it('reads the same bytes as an independent raw conversion, data, holes and both mixed, many requests in flight', async () => {
    const client = await open({ maxInFlight: 4 });
    const ranges: Array<[number, number]> = [
      [0, 4 * MiB],
      [4 * MiB, 4 * MiB], // a hole: OFFSET_HOLE chunks, filled with zeroes
      [8 * MiB + 123, 3 * MiB], // unaligned, data inside holes
      [20 * MiB, 2 * MiB],
      [70 * MiB, 2 * MiB], // the export's last bytes
      [50 * MiB - 1, 2],
    ];
    for (let i = 0; i < 40; i++) ranges.push([(i * 7919 * 4096) % (68 * MiB), 1 + ((i * 104729) % MiB)]);
    const results = await Promise.all(ranges.map(([offset, length]) => client.read(offset, length)));
    results.forEach((bytes, i) => {
      const [offset, length] = ranges[i] as [number, number];
      expect(bytes.equals(raw.subarray(offset, offset + length)), `bytes ${offset}+${length}`).toBe(true);
    });
    expect(client.stats.readRequests).toBe(ranges.length);
    // The server skipped holes: fewer data bytes than were asked for.
    expect(client.stats.dataBytesReceived).toBeLessThan(client.stats.readBytesRequested);
    await client.close();
  });

  it('reads into a caller buffer at an offset and refuses ranges outside the export', async () => {
    const client = await open();
    const target = Buffer.alloc(3 * MiB, 0xee);
    await client.read(9 * MiB, MiB, { into: target, intoOffset: MiB });
    expect(target.subarray(MiB, 2 * MiB).equals(raw.subarray(9 * MiB, 10 * MiB))).toBe(true);
    expect(target[0]).toBe(0xee);
    expect(await codeOf(client.read(72 * MiB - 10, 11))).toBe('VALIDATION_FAILED');
    expect(await codeOf(client.read(0, client.maxReadBytes + 1))).toBe('VALIDATION_FAILED');
    expect(await codeOf(client.read(0, MiB, { into: Buffer.alloc(10) }))).toBe('VALIDATION_FAILED');
    await client.close();
  });

  it("block status matches qemu-img map's allocation (data ↔ not HOLE, zero ↔ ZERO)", async () => {
    const client = await open();
    const extents: NbdExtent[] = [];
    for (let at = 0; at < client.info.size;) {
      const status = await client.blockStatus(at, client.info.size - at);
      const list = status.get(BASE_ALLOCATION) ?? [];
      expect(list[0]?.offset).toBe(at);
      extents.push(...list);
      at = (list[list.length - 1] as NbdExtent).offset + (list[list.length - 1] as NbdExtent).length;
    }
    const fromNbd = runs(
      extents.map((e) => ({
        start: e.offset,
        length: e.length,
        key: `${(e.flags & NBD_STATE_HOLE) === 0}/${(e.flags & NBD_STATE_ZERO) !== 0}`,
      })),
    );
    const fromMap = runs(qemuImgMap(image).map((m) => ({ start: m.start, length: m.length, key: `${m.data}/${m.zero}` })));
    expect(fromNbd).toEqual(fromMap);
    expect(fromNbd.some((r) => r.key === 'true/false')).toBe(true);
    expect(fromNbd.some((r) => r.key === 'false/true')).toBe(true);
  });

  it('a cancelled read rejects with CANCELLED, its reply is drained, and the connection stays usable', async () => {
    const client = await open();
    // Aborted before it is sent.
    const early = new AbortController();
    const notSent = client.read(0, 8 * MiB, { signal: early.signal });
    early.abort();
    expect(await codeOf(notSent)).toBe('CANCELLED');
    // Aborted in flight: microtasks let the request go out, but no reply can arrive without I/O.
    const controller = new AbortController();
    const sent = client.read(0, 32 * MiB, { signal: controller.signal });
    for (let i = 0; i < 20; i++) await Promise.resolve();
    controller.abort();
    expect(await codeOf(sent)).toBe('CANCELLED');
    const after = await client.read(9 * MiB, 1536 * 1024);
    expect(after.equals(raw.subarray(9 * MiB, 9 * MiB + 1536 * 1024))).toBe(true);
    const aborted = new AbortController();
    aborted.abort();
    expect(await codeOf(client.read(0, 10, { signal: aborted.signal }))).toBe('CANCELLED');
    await client.close();
  });

  it('close waits for reads in flight, disconnects, and later requests get INVALID_STATE', async () => {
    const client = await open();
    const reads = [client.read(0, 4 * MiB), client.read(9 * MiB, MiB)];
    const closing = client.close();
    expect(await codeOf(client.read(0, 1))).toBe('INVALID_STATE');
    const [first] = await Promise.all(reads);
    expect(first?.equals(raw.subarray(0, 4 * MiB))).toBe(true);
    await closing;
    await client.close();
    expect(await codeOf(client.blockStatus(0, MiB))).toBe('INVALID_STATE');
  });

  it('a server that goes away fails pending and later requests with HYPERVISOR_UNREACHABLE', async () => {
    const own = await startQemuNbd(image, `${dir}/gone.sock`);
    const client = await connectNbdUnix(own.socket, { exportName: 'vda' });
    clients.push(client);
    await own.stop();
    expect(await codeOf(client.read(0, MiB))).toBe('HYPERVISOR_UNREACHABLE');
    expect(await codeOf(connectNbdUnix(own.socket, { exportName: 'vda' }))).toBe('HYPERVISOR_UNREACHABLE');
  });
});
