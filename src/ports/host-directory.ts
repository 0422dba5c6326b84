/**
 * The host directory: how the SDK learns about the host panel's instances and hypervisors.
 * @module
 */
import type { OsType } from '../model/image';

/** An instance (VM) as the host panel knows it. */
export interface HostInstance {
  id: string;
  /** Display name (shown as the source instance in My Images). */
  name: string;
  accountId: string;
  locationId: string;
  hypervisorId: string;
  /** The libvirt domain name on the hypervisor. */
  domainName: string;
  /**
   * Optional: the OS family the panel knows the instance runs (e.g. from the OS template it was
   * installed from). A capture records it; it wins over what the domain's definition says.
   */
  osType?: OsType | null;
  /** Optional: whether the panel knows the instance runs cloud-init (e.g. its OS template has it). Wins over the domain's definition. */
  cloudInit?: boolean | null;
}

/** How to reach a hypervisor: on this machine, or over SSH with a pinned host key. */
export type HypervisorConnection =
  | { type: 'local' }
  | {
      type: 'ssh';
      host: string;
      /** Default 22. */
      port?: number;
      username: string;
      /** PEM/OpenSSH private key. A secret: never logged or echoed. */
      privateKey: string;
      /** Passphrase of the key, if any. A secret. */
      passphrase?: string;
      /**
       * The host key the hypervisor must present: an OpenSSH fingerprint (`SHA256:base64`) or a
       * known_hosts line / public key (`ssh-ed25519 AAAA...`). Required: host keys are always verified.
       */
      hostKey: string;
    };

/** The scratch directory on a hypervisor when {@link HostHypervisor.scratchDir} is not set. */
export const DEFAULT_SCRATCH_DIR = '/var/tmp/instance-images';

/** A hypervisor as the host panel knows it. */
export interface HostHypervisor {
  id: string;
  name: string;
  locationId: string;
  connection: HypervisorConnection;
  /** Directory on the hypervisor for scratch files (streamed captures, NBD sockets). Default `/var/tmp/instance-images`. */
  scratchDir?: string;
  /** libvirt URI on the hypervisor. Default `qemu:///system`. */
  libvirtUri?: string;
}

/** Implemented by the host panel. */
export interface HostDirectory {
  /**
   * The instance, or `null` when it no longer exists ("gone": that is how stale images are found).
   * Must not throw for a missing instance.
   */
  getInstance(instanceId: string): Promise<HostInstance | null>;
  /** The hypervisor, or `null` when unknown. */
  getHypervisor(hypervisorId: string): Promise<HostHypervisor | null>;
  /** Optional: hypervisors of a location (used by deploy target checks and the browser). */
  listHypervisors?(): Promise<HostHypervisor[]>;
}
