import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { inlineHasher, workerHasher } from '../../../src/import/hasher';
import { openByteSource } from '../../../src/import/source';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('the stream hasher', () => {
  it('hashes in a worker exactly what a hash on this thread gives, whatever the chunking, with the caller reusing its buffers', async () => {
    const data = randomBytes(9 * 1024 * 1024 + 12345);
    for (const size of [1, 4096, 65536, 1024 * 1024, 3 * 1024 * 1024 + 7]) {
      const hasher = workerHasher();
      const scratch = Buffer.alloc(size);
      for (let offset = 0; offset < Math.min(data.length, size === 1 ? 20000 : data.length); offset += size) {
        const piece = data.subarray(offset, Math.min(offset + size, data.length));
        piece.copy(scratch);
        await hasher.update(scratch.subarray(0, piece.length));
        scratch.fill(0xaa); // reused by the caller right away
      }
      const hashed = size === 1 ? data.subarray(0, 20000) : data;
      expect(await hasher.digest(), `chunks of ${size}`).toBe(sha256(hashed));
    }
    const empty = workerHasher();
    expect(await empty.digest()).toBe(sha256(Buffer.alloc(0)));
    const inline = inlineHasher();
    await inline.update(data);
    expect(await inline.digest()).toBe(sha256(data));
  });

  it('rejects updates and the digest once closed', async () => {
    const hasher = workerHasher();
    await hasher.update(randomBytes(100));
    hasher.close();
    await expect(hasher.update(randomBytes(100))).rejects.toThrow(/closed/);
    await expect(hasher.digest()).rejects.toThrow(/closed/);
  });

  it('gives an import source of several MiB the sha256 of its bytes (hashed off the main thread), and checks an expected one', async () => {
    const data = Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), randomBytes(6 * 1024 * 1024)]);
    data.fill(0, 4, 4096);
    data.writeUInt32BE(3, 4); // version 3
    data.writeUInt32BE(16, 20); // cluster bits
    data.writeBigUInt64BE(BigInt(64 * 1024 * 1024), 24); // virtual size
    data.writeUInt32BE(104, 100); // header length
    const chunks = async function* () {
      for (let offset = 0; offset < data.length; offset += 65536) yield data.subarray(offset, offset + 65536);
    };
    const options = { maxImageBytes: 1 << 30, decompressors: { xz: null, bzip2: null, zstd: false }, signal: new AbortController().signal };
    const source = await openByteSource(chunks(), options);
    for await (const _chunk of source.stream) void _chunk;
    expect(source.result()).toEqual({ sizeBytes: data.length, sha256: sha256(data) });
    const wrong = await openByteSource(chunks(), { ...options, expectedSha256: '0'.repeat(64) });
    await expect(
      (async () => {
        for await (const _chunk of wrong.stream) void _chunk;
      })(),
    ).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH', details: { actual: sha256(data) } });
  });
});
