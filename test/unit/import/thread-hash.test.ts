import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HASH_BATCH_BYTES, threadHash } from '../../../src/util/thread-hash';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('threadHash: the sha256 of an import hashed on a worker thread', () => {
  it('hashes what it was given, in pieces of any size across its batches, the caller reusing its buffers', async () => {
    const bytes = randomBytes(3 * HASH_BATCH_BYTES + 12345);
    const hash = threadHash();
    const reused = Buffer.alloc(700_001);
    for (let at = 0; at < bytes.length; at += reused.length) {
      const piece = bytes.subarray(at, at + reused.length);
      piece.copy(reused);
      await hash.update(reused.subarray(0, piece.length));
      reused.fill(0); // copied at once: changing the caller's buffer afterwards changes nothing
    }
    expect(await hash.digest()).toBe(sha256(bytes));
  });

  it('hashes nothing as the empty input, and one byte as one byte', async () => {
    expect(await threadHash().digest()).toBe(sha256(Buffer.alloc(0)));
    const one = threadHash();
    await one.update(Buffer.from([7]));
    expect(await one.digest()).toBe(sha256(Buffer.from([7])));
  });

  it('makes the caller wait while batches are in flight, so memory stays bounded (many batches, every one hashed)', async () => {
    const piece = randomBytes(HASH_BATCH_BYTES);
    const hash = threadHash();
    const whole = createHash('sha256');
    for (let i = 0; i < 64; i++) {
      await hash.update(piece);
      whole.update(piece);
    }
    expect(await hash.digest()).toBe(whole.digest('hex'));
  });

  it('refuses a digest after it was destroyed', async () => {
    const hash = threadHash();
    await hash.update(Buffer.from('abc'));
    hash.destroy();
    await expect(hash.digest()).rejects.toThrow();
  });
});
