/**
 * The chunk reader against a real qemu-nbd: chunk kinds and SHA-256 compared with an independent
 * raw conversion hashed by node's crypto, holes never read, dirty bitmaps (`qemu-img bitmap`,
 * writes with qemu-io, `qemu-nbd -B`) selecting exactly the written chunks, bounded read-ahead.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE_ALLOCATION,
  connectNbdUnix,
  dirtyBitmapContext,
  NBD_STATE_DIRTY,
  readNbdChunks,
  type ChunkProgress,
  type NbdChunk,
  type NbdClient,
} from '../../../drivers/nbd';
import { codeOf } from '../../support/errors';
import { freshDir, makeImage, qemuSkipReason, rawBytes, run, sha256, startQemuNbd, writeImage, type QemuNbd } from './qemu';
import { minorFaults } from '../../../scripts/lib/proc-stat.mjs';

const skip = qemuSkipReason();
const suite = skip === null ? describe : describe.skip;
const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;

async function collectChunks(iterable: AsyncIterable<NbdChunk>): Promise<NbdChunk[]> {
  const out: NbdChunk[] = [];
  for await (const chunk of iterable) out.push(chunk);
  return out;
}

/** What each chunk must be, from the raw bytes alone. */
function expectedKinds(raw: Buffer, chunkSize: number): Array<{ kind: 'zero' } | { kind: 'data'; sha256: string }> {
  const out: Array<{ kind: 'zero' } | { kind: 'data'; sha256: string }> = [];
  for (let at = 0; at < raw.length; at += chunkSize) {
    const slice = raw.subarray(at, Math.min(raw.length, at + chunkSize));
    out.push(slice.every((b) => b === 0) ? { kind: 'zero' } : { kind: 'data', sha256: sha256(slice) });
  }
  return out;
}

