/**
 * Opening an NBD connection: settings checked before anything is sent, the negotiation under a
 * timeout and an AbortSignal, then a {@link NbdConnection} in the transmission phase.
 * @module
 */
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { InstanceImagesError } from '../../src/errors';
import { ByteReader } from './byte-reader';
import { NbdConnection } from './client';
import { negotiate } from './negotiate';
import { BASE_ALLOCATION, type NbdClient, type NbdConnectOptions } from './types';

function positiveInteger(value: number | undefined, fallback: number, field: string, zeroAllowed = false): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < (zeroAllowed ? 0 : 1)) {
    const message = zeroAllowed ? 'must be a whole number' : 'must be a positive integer';
    throw new InstanceImagesError('VALIDATION_FAILED', `NBD client: ${field} ${message}`, { fields: [{ path: field, message }] });
  }
  return value;
}

/** The numeric settings of a connection, checked before anything is sent. */
export interface Settings {
  maxInFlight: number;
  maxReadBytes: number;
  maxWriteBytes: number;
  maxExtents: number;
  handshakeTimeoutMs: number;
  requestTimeoutMs: number;
}

function resolveSettings(options: NbdConnectOptions): Settings {
  return {
    maxInFlight: positiveInteger(options.maxInFlight, 16, 'maxInFlight'),
    maxReadBytes: positiveInteger(options.maxReadBytes, 32 * 1024 * 1024, 'maxReadBytes'),
    maxWriteBytes: positiveInteger(options.maxWriteBytes, 32 * 1024 * 1024, 'maxWriteBytes'),
    maxExtents: positiveInteger(options.maxExtentsPerReply, 131_072, 'maxExtentsPerReply'),
    handshakeTimeoutMs: positiveInteger(options.handshakeTimeoutMs, 30_000, 'handshakeTimeoutMs'),
    requestTimeoutMs: positiveInteger(options.requestTimeoutMs, 120_000, 'requestTimeoutMs', true),
  };
}

/**
 * Negotiates an NBD export on an open stream and returns a client in the transmission phase. The
 * stream belongs to the client from here on: it is destroyed on any failure and by close().
 * @throws COMMAND_FAILED when the peer is not a fixed-newstyle NBD server, breaks the protocol or
 * refuses the export (e.g. `NBD_REP_ERR_UNKNOWN` for an unknown name); HYPERVISOR_UNREACHABLE when
 * the connection ends during the negotiation; TIMEOUT; CANCELLED; VALIDATION_FAILED for bad options.
 */
export async function connectNbd(stream: Duplex, options: NbdConnectOptions = {}): Promise<NbdClient> {
  const exportName = options.exportName ?? '';
  const label = options.label ?? `NBD export ${JSON.stringify(exportName)}`;
  const queries = options.metaContexts ?? [BASE_ALLOCATION];
  let settings: Settings;
  try {
    settings = resolveSettings(options);
  } catch (error) {
    stream.destroy();
    throw error;
  }
  let client: NbdConnection | null = null;
  let streamError: unknown;
  let ended: 'cancelled' | 'timeout' | null = null;
  stream.on('error', (error) => (streamError ??= error));
  const reader = new ByteReader(stream, () =>
    client
      ? client.closedError(streamError)
      : new InstanceImagesError(
          'HYPERVISOR_UNREACHABLE',
          `${label}: the connection closed during the NBD handshake`,
          streamError === undefined ? {} : { cause: streamError },
        ),
  );
  const stop = (why: 'cancelled' | 'timeout') => {
    ended ??= why;
    stream.destroy();
  };
  const onAbort = () => stop('cancelled');
  const timer = setTimeout(() => stop('timeout'), settings.handshakeTimeoutMs);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (options.signal?.aborted) stop('cancelled');
    const info = await negotiate(reader, stream, exportName, queries, label);
    client = new NbdConnection(stream, reader, info, label, settings);
    return client;
  } catch (error) {
    stream.destroy();
    reader.discardRest();
    if (ended === 'cancelled') throw new InstanceImagesError('CANCELLED', `${label}: the NBD handshake was cancelled`);
    if (ended === 'timeout')
      throw new InstanceImagesError('TIMEOUT', `${label}: no NBD handshake within ${settings.handshakeTimeoutMs} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Connects to an NBD server's unix socket on this machine and negotiates the export.
 * @throws HYPERVISOR_UNREACHABLE when the socket cannot be connected; otherwise as {@link connectNbd}.
 */
export async function connectNbdUnix(socketPath: string, options: NbdConnectOptions = {}): Promise<NbdClient> {
  const socket = netConnect({ path: socketPath });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new InstanceImagesError(
          'HYPERVISOR_UNREACHABLE',
          `cannot connect to the NBD socket ${socketPath} (${error.code ?? error.message})`,
          { cause: error },
        ),
      ),
    );
  });
  return connectNbd(socket, { label: `NBD export ${JSON.stringify(options.exportName ?? '')} at ${socketPath}`, ...options });
}
