import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteReader } from '../../../drivers/nbd/byte-reader';

const closed = () => new Error('closed');
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ByteReader', () => {
  it('hands out exact lengths across the pieces the stream emitted, without joining what fits in one', async () => {
    const stream = new PassThrough();
    const reader = new ByteReader(stream, closed);
    const data = randomBytes(10_000);
    stream.write(data.subarray(0, 3000));
    stream.write(data.subarray(3000, 7000));
    stream.write(data.subarray(7000));
    const a = await reader.read(2000);
    const b = await reader.read(2000); // spans two pieces: a copy
    const sunk = Buffer.alloc(5000);
    await reader.consume(5000, (piece, at) => sunk.set(piece, at));
    const rest = await reader.read(1000);
    expect(Buffer.concat([a, b, sunk, rest]).equals(data)).toBe(true);
    // A read inside one emitted piece is a view of it; one across two is a copy.
    expect(a.buffer).toBe(data.buffer);
    expect(b.buffer).not.toBe(data.buffer);
    expect(reader.buffered).toBe(0);
  });

  it('pauses the stream once it holds HOLD_BYTES nobody asked for, and resumes it as reads take them', async () => {
    const stream = new PassThrough({ highWaterMark: 64 * 1024 });
    const reader = new ByteReader(stream, closed);
    const piece = 64 * 1024;
    const total = 4 * ByteReader.HOLD_BYTES;
    const data = randomBytes(total);
    let offered = 0;
    const offer = () => {
      while (offered < total && stream.write(data.subarray(offered, offered + piece))) offered += piece;
      if (offered < total) stream.once('drain', () => ((offered += piece), offer()));
    };
    offer();
    for (let i = 0; i < 10; i++) await tick();
    expect(stream.isPaused()).toBe(true);
    expect(reader.buffered).toBeGreaterThanOrEqual(ByteReader.HOLD_BYTES);
    expect(reader.buffered).toBeLessThan(ByteReader.HOLD_BYTES + piece);
    expect(offered).toBeLessThan(total);
    const got = Buffer.alloc(total);
    await reader.consume(total, (p, at) => got.set(p, at));
    expect(got.equals(data)).toBe(true);
  });

  it('keeps the bytes it holds when the stream ends, then fails reads with the closed error', async () => {
    const stream = new PassThrough();
    const reader = new ByteReader(stream, closed);
    stream.end(Buffer.from('abcdef'));
    await tick();
    expect((await reader.read(4)).toString()).toBe('abcd');
    expect((await reader.read(2)).toString()).toBe('ef');
    await expect(reader.read(1)).rejects.toThrow('closed');
  });

  it('reads a stream that was paused before it was given', async () => {
    const stream = new PassThrough();
    stream.pause();
    stream.write('hello');
    const reader = new ByteReader(stream, closed);
    expect((await reader.read(5)).toString()).toBe('hello');
  });

  it('drops what it holds and lets the stream drain on discardRest', async () => {
    const stream = new PassThrough();
    const reader = new ByteReader(stream, closed);
    stream.write(Buffer.alloc(1000));
    await tick();
    const waiting = reader.read(5000);
    reader.discardRest();
    await expect(waiting).rejects.toThrow('closed');
    let ended = false;
    stream.on('end', () => (ended = true));
    stream.end(Buffer.alloc(10));
    await tick();
    await tick();
    expect(ended).toBe(true);
  });
});