suite(`NBD chunk reader against qemu-nbd${skip ? ` (skipped: ${skip})` : ''}`, { timeout: 60_000 }, () => {
  let dir: string;
  const servers: QemuNbd[] = [];
  const clients: NbdClient[] = [];
  const serve = async (image: string, name: string, bitmap?: string) => {
    const server = await startQemuNbd(image, `${dir}/${name}.sock`, bitmap ? { bitmap } : {});
    servers.push(server);
    return server;
  };
  const open = async (server: QemuNbd, options: Parameters<typeof connectNbdUnix>[1] = {}) => {
    const client = await connectNbdUnix(server.socket, { exportName: 'vda', ...options });
    clients.push(client);
    return client;
  };

  beforeAll(() => {
    dir = freshDir('chunks');
  });
  afterAll(async () => {
    for (const client of clients) client.destroy();
    for (const server of servers) await server.stop();
  });

  it('every chunk is zero or data with the SHA-256 of an independent read; hole chunks are never read', async () => {
    const image = `${dir}/full.qcow2`;
    // Size not a multiple of the chunk size: the last chunk is short.
    makeImage(image, `${40 * MiB + 512 * 1024}`, [
      'write -P 0xab 0 4M', // chunk 0: full data
      'write -P 0x5c 9M 64k', // chunk 2: a little data in a hole
      'write -P 0x00 16M 4M', // chunk 4: data that reads as zeroes (allocated)
      'write -z 24M 4M', // chunk 6: zero per block status
      'write -P 0x31 39M 1536k', // chunks 9 and 10 (the short one)
    ]);
    const raw = rawBytes(image, dir);
    const client = await open(await serve(image, 'full'));
    const progress: ChunkProgress[] = [];
    // No prime read (tested on its own below): the requests counted are the chunks' reads.
    const chunks = await collectChunks(readNbdChunks(client, { primeBytes: 0, onProgress: (p) => progress.push(p) }));

    expect(chunks.map((c) => c.index)).toEqual([...Array(11).keys()]);
    expect(chunks.map((c) => [c.offset, c.length])).toEqual(chunks.map((_, i) => [i * CHUNK, i === 10 ? 512 * 1024 : CHUNK]));
    const expected = expectedKinds(raw, CHUNK);
    expect(chunks.map((c) => (c.kind === 'data' ? { kind: c.kind, sha256: c.sha256 } : { kind: c.kind }))).toEqual(expected);
    for (const chunk of chunks)
      if (chunk.kind === 'data') expect(chunk.bytes.equals(raw.subarray(chunk.offset, chunk.offset + chunk.length))).toBe(true);
    expect(chunks[4]?.kind).toBe('zero'); // read, found all zero
    // Only chunks 0, 2, 4, 9, 10 hold allocated data: five reads, each only over its data span.
    expect(client.stats.readRequests).toBe(5);
    expect(client.stats.readBytesRequested).toBe(4 * MiB + 64 * 1024 + 4 * MiB + MiB + 512 * 1024);
    expect(progress[progress.length - 1]).toEqual({
      processedBytes: client.info.size,
      totalBytes: client.info.size,
      readBytes: client.stats.readBytesRequested,
    });
    expect(progress.map((p) => p.processedBytes)).toEqual(chunks.map((c) => c.offset + c.length));
  });

  it('primes the server with one read of a hole that carries no data, after which qemu-nbd reuses its request buffers', async () => {
    // A large disk whose data fills only its start: the hole after it holds the prime read.
    const image = `${dir}/prime.qcow2`;
    makeImage(image, `${1024 * MiB}`, ['write -P 0x5a 0 128M']);
    // Without GLIBC_TUNABLES (as a guest's own QEMU runs): glibc maps each request's 1 MiB buffer
    // anew until a freed 16 MiB one raises its mmap threshold.
    const server = await serve(image, 'prime');
    const client = await open(server, { metaContexts: [BASE_ALLOCATION] });
    const others = [await open(server), await open(server), await open(server)];
    const faults = () => minorFaults(readFileSync(`/proc/${server.process.pid}/stat`, 'utf8'));
    const before = faults();
    const chunks = await collectChunks(readNbdChunks(client, { connections: others }));
    const pages = (128 * MiB) / 4096;
    const faulted = faults() - before;

    const data = chunks.filter((c) => c.kind === 'data');
    expect(data.map((c) => c.index)).toEqual([...Array(32).keys()]);
    expect(data.every((c) => c.kind === 'data' && c.bytes.every((b) => b === 0x5a))).toBe(true);
    // The prime read was asked on the first connection and answered with a hole: no data came.
    expect(client.stats.readBytesRequested).toBe(16 * MiB + client.stats.dataBytesReceived);
    expect([client, ...others].reduce((sum, c) => sum + c.stats.dataBytesReceived, 0)).toBe(128 * MiB);
    // Every page of every reply buffer was faulted in without it (65,910 faults per 256 MiB
    // measured here, 5,772 with it): with it, the heap's growth and the page cache's pages.
    expect(faulted).toBeLessThan(pages / 3);
  });

  it('reuses handed-back buffers without leaking their bytes: outside its data span a chunk reads as zeroes', async () => {
    const image = `${dir}/reuse.qcow2`;
    // Two full chunks fill buffers with a pattern; later chunks hold data only in a part of
    // themselves (middle, start, end) and are read into those buffers once handed back.
    makeImage(image, `${8 * CHUNK}`, [
      'write -P 0xab 0 4M', // chunk 0: full
      'write -P 0xcd 4M 4M', // chunk 1: full
      'write -P 0x11 10M 64k', // chunk 2: data in the middle
      'write -P 0x22 12M 64k', // chunk 3: data at the start
      'write -P 0xef 16M 4M', // chunk 4: full
      `write -P 0x33 ${24 * MiB - 64 * 1024} 64k`, // chunk 5: data at the end
    ]);
    const raw = rawBytes(image, dir);
    const client = await open(await serve(image, 'reuse'));
    const seen: Array<{ index: number; kind: string; equal: boolean }> = [];
    for await (const chunk of readNbdChunks(client, { parallel: 1 })) {
      if (chunk.kind !== 'data') continue;
      seen.push({
        index: chunk.index,
        kind: chunk.kind,
        equal: chunk.bytes.equals(raw.subarray(chunk.offset, chunk.offset + chunk.length)),
      });
      chunk.release(); // back to the pool: a later chunk's read reuses these bytes
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5].map((index) => ({ index, kind: 'data', equal: true })));
    // The partial chunks were read over their data spans only (the rest was filled, not read).
    expect(client.stats.readBytesRequested).toBe(3 * CHUNK + 3 * 64 * 1024);
  });

  it('small chunks and reads split below the chunk size give the same digests', async () => {
    const image = `${dir}/split.qcow2`;
    makeImage(image, '8M', ['write -P 0x44 0 3M', 'write -P 0x45 5M 100k']);
    const raw = rawBytes(image, dir);
    const client = await open(await serve(image, 'split'), { maxReadBytes: 256 * 1024, maxInFlight: 3 });
    const chunks = await collectChunks(readNbdChunks(client, { chunkSize: MiB, parallel: 2, blockStatusWindow: 2 * MiB }));
    expect(chunks.map((c) => (c.kind === 'data' ? { kind: c.kind, sha256: c.sha256 } : { kind: c.kind }))).toEqual(expectedKinds(raw, MiB));
    expect(client.stats.blockStatusRequests).toBe(4);
  });

  it('with a dirty bitmap, exactly the chunks written since it was enabled are read; the rest are unchanged', async () => {
    const image = `${dir}/dirty.qcow2`;
    makeImage(image, '64M', ['write -P 0x11 0 16M']);
    run('qemu-img', 'bitmap', '--add', '--enable', image, 'b0');
    const written: Array<[number, number]> = [
      [8 * MiB, 4 * MiB],
      [30 * MiB, 64 * 1024],
      [63 * MiB, MiB],
    ];
    writeImage(
      image,
      written.map(([offset, length], i) => `write -P 0x${(0x22 + i).toString(16)} ${offset} ${length}`),
    );
    const raw = rawBytes(image, dir);
    const client = await open(await serve(image, 'dirty', 'b0'), { metaContexts: [BASE_ALLOCATION, dirtyBitmapContext('b0')] });

    // The bitmap's block status marks exactly the written ranges.
    const status = await client.blockStatus(0, client.info.size);
    const dirtyRanges = (status.get(dirtyBitmapContext('b0')) ?? [])
      .filter((e) => e.flags & NBD_STATE_DIRTY)
      .map((e) => [e.offset, e.length]);
    expect(dirtyRanges).toEqual(written);

    const chunks = await collectChunks(readNbdChunks(client, { dirtyContext: dirtyBitmapContext('b0'), primeBytes: 0 }));
    const dirtyIndexes = new Set(written.map(([offset]) => Math.floor(offset / CHUNK)));
    for (const chunk of chunks) {
      if (!dirtyIndexes.has(chunk.index)) expect(chunk.kind, `chunk ${chunk.index}`).toBe('unchanged');
      else {
        expect(chunk.kind).toBe('data');
        if (chunk.kind === 'data') expect(chunk.sha256).toBe(sha256(raw.subarray(chunk.offset, chunk.offset + CHUNK)));
      }
    }
    expect(client.stats.readRequests).toBe(dirtyIndexes.size);
  });

  it('a dirty context the server did not agree to is INVALID_STATE before anything is read', async () => {
    const image = `${dir}/nobitmap.qcow2`;
    makeImage(image, '8M', ['write -P 0x10 0 1M']);
    const client = await open(await serve(image, 'nobitmap'));
    expect(await codeOf(collectChunks(readNbdChunks(client, { dirtyContext: dirtyBitmapContext('b0') })))).toBe('INVALID_STATE');
    expect(await codeOf(collectChunks(readNbdChunks(client, { chunkSize: 0 })))).toBe('VALIDATION_FAILED');
    expect(client.stats.readRequests).toBe(0);
  });

  it('a slow consumer limits the reads: at most `parallel` chunks ahead, and stopping early stops reading', async () => {
    const image = `${dir}/ahead.qcow2`;
    makeImage(image, '64M', ['write -P 0x61 0 64M']);
    const client = await open(await serve(image, 'ahead'));
    let taken = 0;
    for await (const chunk of readNbdChunks(client, { parallel: 3 })) {
      taken++;
      expect(chunk.kind).toBe('data');
      // Give the reader every chance to run ahead while the consumer holds this chunk.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(client.stats.readRequests).toBeLessThanOrEqual(taken + 3);
      if (taken === 4) break;
    }
    expect(client.stats.readRequests).toBeLessThanOrEqual(7);
    // The connection is still sound after the early stop (abandoned replies were drained).
    const again = await collectChunks(readNbdChunks(client, { parallel: 2 }));
    expect(again).toHaveLength(16);
    await client.close();
  });

  it('a signal stops the reader with CANCELLED', async () => {
    const image = `${dir}/cancel.qcow2`;
    makeImage(image, '32M', ['write -P 0x71 0 32M']);
    const client = await open(await serve(image, 'cancel'));
    const controller = new AbortController();
    const seen: number[] = [];
    const result = codeOf(
      (async () => {
        for await (const chunk of readNbdChunks(client, { signal: controller.signal })) {
          seen.push(chunk.index);
          if (chunk.index === 1) controller.abort();
        }
      })(),
    );
    expect(await result).toBe('CANCELLED');
    expect(seen).toEqual([0, 1]);
  });
});
