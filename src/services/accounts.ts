/**
 * Host lifecycle hooks: the host panel tells the SDK that an account was suspended, unsuspended
 * or closed, or that an instance was deleted. One call each, admin only, idempotent.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError } from '../errors';
import { IdSchema } from '../model/common';
import type { Image } from '../model/image';
import type { AccountState } from '../model/settings';
import type { Task } from '../model/task';
import { collectPages } from '../util/pages';
import { parseOrThrow } from '../util/validate';
import { requireAdmin, type Actor } from './actor';
import type { ServiceContext } from './context';
import type { ImageService } from './images';
import { enqueueTask, jobParams } from './task-jobs';
import { createTask, runTask } from './task-runner';
import { stopBilling } from './usage';
import { draft, recordEvents, recordWith, type TypedDraft } from './outbox-events';
import { liftProtectionForClosure } from './image-metadata';

/**
 * Refuses new work for a suspended or closed account: ACCOUNT_SUSPENDED or ACCOUNT_CLOSED (what
 * captures, retries and deploys call before they start anything).
 */
export async function assertAccountActive(ctx: ServiceContext, accountId: string): Promise<void> {
  const state = await ctx.repos.settings.getAccountState(accountId);
  if (state?.status === 'suspended')
    throw new InstanceImagesError('ACCOUNT_SUSPENDED', 'The account is suspended: no new images or deploys until it is active again', {
      details: { accountId },
    });
  if (state?.status === 'closed')
    throw new InstanceImagesError('ACCOUNT_CLOSED', 'The account is closed: its images were deleted and it can take no new ones', {
      details: { accountId },
    });
}

/** What {@link AccountService.closeAccount} answers: the closed state and the task deleting the images (null when nothing was left). */
export interface AccountClosing {
  state: AccountState;
  task: Task | null;
}

/** What {@link AccountService.instanceDeleted} answers: the instance's images, kept and marked. */
export interface InstanceDeletion {
  instanceId: string;
  /** The instance's custom images (not deleted ones), each with `sourceInstanceDeletedAt` set. */
  images: Image[];
}

