/**
 * The start and end of a chunked capture over libvirt's RPC protocol (rpc/client.ts) instead of
 * `virsh` processes in a remote script (chunk-session.ts): one connection to the daemon per
 * capture, opened on the executor's unix-socket channel, answers the inspection (state, XML,
 * checkpoints, `query-block`) in a few messages while `df` runs beside it (the job does not wait for
 * it: the scratch space is checked once the job started), begins the backup job
 * (incremental, else full) with its checkpoint inside the freeze window, and aborts it at the end.
 * The answers are the same records the script prints (see {@link SessionStep}), with `virsh`'s
 * texts, so everything that reads them is shared.
 *
 * Measured on the test hypervisor: the inspection answered in 5–11 ms where the script's one
 * `virsh` took about 100 ms (a process start and a new daemon connection), and opening the
 * connection took 1–7 ms.
 *
 * Used only where it is known to work: a `qemu:///system` URI whose daemon socket the executor can
 * open. When it cannot be opened, the capture uses the script, as before.
 * @module
 */
import { endBackupJob } from './backup-job';
import type { Run } from './capture-run';
import { inspectionQuestions, type SessionRecord, type SessionStep } from './chunk-session';
import type { HostCommands } from './commands';
import { isConnectionLost, LibvirtErrorCode, LibvirtRpc, LibvirtRpcError, type RpcDomain } from './rpc/client';

/** The daemon sockets of `qemu:///system`: the monolithic daemon's, then the modular QEMU daemon's. */
export const SYSTEM_SOCKETS = ['/var/run/libvirt/libvirt-sock', '/var/run/libvirt/virtqemud-sock'] as const;

/** One capture's connection to libvirt, with the domain it works on once looked up. */
export interface RpcStart {
  rpc: LibvirtRpc;
  /** Set by {@link rpcInspection} when the domain exists. */
  domain: RpcDomain | null;
}

/**
 * Opens the capture's connection to libvirt; null when this hypervisor cannot be spoken to that way
 * (another URI, an executor without unix-socket channels, no daemon socket, a refusal): the
 * capture then uses the script.
 */
export async function openRpcStart(cmd: HostCommands, signal?: AbortSignal): Promise<RpcStart | null> {
  const { executor } = cmd;
  if (cmd.uri !== 'qemu:///system' || !executor.openStreamLocal) return null;
  for (const socket of SYSTEM_SOCKETS) {
    if (signal?.aborted) return null;
    try {
      const stream = await executor.openStreamLocal(socket, signal ? { signal } : {});
      const rpc = await LibvirtRpc.open(stream, cmd.uri, `libvirt on ${executor.label}`);
      return { rpc, domain: null };
    } catch {
      // not this socket: the next, else the script
    }
  }
  return null;
}

/** A record as `virsh` would have printed it. */
function record(name: string, exitCode: number, stdout = '', stderr = ''): SessionRecord {
  return { name, exitCode, stdout, stderr };
}

/** A failed call as `virsh` prints it: `error: MESSAGE`. */
function failed(name: string, error: unknown): SessionRecord {
  const message = error instanceof Error ? error.message : String(error);
  return record(name, 1, '', `error: ${message}\n`);
}

async function answer(name: string, ask: () => Promise<string>): Promise<SessionRecord> {
  try {
    return record(name, 0, `${await ask()}\n`);
  } catch (error) {
    if (isConnectionLost(error)) throw error;
    return failed(name, error);
  }
}

/** What {@link rpcInspection} found. */
export interface RpcInspection {
  /** The records the script's inspection prints, but `df`. */
  step: SessionStep;
  /**
   * The `df` record, still coming: a running domain's job need not wait for it (the check of the
   * scratch space follows the job's start, which ends the job when the space is short).
   */
  scratchSpace: Promise<SessionRecord>;
}

/**
 * The inspection's records — `state`, `xml`, and `since`, `blocks`, `create` when asked — as the
 * script prints them, with `df`'s record coming beside them. @throws LibvirtRpcError when the
 * connection fails (not for an answer libvirt refused: that is a failed record, as from `virsh`).
 */
export async function rpcInspection(
  start: RpcStart,
  cmd: HostCommands,
  input: { domainName: string; scratchDir: string; since: string | null; create: string | null },
): Promise<RpcInspection> {
  const { rpc } = start;
  const scratchSpace = cmd
    .tryRun(['df', '-B1', '--output=avail', '--', input.scratchDir])
    .then((result) => record('df', result.exitCode ?? 1, result.stdout, result.stderr));
  // Awaited by the capture; a failure is its failure, never an unhandled rejection meanwhile.
  scratchSpace.catch(() => undefined);
  const step = new Map<string, SessionRecord>();
  let domain: RpcDomain;
  try {
    domain = await rpc.lookupDomain(input.domainName);
  } catch (error) {
    if (isConnectionLost(error)) throw error;
    for (const question of inspectionQuestions(input)) step.set(question.name, failed(question.name, error));
    return { step, scratchSpace };
  }
  start.domain = domain;
  const asked: Array<Promise<SessionRecord>> = [answer('state', () => rpc.domainState(domain)), answer('xml', () => rpc.domainXml(domain))];
  if (input.since !== null) {
    const since = input.since;
    asked.push(answer('since', () => rpc.checkpointXml(domain, since)));
    asked.push(answer('blocks', () => rpc.monitorCommand(domain, '{"execute":"query-block"}')));
  }
  if (input.create !== null) {
    const create = input.create;
    asked.push(answer('create', () => rpc.checkpointXml(domain, create)));
  }
  for (const answered of await Promise.all(asked)) step.set(answered.name, answered);
  return { step, scratchSpace };
}

