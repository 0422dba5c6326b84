/**
 * readNbdChunks over several connections to one export: the reads are spread over all of them,
 * block status stays on the first, the chunks come out in order with the right bytes and digests,
 * and the bytes held stay bounded. In-memory clients stand in for the server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BASE_ALLOCATION, NBD_STATE_HOLE, NBD_STATE_ZERO, readNbdChunks, type NbdChunk, type NbdClient } from '../../../drivers/nbd';
import { DEFAULT_PRIME_BYTES, PIECES_IN_FLIGHT } from '../../../drivers/nbd/chunks';
import type { NbdExtent, NbdReadOptions } from '../../../drivers/nbd';
import { codeOf } from '../../support/errors';

const KiB = 1024;
const CHUNK = 64 * KiB;

/** A client of an in-memory disk whose `[dataEnd, size)` is a hole; records every request. */
class FakeClient {
  readonly label: string;
  readonly maxReadBytes = 32 * 1024 * 1024;
  readonly maxWriteBytes = 32 * 1024 * 1024;
  readonly stats = {} as NbdClient['stats'];
  readonly reads: Array<{ offset: number; length: number; discard?: true }> = [];
  /** Prime reads (`discard`) fail as a server error would. */
  failDiscard = false;
  blockStatusCalls = 0;
  outstanding = 0;
  maxOutstanding = 0;
  readonly info: NbdClient['info'];

  constructor(
    readonly disk: Buffer,
    readonly dataEnd: number,
    name: string,
    withContexts: boolean,
    size = disk.length,
  ) {
    this.label = name;
    this.info = {
      name: 'vda',
      size,
      readOnly: true,
      canMultiConn: true,
      transmissionFlags: 0,
      blockSize: { minimum: 512, preferred: 4096, maximum: 32 * 1024 * 1024 },
      structuredReplies: true,
      metaContexts: new Map(withContexts ? [[BASE_ALLOCATION, 1]] : []),
    };
  }

  async read(offset: number, length: number, options: NbdReadOptions = {}): Promise<Buffer> {
    if (options.discard) {
      this.reads.push({ offset, length, discard: true });
      if (this.failDiscard) throw new Error('EIO');
      return Buffer.alloc(0);
    }
    this.reads.push({ offset, length });
    this.outstanding += length;
    this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding);
    await new Promise((resolve) => setTimeout(resolve, 1 + (offset % 3)));
    this.outstanding -= length;
    const into = options.into as Buffer;
    this.disk.copy(into, options.intoOffset ?? 0, offset, offset + length);
    return into.subarray(options.intoOffset ?? 0, (options.intoOffset ?? 0) + length);
  }

  async blockStatus(offset: number, length: number): Promise<Map<string, NbdExtent[]>> {
    this.blockStatusCalls++;
    const end = offset + length;
    const extents: NbdExtent[] = [];
    if (offset < this.dataEnd) extents.push({ offset, length: Math.min(end, this.dataEnd) - offset, flags: 0 });
    if (end > this.dataEnd) {
      const from = Math.max(offset, this.dataEnd);
      extents.push({ offset: from, length: end - from, flags: NBD_STATE_HOLE | NBD_STATE_ZERO });
    }
    return new Map([[BASE_ALLOCATION, extents]]);
  }

  write(): Promise<void> {
    throw new Error('read-only');
  }
  writeZeroes(): Promise<void> {
    throw new Error('read-only');
  }
  flush(): Promise<void> {
    throw new Error('read-only');
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): void {}
}