/** Host lifecycle hooks. Reached through `InstanceImages.accounts`. */
export class AccountService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly images: ImageService,
  ) {
    // The close job: the account is the task's subject; the admin who closed it acts on its images.
    ctx.jobs.register('close-account', async (job, signal) => {
      const { userId } = jobParams(job, CloseJobParamsSchema);
      const task = await ctx.repos.tasks.get(job.taskId);
      if (task) await this.runClose(task.id, task.subjectId, { kind: 'admin', ...(userId ? { userId } : {}) }, signal);
    });
  }

  /** The account's state: `null` when active (never suspended or closed, or unsuspended). */
  async getAccountState(actor: Actor, accountId: string): Promise<AccountState | null> {
    requireAdmin(actor);
    return this.ctx.repos.settings.getAccountState(parseOrThrow(IdSchema, accountId, 'The account id'));
  }

  /**
   * The account was suspended: no new captures (create or retry) or deploys for it
   * (ACCOUNT_SUSPENDED); its images stay, stay visible and are billed; work already running
   * finishes. Idempotent (a suspended account keeps its first `since`); INVALID_STATE for a
   * closed account. Emits `account.suspended` when it changes something.
   */
  async suspendAccount(actor: Actor, accountId: string): Promise<AccountState> {
    requireAdmin(actor);
    const id = parseOrThrow(IdSchema, accountId, 'The account id');
    const current = await this.ctx.repos.settings.getAccountState(id);
    if (current?.status === 'closed') throw closedError(id);
    if (current?.status === 'suspended') return current;
    const now = this.ctx.now();
    const state: AccountState = { accountId: id, status: 'suspended', since: now, updatedAt: now };
    await this.putState(id, state, [draft('account.suspended', id, { state })], now);
    return state;
  }

  /**
   * The account is active again: captures and deploys are allowed. Idempotent (an active account
   * stays so); INVALID_STATE for a closed account. Emits `account.unsuspended` when it changes something.
   */
  async unsuspendAccount(actor: Actor, accountId: string): Promise<void> {
    requireAdmin(actor);
    const id = parseOrThrow(IdSchema, accountId, 'The account id');
    const current = await this.ctx.repos.settings.getAccountState(id);
    if (current?.status === 'closed') throw closedError(id);
    if (!current) return;
    await this.putState(id, null, [draft('account.unsuspended', id, { accountId: id })], this.ctx.now());
  }

  /** Writes the account's state with the events the change causes, recorded in the same write. */
  private async putState(accountId: string, state: AccountState | null, drafts: TypedDraft[], now: Date): Promise<void> {
    await recordWith(
      this.ctx,
      'accountStates',
      () => drafts,
      (events) => this.ctx.repos.settings.putAccountState(accountId, state, events, now),
      () => [state],
    );
  }

  /**
   * The account was closed (final): billing of every image stops at this call, new work is
   * refused (ACCOUNT_CLOSED), and a `close-account` task cancels captures in progress and deletes
   * every image (protected ones too: closing lifts their protection, an `image.updated` event) (each through its own `delete` task, which removes the file and emits
   * `image.deleted`). The task completes once every image is deleting or deleted; its progress
   * counts the images. Idempotent: calling again keeps the first close time and starts a task only
   * for images still left (e.g. after a failed removal). Emits `account.closed`. There is no image
   * sharing between accounts, so nothing else is revoked.
   */
  async closeAccount(actor: Actor, accountId: string): Promise<AccountClosing> {
    requireAdmin(actor);
    const id = parseOrThrow(IdSchema, accountId, 'The account id');
    const current = await this.ctx.repos.settings.getAccountState(id);
    let state = current;
    if (current?.status !== 'closed') {
      const now = this.ctx.now();
      const closing: AccountState = { accountId: id, status: 'closed', since: now, updatedAt: now };
      await this.putState(id, closing, [draft('account.closed', id, { state: closing })], now);
      state = closing;
    }
    const closed = state as AccountState;
    const left = await this.imagesOf(id);
    // Billing stops at the close, not when each file is gone.
    for (const image of left) await stopBilling(this.ctx, image.id, closed.since);
    const pending = left.filter((image) => image.status !== 'deleted');
    const active = await this.ctx.repos.tasks.list({ subjectId: id, type: 'close-account', statuses: ['queued', 'running'] }, { limit: 1 });
    if (pending.length === 0 || active.items.length > 0) return { state: closed, task: active.items[0] ?? null };
    const task = await createTask(this.ctx, {
      type: 'close-account',
      subjectKind: 'account',
      subjectId: id,
      accountId: id,
      hypervisorId: null,
    });
    await enqueueTask(this.ctx, { taskId: task.id, type: 'close-account', hypervisorId: null, params: { userId: actor.userId ?? null } });
    return { state: closed, task };
  }

  /**
   * The instance was deleted: its custom images are kept (they still deploy and are billed) and
   * marked with `sourceInstanceDeletedAt`; a capture from it still in progress is cancelled (the
   * image ends in `error`, reason CANCELLED). Idempotent (an image keeps its first mark). Emits
   * `instance.deleted` when it changes something.
   */
  async instanceDeleted(actor: Actor, instanceId: string): Promise<InstanceDeletion> {
    requireAdmin(actor);
    const id = parseOrThrow(IdSchema, instanceId, 'The instance id');
    const images = await collectPages((cursor) =>
      this.ctx.repos.images.list({ kind: 'custom', sourceInstanceId: id }, { cursor, limit: 500 }),
    );
    const now = this.ctx.now();
    const marked: Image[] = [];
    let changed = false;
    for (const image of images) {
      if (image.status === 'creating') await this.images.cancelCapture(actor, image.id);
      if (image.sourceInstanceDeletedAt) {
        marked.push((await this.ctx.repos.images.get(image.id)) ?? image);
        continue;
      }
      changed = true;
      marked.push((await this.ctx.repos.images.update(image.id, { sourceInstanceDeletedAt: now }, now)) ?? image);
    }
    if (changed) await recordEvents(this.ctx, [draft('instance.deleted', id, { instanceId: id, images: marked })]);
    return { instanceId: id, images: marked };
  }

  /** The account's custom images that are not deleted yet. */
  private imagesOf(accountId: string): Promise<Image[]> {
    return collectPages((cursor) => this.ctx.repos.images.list({ kind: 'custom', accountId }, { cursor, limit: 500 }));
  }

  private async runClose(taskId: string, accountId: string, actor: Actor, signal: AbortSignal): Promise<void> {
    await runTask(this.ctx, taskId, signal, async ({ progress }) => {
      const capturing = (await this.imagesOf(accountId)).filter((image) => image.status === 'creating');
      progress({ step: 'stopping captures', bytesDone: 0, bytesTotal: capturing.length });
      for (const [index, image] of capturing.entries()) {
        await this.images.cancelCapture(actor, image.id).catch(() => undefined);
        progress({ step: 'stopping captures', bytesDone: index + 1, bytesTotal: capturing.length });
      }
      const left = await this.imagesOf(accountId);
      progress({ step: 'deleting images', bytesDone: 0, bytesTotal: left.length });
      const failed: string[] = [];
      for (const [index, image] of left.entries()) {
        if (signal.aborted) throw new InstanceImagesError('CANCELLED', 'Closing the account was cancelled');
        // Closing overrides protection: the account pays for nothing any more, so nothing is kept.
        await liftProtectionForClosure(this.ctx, image)
          .then(() => this.images.deleteImage(actor, image.id))
          .catch(() => failed.push(image.id));
        progress({ step: 'deleting images', bytesDone: index + 1, bytesTotal: left.length });
      }
      if (failed.length > 0)
        throw new InstanceImagesError(
          'INVALID_STATE',
          `${failed.length} of the account's images could not be deleted yet (${failed.join(', ')}); close the account again to retry`,
          { details: { imageIds: failed } },
        );
    });
  }
}

/** The input of a close job its task does not hold: the closing admin. */
const CloseJobParamsSchema = z.object({ userId: IdSchema.nullable() });

function closedError(accountId: string): InstanceImagesError {
  return new InstanceImagesError('INVALID_STATE', 'The account is closed; a closed account cannot be suspended or unsuspended', {
    details: { accountId },
  });
}
