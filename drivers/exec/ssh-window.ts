/**
 * A wider receive window for an ssh2 channel.
 *
 * ssh2 1.17 grants the sender a fixed 2 MiB window per channel (`MAX_WINDOW` in its
 * `lib/Channel.js`, no option) and tops it up only once half of it is used. On a bulk read
 * (streaming a captured image out of the hypervisor) sshd then spends much of its time waiting
 * for a window adjustment: measured on the test machine, `cat` of 1 GiB through a plain ssh2
 * channel took 8–10 s, with a 16 MiB window 5–6 s (the OpenSSH client 2–3 s), while the Node
 * process stayed mostly idle — the limit is the flow control, not the cipher.
 *
 * {@link widenReceiveWindow} keeps the channel's window at up to `windowBytes`, granting more only
 * while the channel's readable side accepts data (its `push` succeeds or its consumer asks to
 * read), so a paused consumer still stops the sender: at most `windowBytes` plus the readable
 * side's buffer (2 MiB) are held per channel. It uses ssh2's channel fields (`incoming.window`,
 * `outgoing.id`, the protocol's `channelWindowAdjust`); when they are not there (another ssh2
 * version), the channel keeps ssh2's own window.
 *
 * Why 4 MiB and not more: OpenSSH's sshd (9.2 measured) holds what it has read from the command
 * and not yet sent in a buffer that grows by reallocation (a new allocation, a copy and a clear of
 * the old one per read of 16 KiB), up to the window when the reader is the slower side — as it is
 * when a capture streams into S3. The first time a connection's sshd grows that buffer the cost is
 * quadratic in the window: 1 GiB read at 150 MiB/s over a new connection took 30 s with 29 s of
 * sshd CPU at 16 MiB (6.9 s at 4 MiB, sshd 1.2–1.8 s), 5–6 s of sshd CPU at 8 MiB; at 2 MiB the
 * same read took 9–10 s (flow control). At 4 MiB no spin was seen; a reader as fast as the channel
 * (no consumer behind it) took 1.7–5.7 s per GiB against 1.8–2.2 s at 16 MiB once a connection's
 * first transfer was over, the one case where the larger window was faster.
 * @module
 */
import type { ClientChannel } from 'ssh2';

/** The receive window the SSH executor keeps per channel by default: 4 MiB (see the module comment). */
export const SSH_DEFAULT_RECEIVE_WINDOW = 4 * 1024 * 1024;

/** The ssh2 channel fields this uses. */
interface ChannelInternals {
  incoming?: { window?: unknown };
  outgoing?: { id?: unknown; state?: unknown };
  _client?: { _protocol?: { channelWindowAdjust?: unknown } };
  push: (chunk: unknown, encoding?: BufferEncoding) => boolean;
  _read: (size: number) => void;
}

/**
 * Keeps the channel's receive window at up to `windowBytes` (see the module comment). Returns
 * whether it could (false: the channel keeps ssh2's 2 MiB window). A window of at most 2 MiB
 * changes nothing.
 */
export function widenReceiveWindow(channel: ClientChannel, windowBytes: number): boolean {
  const internals = channel as unknown as ChannelInternals;
  const incoming = internals.incoming;
  const outgoing = internals.outgoing;
  const protocol = internals._client?._protocol;
  if (
    typeof incoming?.window !== 'number' ||
    typeof outgoing?.id !== 'number' ||
    typeof protocol?.channelWindowAdjust !== 'function' ||
    typeof internals.push !== 'function' ||
    typeof internals._read !== 'function'
  )
    return false;
  const adjust = protocol.channelWindowAdjust as (id: number, amount: number) => void;
  const window = incoming as { window: number };
  const id = outgoing.id;
  const topUp = () => {
    if (outgoing.state === 'closed' || window.window > windowBytes / 2) return;
    const amount = windowBytes - window.window;
    if (amount <= 0) return;
    window.window += amount;
    adjust.call(protocol, id, amount);
  };
  const push = internals.push;
  internals.push = function (chunk, encoding) {
    const accepted = push.call(this, chunk, encoding);
    if (accepted && chunk !== null) topUp();
    return accepted;
  };
  const read = internals._read;
  internals._read = function (size) {
    read.call(this, size);
    topUp();
  };
  topUp();
  return true;
}
