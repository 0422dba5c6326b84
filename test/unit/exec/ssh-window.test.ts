import { createRequire } from 'node:module';
import type { ClientChannel } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { SSH_DEFAULT_RECEIVE_WINDOW, widenReceiveWindow } from '../../../drivers/exec/ssh-window';
import { expectRefusedOptions } from './unconnected';

const MiB = 2 ** 20;
// ssh2's own channel class, so that a change of the fields the widening uses fails here.
const { Channel, MAX_WINDOW } = createRequire(import.meta.url)('ssh2/lib/Channel.js') as {
  Channel: new (client: unknown, info: unknown) => ClientChannel;
  MAX_WINDOW: number;
};

/** A real ssh2 channel on a fake client that records the window adjustments sent. */
function channel() {
  const adjustments: Array<[number, number]> = [];
  const client = { _protocol: { channelWindowAdjust: (id: number, amount: number) => adjustments.push([id, amount]) } };
  const ch = new Channel(client, {
    type: 'session',
    incoming: { id: 0, window: MAX_WINDOW, packetSize: 32 * 1024, state: 'open' },
    outgoing: { id: 7, window: MAX_WINDOW, packetSize: 32 * 1024, state: 'open' },
  });
  const internals = ch as unknown as { incoming: { window: number } };
  /** What ssh2 does with an incoming data packet (lib/client.js CHANNEL_DATA). */
  const receive = (bytes: number) => {
    internals.incoming.window -= bytes;
    return ch.push(Buffer.alloc(bytes));
  };
  return { ch, adjustments, window: () => internals.incoming.window, receive };
}

describe('widenReceiveWindow (ssh2 channel flow control)', () => {
  it('grants the sender the wider window at once, and tops it up as data is taken', async () => {
    const { ch, adjustments, window, receive } = channel();
    expect(widenReceiveWindow(ch, 16 * MiB)).toBe(true);
    expect(adjustments).toEqual([[7, 16 * MiB - MAX_WINDOW]]);
    expect(window()).toBe(16 * MiB);
    ch.on('data', () => undefined); // a flowing consumer: every push is accepted
    await new Promise(setImmediate);
    receive(4 * MiB);
    expect(adjustments).toHaveLength(1); // still more than half open
    receive(5 * MiB);
    expect(adjustments.at(-1)).toEqual([7, 9 * MiB]);
    expect(window()).toBe(16 * MiB);
  });

  it('grants nothing more while the consumer does not read, and resumes when it reads', () => {
    const { ch, adjustments, window, receive } = channel();
    widenReceiveWindow(ch, 16 * MiB);
    // Nobody reads: the readable side fills past its high-water mark and refuses.
    let accepted = true;
    for (let i = 0; i < 12 && accepted; i++) accepted = receive(MiB);
    for (let i = 0; i < 8; i++) receive(MiB);
    expect(adjustments).toHaveLength(1);
    expect(window()).toBeLessThanOrEqual(8 * MiB);
    // The consumer reads: the window opens again.
    while (ch.read() !== null);
    expect(adjustments.length).toBeGreaterThan(1);
    expect(window()).toBe(16 * MiB);
  });

  it('sends nothing once the channel is closed', async () => {
    const { ch, adjustments, receive } = channel();
    widenReceiveWindow(ch, 16 * MiB);
    (ch as unknown as { outgoing: { state: string } }).outgoing.state = 'closed';
    ch.on('data', () => undefined);
    await new Promise(setImmediate);
    receive(12 * MiB);
    expect(adjustments).toHaveLength(1);
  });

  it("keeps ssh2's window when the channel does not have ssh2's fields", () => {
    const stranger = { push: () => true, _read: () => undefined } as unknown as ClientChannel;
    expect(widenReceiveWindow(stranger, 16 * MiB)).toBe(false);
  });

  it('is 4 MiB by default and validated as an executor option', () => {
    expect(SSH_DEFAULT_RECEIVE_WINDOW).toBe(4 * MiB);
    expectRefusedOptions({ receiveWindowBytes: 0 });
  });
});
