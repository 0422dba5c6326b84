import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteReader } from '../../../drivers/nbd/byte-reader';
import { Coverage } from '../../../drivers/nbd/coverage';
import {
  decodeBlockStatus,
  decodeErrorChunk,
  decodeGreeting,
  decodeInfo,
  decodeMetaContext,
  decodeOptionReplyHeader,
  decodeSimpleReply,
  decodeStructuredHeader,
  encodeClientFlags,
  encodeGoPayload,
  encodeMetaContextPayload,
  encodeOption,
  encodeRequest,
  nbdErrnoName,
  optionErrorName,
} from '../../../drivers/nbd/protocol';
import { isInstanceImagesError } from '../../../src/errors';

const hex = (b: Buffer) => b.toString('hex');
const L = 'test';

function codeOfSync(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return isInstanceImagesError(error) ? error.code : `untyped: ${String(error)}`;
  }
  return 'returned';
}

describe('NBD frames', () => {
  it('encodes a request header: magic, flags, type, handle, offset, length (28 bytes, big-endian)', () => {
    const frame = encodeRequest({ flags: 0x0004, type: 7, handle: 0x0102030405060708n, offset: 2 ** 40 + 5, length: 0x00400000 });
    expect(hex(frame)).toBe('25609513' + '0004' + '0007' + '0102030405060708' + '0000010000000005' + '00400000');
  });

  it('encodes options with IHAVEOPT, the option number and the payload length', () => {
    expect(hex(encodeOption(8))).toBe('49484156454f5054' + '00000008' + '00000000');
    const go = encodeGoPayload('vda', [3], L);
    expect(hex(go)).toBe('00000003' + hex(Buffer.from('vda')) + '0001' + '0003');
    expect(hex(encodeOption(7, go)).slice(0, 32)).toBe('49484156454f5054' + '00000007' + '0000000b');
    const meta = encodeMetaContextPayload('vda', ['base:allocation', 'qemu:dirty-bitmap:b0'], L);
    expect(hex(meta)).toBe(
      '00000003' +
        hex(Buffer.from('vda')) +
        '00000002' +
        '0000000f' +
        hex(Buffer.from('base:allocation')) +
        '00000014' +
        hex(Buffer.from('qemu:dirty-bitmap:b0')),
    );
  });

  it('refuses export and context names the protocol cannot carry', () => {
    expect(codeOfSync(() => encodeGoPayload('x'.repeat(4097), [], L))).toBe('VALIDATION_FAILED');
    expect(codeOfSync(() => encodeMetaContextPayload('vda', ['a\0b'], L))).toBe('VALIDATION_FAILED');
  });

  it('decodes the fixed newstyle greeting and refuses anything else', () => {
    const greeting = (second: string, flags: string) => Buffer.from(hex(Buffer.from('NBDMAGIC')) + second + flags, 'hex');
    expect(decodeGreeting(greeting('49484156454f5054', '0003'), L)).toEqual({ handshakeFlags: 3 });
    expect(codeOfSync(() => decodeGreeting(greeting('49484156454f5054', '0002'), L))).toBe('COMMAND_FAILED'); // not fixed newstyle
    expect(codeOfSync(() => decodeGreeting(greeting('0000420281861253', '0001'), L))).toBe('COMMAND_FAILED'); // oldstyle
    expect(codeOfSync(() => decodeGreeting(Buffer.alloc(18), L))).toBe('COMMAND_FAILED');
    expect(hex(encodeClientFlags(3))).toBe('00000003');
    expect(hex(encodeClientFlags(1))).toBe('00000001');
  });

  it('decodes option reply headers and checks their magic', () => {
    const header = Buffer.from('0003e889045565a9' + '0000000a' + '00000004' + '00000013', 'hex');
    expect(decodeOptionReplyHeader(header, L)).toEqual({ option: 10, type: 4, length: 19 });
    header[0] = 1;
    expect(codeOfSync(() => decodeOptionReplyHeader(header, L))).toBe('COMMAND_FAILED');
    expect(optionErrorName(0x80000006)).toBe('NBD_REP_ERR_UNKNOWN');
    expect(optionErrorName(0x80000063)).toBe('option error 99');
  });

  it('decodes export and block size infos with the sizes the protocol fixes', () => {
    expect(decodeInfo(Buffer.from('0000' + '0000000004000000' + '048f', 'hex'), L)).toEqual({
      type: 'export',
      size: 64 * 1024 * 1024,
      transmissionFlags: 0x048f,
    });
    expect(decodeInfo(Buffer.from('0003' + '00000200' + '00001000' + '02000000', 'hex'), L)).toEqual({
      type: 'block-size',
      minimum: 512,
      preferred: 4096,
      maximum: 32 * 1024 * 1024,
    });
    expect(decodeInfo(Buffer.from('0001' + '6162', 'hex'), L)).toEqual({ type: 'other', info: 1 });
    expect(codeOfSync(() => decodeInfo(Buffer.from('0000' + '00', 'hex'), L))).toBe('COMMAND_FAILED');
    expect(codeOfSync(() => decodeInfo(Buffer.from('0000' + 'ffffffffffffffff' + '0001', 'hex'), L))).toBe('COMMAND_FAILED'); // beyond 2^53
    expect(codeOfSync(() => decodeInfo(Buffer.from('0003' + '00000300' + '00001000' + '02000000', 'hex'), L))).toBe('COMMAND_FAILED'); // minimum not a power of two
    expect(codeOfSync(() => decodeInfo(Buffer.from('0003' + '00001000' + '00000200' + '02000000', 'hex'), L))).toBe('COMMAND_FAILED'); // preferred < minimum
  });

  it('decodes meta context replies', () => {
    expect(decodeMetaContext(Buffer.concat([Buffer.from('00000002', 'hex'), Buffer.from('base:allocation')]), L)).toEqual({
      id: 2,
      name: 'base:allocation',
    });
    expect(codeOfSync(() => decodeMetaContext(Buffer.from('00000002', 'hex'), L))).toBe('COMMAND_FAILED');
  });

  it('decodes simple replies and structured chunk headers', () => {
    expect(decodeSimpleReply(Buffer.from('00000005' + '0000000000000009', 'hex'))).toEqual({ error: 5, handle: 9n });
    expect(decodeStructuredHeader(Buffer.from('0001' + '0002' + '000000000000000a' + '0000000c', 'hex'))).toEqual({
      flags: 1,
      type: 2,
      handle: 10n,
      length: 12,
    });
  });

  it('decodes block status and refuses descriptors beyond the request, of length 0, or a ragged payload', () => {
    const payload = Buffer.from('00000001' + '00100000' + '00000003' + '00300000' + '00000000', 'hex');
    expect(decodeBlockStatus(payload, 4 * 1024 * 1024, L)).toEqual({
      contextId: 1,
      descriptors: [
        { length: 1024 * 1024, flags: 3 },
        { length: 3 * 1024 * 1024, flags: 0 },
      ],
    });
    expect(codeOfSync(() => decodeBlockStatus(payload, 4 * 1024 * 1024 - 1, L))).toBe('COMMAND_FAILED');
    expect(codeOfSync(() => decodeBlockStatus(Buffer.from('00000001' + '00000000' + '00000000', 'hex'), 100, L))).toBe('COMMAND_FAILED');
    expect(codeOfSync(() => decodeBlockStatus(Buffer.from('00000001' + '00000010' + '000000', 'hex'), 100, L))).toBe('COMMAND_FAILED');
  });

  it('decodes error chunks, with and without an offset, and refuses a message longer than the chunk', () => {
    const message = Buffer.from('bad');
    expect(decodeErrorChunk(0x8001, Buffer.concat([Buffer.from('00000005' + '0003', 'hex'), message]), L)).toEqual({
      errno: 5,
      message: 'bad',
    });
    expect(
      decodeErrorChunk(
        0x8002,
        Buffer.concat([Buffer.from('00000016' + '0003', 'hex'), message, Buffer.from('0000000000001000', 'hex')]),
        L,
      ),
    ).toEqual({ errno: 22, message: 'bad', offset: 4096 });
    expect(codeOfSync(() => decodeErrorChunk(0x8001, Buffer.from('00000005' + '0010' + '6162', 'hex'), L))).toBe('COMMAND_FAILED');
    expect(nbdErrnoName(5)).toBe('EIO');
    expect(nbdErrnoName(999)).toBe('error 999');
  });
});