/** What {@link rpcBeginBackup} needs (the same as the script's `backup` step). */
export interface BeginBackupOptions {
  incremental: string | null;
  full: string;
  checkpoint: string | null;
  /** The checkpoint's name, to delete a leftover and a half-made one. */
  checkpointName: string | null;
  deleteLeftover: boolean;
  freezeSeconds: number | null;
  /** The export's socket: a refused incremental start that left it must not be followed by a full one. */
  socket: string;
}

/** Resolves with `call`'s outcome, or with false once `ms` passed (the call goes on in the daemon). */
async function within(ms: number, call: Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([call.then(() => true), late]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts the pull-mode backup job as the script's `backup` step does, and answers with the same
 * records: `left` (only when a leftover checkpoint could not be deleted: nothing else was done),
 * `freeze`, `begin` (the last begin), `mode` (`incremental`, `full` or `failed`).
 * @throws LibvirtRpcError when the connection fails (the job may or may not have started: the
 * caller checks the socket, as after a lost answer from the script).
 */
export async function rpcBeginBackup(start: RpcStart, cmd: HostCommands, options: BeginBackupOptions): Promise<SessionStep> {
  const { rpc, domain } = start;
  if (domain === null) throw new LibvirtRpcError('the domain was not looked up', 0, 0);
  const records = new Map<string, SessionRecord>();
  const name = options.checkpointName;
  if (options.deleteLeftover && name !== null) {
    try {
      await rpc.checkpointDelete(domain, name);
    } catch (error) {
      if (isConnectionLost(error)) throw error;
      const stillThere = await rpc.checkpointXml(domain, name).then(
        () => true,
        (lookup: unknown) => !(lookup instanceof LibvirtRpcError && lookup.code === LibvirtErrorCode.noDomainCheckpoint),
      );
      if (stillThere) {
        records.set('left', failed('left', error));
        return records;
      }
    }
  }
  const freezeMs = options.freezeSeconds === null ? null : options.freezeSeconds * 1000;
  if (freezeMs !== null) records.set('freeze', record('freeze', (await within(freezeMs, rpc.fsFreeze(domain, true))) ? 0 : 1));
  try {
    let mode: 'incremental' | 'full' | 'failed' = 'full';
    if (options.incremental !== null) {
      try {
        await rpc.backupBegin(domain, options.incremental, options.checkpoint);
        records.set('begin', record('begin', 0));
        mode = 'incremental';
      } catch (error) {
        if (isConnectionLost(error)) throw error;
        records.set('begin', failed('begin', error));
        // libvirt checks the bitmap chain itself: its refusal only means a full read. The backup and
        // the checkpoint are one transaction; still, no half-made checkpoint stays.
        if (await cmd.exists(options.socket)) mode = 'failed';
        else if (options.checkpoint !== null && name !== null) await rpc.checkpointDelete(domain, name).catch(() => undefined);
      }
    }
    if (mode === 'full') {
      try {
        await rpc.backupBegin(domain, options.full, options.checkpoint);
        records.set('begin', record('begin', 0));
      } catch (error) {
        if (isConnectionLost(error)) throw error;
        records.set('begin', failed('begin', error));
        mode = 'failed';
      }
    }
    records.set('mode', record('mode', 0, mode));
    return records;
  } finally {
    if (freezeMs !== null) await within(freezeMs, rpc.fsFreeze(domain, false));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Ends the domain's backup job as {@link endBackupJob} does — abort, then ask until no job is
 * active (every 0.05 s, 30 s at most), the files removed beside it (or already, by `early`) — over
 * the capture's connection. When the connection is gone (a dropped SSH connection), the script does
 * it over a new one.
 */
export async function rpcEndJob(start: RpcStart, run: Run, files: string[], early?: Promise<void>): Promise<void> {
  const { rpc, domain } = start;
  if (domain === null || rpc.closed) return endBackupJob(run, files);
  const removed = early ?? run.ctx.cmd.tryRun(['rm', '-f', '--', ...files]).catch(() => undefined);
  try {
    // No job (already ended) or no domain: nothing to abort.
    await rpc.abortJob(domain).catch((error: unknown) => {
      if (isConnectionLost(error)) throw error;
    });
    for (let i = 0; i <= 600; i++) {
      const type = await rpc.jobType(domain).catch((error: unknown) => {
        if (isConnectionLost(error)) throw error;
        return 'none' as const;
      });
      if (type !== 'bounded' && type !== 'unbounded') return;
      await sleep(50);
    }
  } catch {
    await endBackupJob(run, files);
  } finally {
    await removed;
  }
}
