/**
 * The SSH executor (ssh2): key authentication, the host key always verified against the pinned
 * key, a small per-hypervisor pool of kept-alive connections with a bounded number of channels
 * each ({@link SshConnectionPool}), streamed stdin/stdout with backpressure, timeouts and
 * AbortSignal ({@link startSshCommand}), and a dropped connection reported as
 * HYPERVISOR_UNREACHABLE. Commands are built by `shellCommand` (the one quoting function).
 * @module
 */
import { InstanceImagesError } from '../../src/errors';
import type { Executor } from '../../src/ports/executor';
import { parseHostKeyPin } from './host-key';
import { startSshCommand } from './ssh-command';
import { SshConnectionPool, type SshConnection } from './ssh-pool';

export type { SshConnection } from './ssh-pool';

/** Pool and timing settings of {@link createSshExecutor}. */
export interface SshExecutorOptions {
  /** Label for messages (default `ssh USER@HOST:PORT`). */
  label?: string;
  /** Connections kept to the host at most (default 2). */
  maxConnections?: number;
  /** Concurrent channels (commands) per connection (default 8; OpenSSH's MaxSessions is 10). */
  maxChannelsPerConnection?: number;
  /** Keepalive interval in ms (default 15 000). */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalives before the connection counts as dropped (default 3). */
  keepaliveCountMax?: number;
  /** Time allowed for connecting and authenticating, in ms (default 20 000). */
  readyTimeoutMs?: number;
  /** An unused connection is closed after this many ms (default 60 000). */
  idleTimeoutMs?: number;
}

/** An SSH executor; also reports how many connections it holds (for tests and metrics). */
export interface SshExecutor extends Executor {
  /** Open (or opening) connections right now. */
  readonly connectionCount: number;
}

function positiveInteger(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new InstanceImagesError('VALIDATION_FAILED', `${field} must be a positive integer`, { fields: [{ path: field, message: 'must be a positive integer' }] });
  }
  return value;
}

/**
 * Creates an executor that runs commands on a host over SSH. Nothing connects until the first
 * command. The private key and passphrase never appear in labels, messages or errors.
 * @throws VALIDATION_FAILED when the host key pin or a setting is not valid.
 */
export function createSshExecutor(connection: SshConnection, options: SshExecutorOptions = {}): SshExecutor {
  const port = connection.port ?? 22;
  const label = options.label ?? `ssh ${connection.username}@${connection.host}:${port}`;
  const pin = parseHostKeyPin(connection.hostKey);
  const pool = new SshConnectionPool(connection, pin, {
    label,
    port,
    maxConnections: positiveInteger(options.maxConnections, 2, 'maxConnections'),
    maxChannels: positiveInteger(options.maxChannelsPerConnection, 8, 'maxChannelsPerConnection'),
    keepaliveIntervalMs: options.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: options.keepaliveCountMax ?? 3,
    readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
  });

  return {
    label,
    get connectionCount() {
      return pool.size;
    },
    async run(argv, runOptions = {}) {
      const running = await startSshCommand(pool, label, argv, runOptions, runOptions.stdout ?? 'collect');
      return running.done;
    },
    stream(argv, streamOptions = {}) {
      return startSshCommand(pool, label, argv, streamOptions, 'stream');
    },
    async close() {
      pool.closeAll(pool.unreachable('the executor was closed'));
    },
  };
}