describe('read coverage', () => {
  it('merges chunks in order into one range and completes', () => {
    const coverage = new Coverage(300);
    expect(coverage.add(0, 100)).toBeNull();
    expect(coverage.add(100, 100)).toBeNull();
    expect(coverage.complete).toBe(false);
    expect(coverage.add(200, 100)).toBeNull();
    expect(coverage.complete).toBe(true);
  });

  it('accepts chunks in any order, refuses overlaps and bytes outside the request', () => {
    const coverage = new Coverage(300);
    expect(coverage.add(200, 100)).toBeNull();
    expect(coverage.add(0, 50)).toBeNull();
    expect(coverage.add(250, 10)).toMatch(/overlap/);
    expect(coverage.add(40, 20)).toMatch(/overlap/);
    expect(coverage.add(290, 20)).toMatch(/outside/);
    expect(coverage.add(50, 150)).toBeNull();
    expect(coverage.complete).toBe(true);
  });

  it('bounds the number of separate pieces', () => {
    const coverage = new Coverage(100, 3);
    for (const at of [0, 20, 40]) expect(coverage.add(at, 1)).toBeNull();
    expect(coverage.add(60, 1)).toMatch(/more than 3/);
    expect(coverage.add(1, 1)).toBeNull(); // joins a piece
  });
});

describe('byte reader', () => {
  it('reads exact lengths across received chunks and hands large payloads out piece by piece', async () => {
    const stream = new PassThrough();
    const reader = new ByteReader(stream, () => new Error('closed'));
    stream.write(Buffer.from('abc'));
    stream.write(Buffer.from('defgh'));
    expect((await reader.read(5)).toString()).toBe('abcde');
    const pieces: string[] = [];
    const consumed = reader.consume(6, (piece, at) => pieces.push(`${at}:${piece.toString()}`));
    stream.write(Buffer.from('ijk'));
    await consumed;
    expect(pieces.join('')).toBe('0:fgh3:ijk');
  });

  it('rejects a read with the closed error when the stream ends short', async () => {
    const stream = new PassThrough();
    const reader = new ByteReader(stream, () => new Error('closed early'));
    stream.end(Buffer.from('ab'));
    await expect(reader.read(3)).rejects.toThrow('closed early');
  });
});
