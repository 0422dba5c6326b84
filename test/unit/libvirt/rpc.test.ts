import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { encodeCall, LibvirtRpc, LibvirtRpcError, Procedure, REMOTE_PROGRAM } from '../../../drivers/hypervisor/libvirt/rpc/client';
import { XdrError, XdrReader, XdrWriter } from '../../../drivers/hypervisor/libvirt/rpc/xdr';

describe('XDR', () => {
  it('writes integers, padded strings, optional strings and fixed opaque data as RFC 4506 says', () => {
    const bytes = new XdrWriter()
      .int(-2)
      .uint(0xfffffffe)
      .string('abcde')
      .optionalString(null)
      .optionalString('')
      .fixedOpaque(Buffer.from([1, 2, 3]), 3)
      .bytes();
    expect(bytes.toString('hex')).toBe(
      ['fffffffe', 'fffffffe', '00000005', '6162636465000000', '00000000', '00000001', '00000000', '01020300'].join(''),
    );
  });

  it('reads back what it wrote, multi-byte text included', () => {
    const uuid = Buffer.alloc(16, 7);
    const reader = new XdrReader(
      new XdrWriter()
        .string("dom'$(x)\n☃")
        .fixedOpaque(uuid, 16)
        .int(-1)
        .optionalString('m')
        .optionalString(null)
        .strings(['a', 'bc'])
        .bytes(),
    );
    expect(reader.string()).toBe("dom'$(x)\n☃");
    expect(reader.fixedOpaque(16).equals(uuid)).toBe(true);
    expect(reader.int()).toBe(-1);
    expect(reader.optionalString()).toBe('m');
    expect(reader.optionalString()).toBeNull();
    expect(reader.uint()).toBe(2);
    expect([reader.string(), reader.string()]).toEqual(['a', 'bc']);
    expect(reader.remaining).toBe(0);
  });

  it('never reads past the end: a length that does not fit, a string over its limit or a bad boolean is an error', () => {
    expect(() => new XdrReader(Buffer.from('0000000a6162', 'hex')).string()).toThrow(XdrError);
    expect(() => new XdrReader(Buffer.from('00000005616263646500000000', 'hex')).string(4)).toThrow(/over the limit/);
    expect(() => new XdrReader(Buffer.from('00000002', 'hex')).bool()).toThrow(XdrError);
    expect(() => new XdrReader(Buffer.from('0000', 'hex')).int()).toThrow(XdrError);
    expect(() => new XdrWriter().fixedOpaque(Buffer.alloc(3), 16)).toThrow(XdrError);
  });
});

/** The client's stream and the daemon's end of it, in memory: what the client writes arrives at `sent`. */
function pair(): { client: Duplex; daemon: PassThrough; sent: Buffer[] } {
  const daemon = new PassThrough();
  const sent: Buffer[] = [];
  const client = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      sent.push(chunk);
      callback();
    },
  });
  daemon.on('data', (chunk: Buffer) => client.push(chunk));
  daemon.on('end', () => client.push(null));
  return { client, daemon, sent };
}

/** A reply message: header (type 1) and body. */
function reply(serial: number, status: number, body: Buffer, procedure = 0): Buffer {
  const header = Buffer.alloc(28);
  header.writeUInt32BE(28 + body.length, 0);
  header.writeUInt32BE(REMOTE_PROGRAM, 4);
  header.writeUInt32BE(1, 8);
  header.writeInt32BE(procedure, 12);
  header.writeInt32BE(1, 16);
  header.writeUInt32BE(serial, 20);
  header.writeInt32BE(status, 24);
  return Buffer.concat([header, body]);
}

const domainBody = (name: string) => new XdrWriter().string(name).fixedOpaque(Buffer.alloc(16, 1), 16).int(3).bytes();

