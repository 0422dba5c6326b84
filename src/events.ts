/**
 * The typed event map. Subscribe with `images.events.on('image.available', handler)` (mitt).
 * Payloads never carry secrets.
 * @module
 */
import mitt, { type Emitter } from 'mitt';
import type { Image, ImageStatus } from './model/image';
import type { AccountState } from './model/settings';
import type { ImageShare, ImageShareStatus, ImageTransfer, ImageTransferStatus } from './model/image-move';
import type { Task } from './model/task';
import type { MaterializeResult } from './ports/hypervisor-driver';
import type { UsageInterval } from './model/usage-interval';

/** Who caused a change: a customer of an account, an admin, or the system itself. */
export type EventActor = { kind: 'customer'; accountId: string; userId?: string } | { kind: 'admin'; userId?: string } | { kind: 'system' };

/** One finding of the image browser / reconcile. */
export interface ReconcileFinding {
  /** The storage inspected. */
  storageId: string;
  /** For per-hypervisor storage: the hypervisor inspected. */
  hypervisorId: string | null;
  /** The classification. */
  kind: 'ok' | 'orphan' | 'missing' | 'stale' | 'size-mismatch' | 'leftover';
  /** The file key (for missing images: the key the record expects). */
  key: string;
  /** The matching image, if any. */
  imageId: string | null;
  /** Human-readable explanation. */
  message: string;
  /** For reconcile runs: the action taken, or that would be taken in a dry run. */
  action?: 'deleted-file' | 'marked-error' | 'none';
  /** Whether the action was only simulated. */
  dryRun?: boolean;
}

/** Every event the SDK emits, by name. */
export type InstanceImagesEvents = {
  /** An image changed status (every transition, including to `deleted`). */
  'image.status-changed': { image: Image; from: ImageStatus; to: ImageStatus; actor: EventActor; reason: string | null };
  /** An image became available: its file is verified and billing has started. */
  'image.available': { image: Image };
  /** An image went to `error`; `code` and `message` say why. */
  'image.failed': { image: Image; code: string; message: string };
  /** An image's file was removed and the image is now `deleted`. */
  'image.deleted': { image: Image };
  /**
   * A deploy finished: `result` is the new disk of instance `instanceId` (its path, format and
   * size); `task` is the completed `deploy` task.
   */
  'image.deployed': { image: Image; task: Task; instanceId: string; result: MaterializeResult };
  /** A deploy failed or was cancelled; `code` and `message` say why (nothing is left at the target path). */
  'image.deploy-failed': { image: Image; task: Task; instanceId: string; code: string; message: string };
  /** A task reported progress (at most about once a second per task). */
  'task.progress': { task: Task };
  /** A task ended: completed, failed or cancelled. */
  'task.finished': { task: Task };
  /** Billing started for an image (a usage interval was opened). */
  'usage.started': { interval: UsageInterval };
  /** Billing stopped for an image (a usage interval was closed). */
  'usage.stopped': { interval: UsageInterval };
  /** An ISO was mounted to an instance. */
  'iso.mounted': { isoId: string; instanceId: string; accountId: string };
  /** An ISO was unmounted from an instance. */
  'iso.unmounted': { isoId: string | null; instanceId: string; accountId: string };
  /** The host suspended an account (`accounts.suspendAccount`): no new captures or deploys. */
  'account.suspended': { state: AccountState };
  /** The host made a suspended account active again. */
  'account.unsuspended': { accountId: string };
  /** The host closed an account: billing stopped at `state.since`; its images are being deleted. */
  'account.closed': { state: AccountState };
  /** The host deleted an instance: its images are kept, marked with `sourceInstanceDeletedAt`. */
  'instance.deleted': { instanceId: string; images: Image[] };
  /** An owner shared an image with another account (the share is `pending`). */
  'share.created': { share: ImageShare; actor: EventActor };
  /** A share was accepted, rejected or revoked (also when its image was deleted or given away). */
  'share.status-changed': { share: ImageShare; from: ImageShareStatus; to: ImageShareStatus; actor: EventActor };
  /** An owner offered an image to another account (the transfer is `pending`). */
  'transfer.created': { transfer: ImageTransfer; actor: EventActor };
  /** A transfer was accepted, rejected, cancelled or found expired. */
  'transfer.status-changed': { transfer: ImageTransfer; from: ImageTransferStatus; to: ImageTransferStatus; actor: EventActor };
  /** An accepted transfer moved the image: billing moved at the same instant (`at`). */
  'image.owner-changed': { image: Image; fromAccountId: string; toAccountId: string; transferId: string; at: Date };
  /** A copy of an image to another storage started (the copy is a new image in `creating`). */
  'image.copy-started': { image: Image; sourceImageId: string; actor: EventActor };
  /**
   * An owner or operator changed an image's name, description, protection or capability metadata
   * (`fields` names what changed); closing an account lifts protection as the system.
   */
  'image.updated': { image: Image; fields: string[]; actor: EventActor };
  /** The image browser or reconcile found (or fixed) something. */
  'reconcile.finding': { finding: ReconcileFinding };
};

/** The SDK's typed event emitter. */
export type InstanceImagesEmitter = Emitter<InstanceImagesEvents>;

/** Creates a typed event emitter. */
export function createEmitter(): InstanceImagesEmitter {
  return mitt<InstanceImagesEvents>();
}
