/**
 * The libvirt hypervisor driver: virsh + qemu-img over an executor (SSH or local).
 *
 * ```ts
 * import { createLibvirtDriver } from 'instance-images/drivers/libvirt';
 * const driver = createLibvirtDriver(hypervisor, executor, { method: 'auto' });
 * const result = await driver.capture({ domainName: 'vm-42', output: { kind: 'path', path: '/images/i-1.qcow2' } });
 * ```
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { Executor } from '../../../src/ports/executor';
import { DEFAULT_SCRATCH_DIR, type HostHypervisor } from '../../../src/ports/host-directory';
import type { HypervisorDriver } from '../../../src/ports/hypervisor-driver';
import { parseOrThrow } from '../../../src/util/validate';
import { assertAbsolutePath, captureDomain, type CaptureContext } from './capture';
import { assertCheckpointName, deleteCheckpoint } from './checkpoints';
import { HostCommands } from './commands';
import { detectCapabilities, inspectDomain, type HypervisorCapabilities, type LibvirtDomainInfo } from './inspect';
import { checkDeployTarget, materializeDisk } from './materialize';
import { attachIso, detachIso } from './media';
import { LibvirtDriverOptionsSchema, type LibvirtDriverOptions } from './options';
import { recoverLeftovers } from './recover';

export type { HypervisorCapabilities, LibvirtDomainInfo } from './inspect';
export type { DomainDisk } from './parsers';
export {
  LibvirtDriverOptionsSchema,
  CaptureMethodSchema,
  type LibvirtDriverOptions,
  type CaptureMethod,
  type LibvirtDriverHooks,
} from './options';

export { DEFAULT_SCRATCH_DIR };
/** Default libvirt URI on the hypervisor. */
export const DEFAULT_LIBVIRT_URI = 'qemu:///system';

/** The libvirt driver: the port's methods plus capability detection. */
export interface LibvirtDriver extends HypervisorDriver {
  /** Inspects a domain; adds the guest agent state, every disk and the hypervisor's capabilities. */
  inspect(domainName: string): Promise<LibvirtDomainInfo>;
  /** Versions and capture methods of this hypervisor (detected once, then cached). */
  capabilities(): Promise<HypervisorCapabilities>;
}

/**
 * The scratch directory holds NBD sockets (a unix socket path is limited to 107 bytes) and file
 * names that reach NBD URIs, so it is restricted to plain path characters.
 */
function checkScratchDir(dir: string): string {
  const trimmed = dir.replace(/\/+$/, '');
  if (!/^\/[A-Za-z0-9_./-]*$/.test(trimmed) || trimmed.split('/').includes('..') || trimmed.length > 60) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      'scratchDir must be an absolute path of at most 60 plain characters (letters, digits, _ . / -)',
      {
        fields: [{ path: 'scratchDir', message: 'must be a short absolute path of plain characters' }],
      },
    );
  }
  return trimmed;
}

/**
 * Creates the driver for one hypervisor. Matches `HypervisorDriverFactory` (the third argument is
 * optional).
 * @throws VALIDATION_FAILED for invalid options or scratch directory.
 */
export function createLibvirtDriver(hypervisor: HostHypervisor, executor: Executor, options: LibvirtDriverOptions = {}): LibvirtDriver {
  const { hooks, ...rest } = options;
  const parsed = parseOrThrow(LibvirtDriverOptionsSchema, rest, 'libvirt driver options');
  const scratchDir = checkScratchDir(hypervisor.scratchDir ?? DEFAULT_SCRATCH_DIR);
  const cmd = new HostCommands(executor, hypervisor.libvirtUri ?? DEFAULT_LIBVIRT_URI);
  let scratchReady: Promise<void> | null = null;
  const ensureScratchDir = (): Promise<void> => {
    scratchReady ??= cmd.run(['mkdir', '-p', '-m', '700', '--', scratchDir]).then(
      () => undefined,
      (error: unknown) => {
        scratchReady = null;
        throw error;
      },
    );
    return scratchReady;
  };
  let caps: Promise<HypervisorCapabilities> | null = null;
  const capabilities = (): Promise<HypervisorCapabilities> => {
    caps ??= ensureScratchDir()
      .then(() => detectCapabilities(cmd, scratchDir))
      .catch((error: unknown) => {
        caps = null;
        throw error;
      });
    return caps;
  };
  const ctx: CaptureContext = {
    cmd,
    scratchDir,
    method: parsed.method,
    freezeTimeoutMs: parsed.freezeTimeoutMs,
    verify: parsed.verify,
    spaceMarginBytes: parsed.spaceMarginBytes,
    nbdConnections: parsed.nbdConnections,
    libvirtRpc: parsed.libvirtRpc,
    hooks: hooks ?? {},
    capabilities,
    ensureScratchDir,
  };

  return {
    capabilities,
    async inspect(domainName) {
      return inspectDomain(cmd, domainName, await capabilities());
    },
    capture: (request) => captureDomain(ctx, request),
    materialize: (request) => materializeDisk(ctx, request),
    checkDeployTarget: (targetPath) => checkDeployTarget(cmd, targetPath),
    attachIso: (domainName, isoPath, options) => attachIso(ctx, domainName, isoPath, options),
    detachIso: (domainName) => detachIso(ctx, domainName),
    async freeSpace(path) {
      assertAbsolutePath(path === '/' ? '/.' : path, 'path');
      return cmd.freeBytes(path);
    },
    async removeFile(path) {
      assertAbsolutePath(path, 'path');
      await cmd.remove(path);
    },
    async deleteCheckpoints(domainName, names) {
      if (typeof domainName !== 'string' || domainName === '' || domainName.includes('\u0000')) {
        throw new InstanceImagesError('VALIDATION_FAILED', 'A domain name is required', {
          fields: [{ path: 'domainName', message: 'must not be empty' }],
        });
      }
      if (!Array.isArray(names)) {
        throw new InstanceImagesError('VALIDATION_FAILED', 'names must be a list of checkpoint names', {
          fields: [{ path: 'names', message: 'must be an array' }],
        });
      }
      names.forEach((name, index) => assertCheckpointName(name, `names[${index}]`));
      for (const name of new Set(names)) await deleteCheckpoint(cmd, domainName, name);
    },
    async recover(domainName) {
      await ensureScratchDir();
      return recoverLeftovers(cmd, scratchDir, domainName);
    },
  };
}