describe('libvirt RPC client', () => {
  it('frames a call: length, program, version 1, procedure, type call, serial, status ok, then the body', () => {
    const call = encodeCall(REMOTE_PROGRAM, Procedure.domainLookupByName, 7, new XdrWriter().string('vm').bytes());
    expect(call.toString('hex')).toBe(
      ['00000024', '20008086', '00000001', '00000017', '00000000', '00000007', '00000000', '00000002', '766d0000'].join(''),
    );
  });

  it('matches replies to calls by serial, across split and merged frames, and skips events', async () => {
    const { client, daemon, sent } = pair();
    const rpc = new LibvirtRpc(client, 'test');
    const first = rpc.lookupDomain('one');
    const second = rpc.lookupDomain('two');
    expect(sent).toHaveLength(2);
    expect(sent[1]?.readUInt32BE(20)).toBe(2);
    const event = reply(0, 0, Buffer.alloc(8));
    event.writeInt32BE(2, 16); // a MESSAGE (event): not a reply
    const both = Buffer.concat([event, reply(2, 0, domainBody('two')), reply(1, 0, domainBody('one'))]);
    // Byte by byte for the first 40 bytes, then the rest at once.
    for (let i = 0; i < 40; i++) daemon.write(both.subarray(i, i + 1));
    daemon.write(both.subarray(40));
    await expect(second).resolves.toMatchObject({ name: 'two', id: 3 });
    await expect(first).resolves.toMatchObject({ name: 'one', id: 3 });
  });

  it("rejects a call with the daemon's error: its number, domain and message", async () => {
    const { client, daemon } = pair();
    const rpc = new LibvirtRpc(client, 'test');
    const call = rpc.lookupDomain('gone');
    const error = new XdrWriter()
      .int(42)
      .int(10)
      .optionalString("Domain not found: no domain with matching name 'gone'")
      .int(2)
      .uint(0)
      .bytes();
    daemon.write(reply(1, 1, Buffer.concat([error, Buffer.alloc(36)])));
    await expect(call).rejects.toMatchObject({
      name: 'LibvirtRpcError',
      code: 42,
      domain: 10,
      message: expect.stringContaining('no domain with matching name'),
    });
  });

  it('a message length the daemon would never send, or a closed stream, fails every pending call (code 0) and later ones', async () => {
    const { client, daemon } = pair();
    const rpc = new LibvirtRpc(client, 'test');
    const call = rpc.jobType({ name: 'vm', uuid: Buffer.alloc(16), id: 1 });
    daemon.write(Buffer.from('00000004', 'hex'));
    await expect(call).rejects.toMatchObject({ code: 0 });
    expect(rpc.closed).toBe(true);
    await expect(rpc.lookupDomain('x')).rejects.toBeInstanceOf(LibvirtRpcError);

    const other = pair();
    const second = new LibvirtRpc(other.client, 'test');
    const pending = second.lookupDomain('y');
    other.daemon.end();
    await expect(pending).rejects.toMatchObject({ code: 0, message: expect.stringContaining('closed') });
  });

  it('open: authenticates with polkit when the daemon lists only polkit, then opens the URI', async () => {
    const { client, daemon, sent } = pair();
    const opening = LibvirtRpc.open(client, 'qemu:///system', 'test');
    const procedureOf = (i: number) => sent[i]?.readInt32BE(12);
    await new Promise((resolve) => setImmediate(resolve));
    expect(procedureOf(0)).toBe(Procedure.authList);
    daemon.write(reply(1, 0, new XdrWriter().uint(1).int(2).bytes()));
    await new Promise((resolve) => setImmediate(resolve));
    expect(procedureOf(1)).toBe(Procedure.authPolkit);
    daemon.write(reply(2, 0, new XdrWriter().int(1).bytes()));
    await new Promise((resolve) => setImmediate(resolve));
    expect(procedureOf(2)).toBe(Procedure.connectOpen);
    const body = new XdrReader(sent[2] as Buffer, 28);
    expect(body.optionalString()).toBe('qemu:///system');
    expect(body.uint()).toBe(0);
    daemon.write(reply(3, 0, Buffer.alloc(0)));
    await expect(opening).resolves.toBeInstanceOf(LibvirtRpc);
  });

  it('open: a daemon that asks for SASL only is refused and the stream destroyed', async () => {
    const { client, daemon } = pair();
    const opening = LibvirtRpc.open(client, 'qemu:///system', 'test');
    await new Promise((resolve) => setImmediate(resolve));
    daemon.write(reply(1, 0, new XdrWriter().uint(1).int(1).bytes()));
    await expect(opening).rejects.toThrow(/SASL/);
    expect(client.destroyed).toBe(true);
  });
});
