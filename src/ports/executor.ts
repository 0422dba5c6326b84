/**
 * Command executors: run an argv on a hypervisor (locally or over SSH). Arguments are never
 * interpreted by a shell on the local side; over SSH they are quoted by one audited function.
 * @module
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import type { HostHypervisor } from './host-directory';

/** Options of {@link Executor.run}. */
export interface ExecOptions {
  /** Bytes to write to the command's stdin (a stream is piped, with backpressure). */
  stdin?: Readable | Buffer | string;
  /** Where stdout goes; when given, {@link ExecResult.stdout} is empty. */
  stdout?: Writable;
  /** Aborts the command (the remote process is killed); the call then rejects with CANCELLED. */
  signal?: AbortSignal;
  /** Kills the command after this many milliseconds; the call then rejects with TIMEOUT. */
  timeoutMs?: number;
  /** Maximum stdout/stderr bytes kept in memory (default 16 MiB); more is discarded. */
  maxBuffer?: number;
}

/** The outcome of a command that ran to its end (any exit code). */
export interface ExecResult {
  /** Exit code; `null` when killed by a signal. */
  exitCode: number | null;
  /** Captured stdout (utf8), unless piped elsewhere. */
  stdout: string;
  /** Captured stderr (utf8). */
  stderr: string;
}

/** A running command with streamed stdout (for bulk bytes: `cat FILE`). */
export interface ExecStream {
  /** The command's stdout. */
  stdout: Readable;
  /** Resolves when the command ends. */
  done: Promise<ExecResult>;
  /** Kills the command. */
  kill(): void;
}

/** Runs commands on one host. */
export interface Executor {
  /** A short label for messages (`local`, `ssh root@host:22`); never contains secrets. */
  readonly label: string;
  /**
   * Runs `argv` (argv[0] is the program) to its end.
   * @throws HYPERVISOR_UNREACHABLE when the host cannot be reached or the connection drops;
   *   HOST_KEY_MISMATCH; CANCELLED on abort; TIMEOUT. A non-zero exit does not throw.
   */
  run(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Starts `argv` and streams its stdout. Same errors as {@link Executor.run}, reported through `done`. */
  stream(argv: readonly string[], options?: Omit<ExecOptions, 'stdout'>): Promise<ExecStream>;
  /**
   * Opens a byte stream to a unix socket on the host (an NBD server's socket, for chunked captures
   * and deploys): an OpenSSH stream-local channel over SSH, a plain socket connection locally.
   * Optional: a driver that needs it refuses the work when the executor has none. Destroy the
   * stream (or end it and read it to its end) to release it.
   * @throws COMMAND_FAILED when the socket does not exist or refuses the connection;
   *   HYPERVISOR_UNREACHABLE; CANCELLED.
   */
  openStreamLocal?(socketPath: string, options?: { signal?: AbortSignal }): Promise<Duplex>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** Gives the executor for a hypervisor (connections are pooled by the provider). */
export type ExecutorProvider = (hypervisor: HostHypervisor) => Executor;