async function collect(chunks: AsyncIterable<NbdChunk>): Promise<NbdChunk[]> {
  const out: NbdChunk[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

describe('readNbdChunks over several connections', () => {
  const disk = Buffer.concat([randomBytes(40 * CHUNK), Buffer.alloc(24 * CHUNK)]);
  const dataEnd = 40 * CHUNK;

  it('spreads the reads over every connection, asks block status on the first only, and hands out every chunk in order', async () => {
    const first = new FakeClient(disk, dataEnd, 'first', true);
    const others = [new FakeClient(disk, dataEnd, 'second', false), new FakeClient(disk, dataEnd, 'third', false)];
    const chunks = await collect(
      readNbdChunks(first as unknown as NbdClient, { chunkSize: CHUNK, connections: others as unknown as NbdClient[] }),
    );
    expect(chunks.map((c) => c.index)).toEqual([...Array(64).keys()]);
    for (const chunk of chunks) {
      const expected = disk.subarray(chunk.offset, chunk.offset + chunk.length);
      if (chunk.index < 40) {
        expect(chunk.kind).toBe('data');
        if (chunk.kind !== 'data') continue;
        expect(chunk.bytes.equals(expected)).toBe(true);
        expect(chunk.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
      } else expect(chunk.kind).toBe('zero');
    }
    for (const client of [first, ...others]) expect(client.reads.length).toBeGreaterThan(0);
    expect(others.every((c) => c.blockStatusCalls === 0)).toBe(true);
    // Every data byte was asked once, and nothing of the hole.
    const asked = [first, ...others].flatMap((c) => c.reads).sort((a, b) => a.offset - b.offset);
    expect(asked.reduce((sum, r) => sum + r.length, 0)).toBe(dataEnd);
    asked.forEach((r, i) => expect(r.offset).toBe(i === 0 ? 0 : (asked[i - 1]?.offset ?? 0) + (asked[i - 1]?.length ?? 0)));
  });

  it('classifies a read chunk as zero only when every byte is zero, whatever its length (a byte set past the first 64 KiB still counts)', async () => {
    const size = 256 * KiB;
    const length = 3 * size + 100 * KiB;
    const image = Buffer.alloc(length);
    image[2 * size - 1] = 1; // chunk 1: its very last byte
    image[2 * size + 100 * KiB] = 7; // chunk 2: inside its second 64 KiB block
    image[length - 1] = 3; // chunk 3 (short): its last byte
    // Block status says data everywhere: only the bytes read can tell.
    const client = new FakeClient(image, length, 'only', true);
    const chunks = await collect(readNbdChunks(client as unknown as NbdClient, { chunkSize: size }));
    expect(chunks.map((c) => c.kind)).toEqual(['zero', 'data', 'data', 'data']);
    expect(chunks.map((c) => c.length)).toEqual([size, size, size, 100 * KiB]);
    for (const chunk of chunks)
      if (chunk.kind === 'data') expect(chunk.bytes.equals(image.subarray(chunk.offset, chunk.offset + chunk.length))).toBe(true);
  });

  it('asks pieces in disk order, at most PIECES_IN_FLIGHT per connection, so a server that answers newest first still completes chunks in order', async () => {
    const clients = [new FakeClient(disk, dataEnd, 'first', true), new FakeClient(disk, dataEnd, 'second', false)];
    const asked: number[] = [];
    let peak = 0;
    for (const client of clients) {
      const pending: Array<() => void> = [];
      let inFlight = 0;
      // Answers the newest outstanding request first, as QEMU was traced doing.
      client.read = (offset, length, options = {}) => {
        asked.push(offset);
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        return new Promise((resolve) => {
          pending.push(() => {
            inFlight -= 1;
            const into = options.into as Buffer;
            disk.copy(into, options.intoOffset ?? 0, offset, offset + length);
            resolve(into.subarray(options.intoOffset ?? 0, (options.intoOffset ?? 0) + length));
          });
          setTimeout(() => pending.pop()?.(), 1);
        });
      };
    }
    const order: number[] = [];
    for await (const chunk of readNbdChunks(clients[0] as unknown as NbdClient, {
      chunkSize: CHUNK,
      parallel: 8,
      connections: [clients[1] as unknown as NbdClient],
    }))
      if (chunk.kind === 'data') order.push(chunk.index);
    expect(order).toEqual([...Array(40).keys()]);
    expect(peak).toBeLessThanOrEqual(PIECES_IN_FLIGHT);
    // Asked in disk order across both connections: every piece of a chunk before any of the next.
    expect(asked).toEqual([...asked].sort((a, b) => a - b));
  });

  it('holds no more than parallel chunks in reads at once, over all connections together', async () => {
    const first = new FakeClient(disk, dataEnd, 'first', true);
    const others = [new FakeClient(disk, dataEnd, 'second', false), new FakeClient(disk, dataEnd, 'third', false)];
    const clients = [first, ...others];
    let peak = 0;
    const all = clients.map((c) => {
      const read = c.read.bind(c);
      c.read = async (offset, length, options) => {
        const promise = read(offset, length, options);
        peak = Math.max(
          peak,
          clients.reduce((sum, x) => sum + x.outstanding, 0),
        );
        return promise;
      };
      return c;
    });
    let slow = 0;
    for await (const chunk of readNbdChunks(all[0] as unknown as NbdClient, {
      chunkSize: CHUNK,
      parallel: 3,
      connections: all.slice(1) as unknown as NbdClient[],
    })) {
      if (chunk.kind === 'data' && slow++ < 5) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(peak).toBeGreaterThan(CHUNK);
    expect(peak).toBeLessThanOrEqual(3 * CHUNK);
  });

  it('asks block status once for the whole disk and says when every read is in, before the slow consumer has taken the last chunks', async () => {
    const first = new FakeClient(disk, dataEnd, 'first', true);
    let doneAt = -1;
    let handed = 0;
    for await (const chunk of readNbdChunks(first as unknown as NbdClient, {
      chunkSize: CHUNK,
      parallel: 64,
      onReadsDone: () => {
        expect(doneAt).toBe(-1);
        doneAt = handed;
      },
    })) {
      handed++;
      if (chunk.index < 8) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(first.blockStatusCalls).toBe(1);
    // Every data chunk was read before the consumer took the tenth: the server was no longer needed.
    expect(doneAt).toBeGreaterThanOrEqual(0);
    expect(doneAt).toBeLessThan(10);
    expect(first.reads.reduce((sum, r) => sum + r.length, 0)).toBe(dataEnd);
  });

  it('asks the extents of a 2 GiB disk in one block status request', async () => {
    const MiB = 1024 * KiB;
    const small = randomBytes(4 * MiB);
    const client = new FakeClient(small, 4 * MiB, 'big', true, 2048 * MiB);
    const chunks = await collect(readNbdChunks(client as unknown as NbdClient, { chunkSize: 4 * MiB }));
    expect(chunks).toHaveLength(512);
    expect(chunks.filter((c) => c.kind === 'data')).toHaveLength(1);
    expect(client.blockStatusCalls).toBe(1);
  });

  it('primes the server with one read of a hole, its bytes dropped, before any other read', async () => {
    const MiB = 1024 * KiB;
    const small = randomBytes(4 * MiB);
    const client = new FakeClient(small, 4 * MiB, 'big', true, 2048 * MiB);
    const chunks = await collect(readNbdChunks(client as unknown as NbdClient, { chunkSize: 4 * MiB }));
    expect(chunks.filter((c) => c.kind === 'data').map((c) => c.kind === 'data' && c.bytes.equals(small))).toEqual([true]);
    expect(client.reads[0]).toEqual({ offset: 4 * MiB, length: DEFAULT_PRIME_BYTES, discard: true });
    expect(client.reads.slice(1).every((r) => r.discard === undefined && r.offset + r.length <= 4 * MiB)).toBe(true);
  });

  it('primes only where it costs no data: a hole that long, structured replies, allocation known; primeBytes 0 turns it off', async () => {
    const MiB = 1024 * KiB;
    const small = randomBytes(4 * MiB);
    const primes = async (client: FakeClient, options: { primeBytes?: number } = {}) => {
      await collect(readNbdChunks(client as unknown as NbdClient, { chunkSize: 4 * MiB, ...options }));
      return client.reads.filter((r) => r.discard).map(({ offset, length }) => ({ offset, length }));
    };
    // The hole (12 MiB) is shorter than the default prime, but holds a smaller one.
    expect(await primes(new FakeClient(small, 4 * MiB, 'short hole', true, 16 * MiB))).toEqual([]);
    expect(await primes(new FakeClient(small, 4 * MiB, 'smaller prime', true, 16 * MiB), { primeBytes: 8 * MiB })).toEqual([
      { offset: 4 * MiB, length: 8 * MiB },
    ]);
    expect(await primes(new FakeClient(small, 4 * MiB, 'off', true, 64 * MiB), { primeBytes: 0 })).toEqual([]);
    const padded = Buffer.concat([small, Buffer.alloc(60 * MiB)]);
    expect(await primes(new FakeClient(padded, 4 * MiB, 'no allocation context', false))).toEqual([]);
    const simple = new FakeClient(small, 4 * MiB, 'simple replies', true, 64 * MiB);
    (simple.info as { structuredReplies: boolean }).structuredReplies = false;
    expect(await primes(simple)).toEqual([]);
    expect(await codeOf(collect(readNbdChunks(simple as unknown as NbdClient, { primeBytes: -1 })))).toBe('VALIDATION_FAILED');
  });

  it('reads on when the prime read fails (what broke fails the reads themselves)', async () => {
    const MiB = 1024 * KiB;
    const small = randomBytes(4 * MiB);
    const client = new FakeClient(small, 4 * MiB, 'failing prime', true, 64 * MiB);
    client.failDiscard = true;
    const chunks = await collect(readNbdChunks(client as unknown as NbdClient, { chunkSize: 4 * MiB }));
    expect(client.reads[0]?.discard).toBe(true);
    expect(chunks.filter((c) => c.kind === 'data')).toHaveLength(1);
    expect(chunks).toHaveLength(16);
  });

  it('does not say the reads are done when the read stops early', async () => {
    const first = new FakeClient(disk, dataEnd, 'first', true);
    let called = false;
    for await (const chunk of readNbdChunks(first as unknown as NbdClient, { chunkSize: CHUNK, onReadsDone: () => (called = true) })) {
      if (chunk.index === 2) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(called).toBe(false);
  });

  it('refuses a connection that shows another export', async () => {
    const first = new FakeClient(disk, dataEnd, 'first', true);
    const other = new FakeClient(disk, dataEnd, 'other', false, disk.length - CHUNK);
    const code = await codeOf(
      collect(readNbdChunks(first as unknown as NbdClient, { chunkSize: CHUNK, connections: [other as unknown as NbdClient] })),
    );
    expect(code).toBe('VALIDATION_FAILED');
    expect(other.reads).toEqual([]);
  });
});
