/**
 * Verifying (and optionally making) the NFS mount on a hypervisor with the real tools:
 * `findmnt -J -T` to see what is mounted at the mount point, `mount -t nfs` to mount it.
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { Executor } from '../../../src/ports/executor';
import { executorFailure, shArgv, stderrExcerpt } from '../local/commands';
import type { NfsStorageOptions } from './options';

/** What is mounted at (or above) the mount point. */
export interface MountState {
  /** The mount point of the filesystem holding the path. */
  target: string;
  /** What is mounted, e.g. `nas:/export/images` or `/dev/vda1`. */
  source: string;
  /** The filesystem type, e.g. `nfs4`, `ext4`, `tmpfs`. */
  fstype: string;
  /** The mount options as findmnt prints them. */
  options: string;
}

/** The outcome of a mount check: ok, or the reason it is not usable. */
export type MountCheck = { ok: true; mount: MountState } | { ok: false; reason: string; mounted: MountState | null };

function stripBrackets(server: string): string {
  return server.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

function trimSlashes(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/** Splits an NFS mount source `server:/path` (IPv6 servers in brackets) into its parts. */
export function parseNfsSource(source: string): { server: string; path: string } | null {
  const match = /^(\[[^\]]+\]|[^:]+):(\/.*)$/.exec(source);
  if (!match) return null;
  return { server: stripBrackets(match[1] ?? ''), path: trimSlashes(match[2] ?? '/') };
}

/** Whether `state` is an NFS mount of the configured export at exactly the mount point. */
export function judgeMount(options: Pick<NfsStorageOptions, 'server' | 'exportPath' | 'mountPoint'>, state: MountState | null): MountCheck {
  const wanted = `${options.server}:${options.exportPath}`;
  if (!state) return { ok: false, reason: `${options.mountPoint} does not exist`, mounted: null };
  if (state.target !== options.mountPoint) {
    return {
      ok: false,
      reason: `nothing is mounted at ${options.mountPoint} (it is a directory on ${state.target}, ${state.fstype}); expected ${wanted}`,
      mounted: state,
    };
  }
  if (state.fstype !== 'nfs' && state.fstype !== 'nfs4') {
    return {
      ok: false,
      reason: `${options.mountPoint} is a ${state.fstype} mount of ${state.source}, not NFS; expected ${wanted}`,
      mounted: state,
    };
  }
  const source = parseNfsSource(state.source);
  if (!source || source.server !== stripBrackets(options.server) || source.path !== trimSlashes(options.exportPath)) {
    return { ok: false, reason: `${options.mountPoint} is an NFS mount of ${state.source}, not of ${wanted}`, mounted: state };
  }
  return { ok: true, mount: state };
}

/** Reads what is mounted at the mount point with `findmnt -J -T`; `null` when the path does not exist. */
export async function readMount(executor: Executor, mountPoint: string): Promise<MountState | null> {
  let result;
  try {
    result = await executor.run(['findmnt', '-J', '-T', mountPoint, '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS'], { timeoutMs: 30_000 });
  } catch (error) {
    throw executorFailure(error, 'check the NFS mount', `${mountPoint} (${executor.label})`);
  }
  if (result.exitCode === 1 && result.stdout.trim() === '') return null;
  if (result.exitCode !== 0) {
    throw new InstanceImagesError(
      'STORAGE_UNAVAILABLE',
      `findmnt failed for ${mountPoint} on ${executor.label} (exit ${result.exitCode ?? 'by signal'}): ${stderrExcerpt(result.stderr)}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch (error) {
    throw new InstanceImagesError(
      'STORAGE_UNAVAILABLE',
      `findmnt printed something other than JSON for ${mountPoint} on ${executor.label}`,
      { cause: error },
    );
  }
  const filesystems = (parsed as { filesystems?: unknown }).filesystems;
  const first: unknown = Array.isArray(filesystems) ? filesystems[0] : undefined;
  if (!first || typeof first !== 'object') return null;
  const field = (name: string) => {
    const value = (first as Record<string, unknown>)[name];
    return typeof value === 'string' ? value : '';
  };
  return { target: field('target'), source: field('source'), fstype: field('fstype'), options: field('options') };
}

/** Mounts the export at the mount point (creating the directory). @throws STORAGE_UNAVAILABLE with mount's reason. */
export async function mountExport(executor: Executor, options: NfsStorageOptions): Promise<void> {
  const argv = ['mount', '-t', 'nfs'];
  if (options.mountOptions) argv.push('-o', options.mountOptions);
  argv.push(`${options.server}:${options.exportPath}`, options.mountPoint);
  let result;
  try {
    result = await executor.run(shArgv('mkdir -p -- "$1" || exit 1\nshift\nexec "$@"', options.mountPoint, ...argv), {
      timeoutMs: 120_000,
    });
  } catch (error) {
    throw executorFailure(error, 'mount the NFS export', `${options.mountPoint} (${executor.label})`);
  }
  if (result.exitCode !== 0) {
    throw new InstanceImagesError(
      'STORAGE_UNAVAILABLE',
      `Mounting ${options.server}:${options.exportPath} at ${options.mountPoint} on ${executor.label} failed: ${stderrExcerpt(result.stderr) || `exit ${result.exitCode ?? 'by signal'}`}`,
      {
        details: { exitCode: result.exitCode },
      },
    );
  }
}
