/**
 * Start-up recovery: tasks a crash interrupted are failed, their leftovers removed (an import's
 * work files too, a stock import's found through the storage its task names) and their images
 * moved to `error` in the same write as the task's end; the hypervisor drivers run their
 * own recovery.
 * @module
 */
import type { StatusReason } from '../model/common';
import type { Image } from '../model/image';
import type { Task } from '../model/task';
import { collectPages, eachPage } from '../util/pages';
import type { DriverCache, ServiceContext } from './context';
import { transitionImage } from './image-state';
import { publish, taskFinished } from './outbox-events';
import { chunkStoreOf, isChunkedStorage } from './chunked-storage';
import { failureReason } from '../messages';
import { endTaskWithImage, transitionTask, type TaskEnd } from './task-state';
import { importKeyBase, removeImportLeftovers } from './import-leftovers';

/** What start-up recovery did. */
export interface RecoveryReport {
  /** Tasks failed as interrupted. */
  interruptedTasks: string[];
  /** Images moved to `error` (reason INTERRUPTED). */
  failedImages: string[];
  /** Leftover files removed, and incomplete uploads aborted (`<key> (incomplete upload <id>)`). */
  removedFiles: string[];
  /** Actions the hypervisor drivers took (aborted jobs, committed overlays). */
  hypervisorActions: string[];
}

/** Start-up recovery. Reached through `InstanceImages.recover()`. */
export class RecoveryService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
  ) {}

  /** A capture's or deploy's chunk lease (named by its task id), so GC may collect what only it named. */
  private async releaseChunkLease(task: Task, image: Image): Promise<void> {
    try {
      const storage = await this.ctx.repos.storages.get(image.storageId);
      if (!storage || !isChunkedStorage(storage)) return;
      const disk = await this.drivers.storage(storage, task.hypervisorId);
      await chunkStoreOf(this.ctx, storage, disk, image.accountId).releaseLease(task.id);
    } catch (error) {
      this.ctx.logger.warn('recovery could not release a chunk lease', { taskId: task.id, error: String(error) });
    }
  }

  /**
   * The leftovers of an interrupted task's image: its file, and the incomplete uploads meant for it
   * (a multipart upload of a process killed mid-upload stays open, and billed by the object store,
   * until aborted); for an import, every work file named after its key base (received and part
   * files, the fetch's work directories on the hypervisor, curl killed). Best effort; a later pass
   * or the reconcile finds what stays.
   */
  private async removeLeftover(task: Task, image: Image, report: RecoveryReport): Promise<void> {
    // Only while the task is still unended: a task that ended meanwhile (its worker was alive) keeps its file.
    const current = await this.ctx.repos.tasks.get(task.id);
    if (current?.status !== 'running' && current?.status !== 'queued') return;
    const storage = await this.ctx.repos.storages.get(image.storageId);
    if (!storage) return;
    try {
      const disk = await this.drivers.storage(storage, task.hypervisorId);
      await disk.delete(image.fileKey);
      report.removedFiles.push(image.fileKey);
      if (task.type === 'import') {
        await removeImportLeftovers(this.drivers, storage, task.hypervisorId, importKeyBase(task, image), (what) => {
          if (what !== image.fileKey) report.removedFiles.push(what);
        });
        return;
      }
      for (const upload of await disk.listIncomplete()) {
        if (upload.key !== image.fileKey) continue;
        await disk.abortIncomplete(upload);
        report.removedFiles.push(`${upload.key} (incomplete upload ${upload.id})`);
      }
    } catch (error) {
      this.ctx.logger.warn('recovery could not remove a leftover', { imageId: image.id, error: String(error) });
    }
  }

  /**
   * The leftovers of an interrupted stock import, whose image is recorded only once complete: its
   * task names the storage, its subject the future image (whose key base names every file it wrote).
   */
  private async removeStockImportLeftover(task: Task, report: RecoveryReport): Promise<void> {
    const current = await this.ctx.repos.tasks.get(task.id);
    if (current?.status !== 'running' && current?.status !== 'queued') return;
    // Recorded meanwhile (its worker was alive): the file is the image's.
    if (await this.ctx.repos.images.get(task.subjectId)) return;
    const storage = task.storageId ? await this.ctx.repos.storages.get(task.storageId) : null;
    if (!storage) return;
    try {
      await removeImportLeftovers(this.drivers, storage, task.hypervisorId, importKeyBase(task, null), (what) =>
        report.removedFiles.push(what),
      );
    } catch (error) {
      this.ctx.logger.warn('recovery could not remove the leftovers of a stock import', { taskId: task.id, error: String(error) });
    }
  }

  /**
   * Ends an interrupted task, with its image moved to `error` in the same write when the task was
   * making (capture, copy, import) or deleting it; the leftovers of a making task are removed first,
   * so an image in `error` never has a capture still writing its file. @returns the ended task, or
   * `null` when another process ended it first.
   */
  private async endInterrupted(task: Task, now: Date, report: RecoveryReport): Promise<Task | null> {
    const end: TaskEnd = {
      taskId: task.id,
      from: ['running', 'queued'],
      to: 'failed',
      patch: { finishedAt: now, errorCode: 'INTERRUPTED', errorMessage: 'The task was interrupted by a restart of the panel' },
      events: taskFinished,
    };
    const image = task.subjectKind === 'image' ? await this.ctx.repos.images.get(task.subjectId) : null;
    const maker = task.type === 'capture' || task.type === 'copy' || task.type === 'import' ? task.type : null;
    const making = maker !== null && image?.status === 'creating';
    const reason: StatusReason | null = making
      ? failureReason(maker, 'INTERRUPTED')
      : task.type === 'delete' && image?.status === 'deleting'
        ? failureReason('delete', 'INTERRUPTED')
        : null;
    // A stock import not recorded yet: what it wrote goes before its task ends.
    if (!image && task.type === 'import' && task.subjectKind === 'image') await this.removeStockImportLeftover(task, report);
    if (!image || !reason) {
      const ended = await transitionTask(this.ctx, end.taskId, end.from, end.to, end.patch, now, end.events);
      if (ended) publish(this.ctx.events, end.events(ended));
      return ended;
    }
    if (making) await this.removeLeftover(task, image, report);
    const done = await endTaskWithImage(this.ctx, end, { image, to: 'error', actor: 'system', reason }, now);
    if (done?.image) report.failedImages.push(image.id);
    return done?.task ?? null;
  }

  /**
   * The hypervisor drivers' recovery for the hypervisors of `interrupted` running tasks that are
   * still unended: the whole hypervisor, or, when a live task (of this or another process) runs there,
   * only the interrupted captures' own domains.
   */
  private async recoverHypervisors(
    interrupted: Task[],
    knownTaskIds: ReadonlySet<string>,
    lapsed: (task: Task) => boolean,
    report: RecoveryReport,
  ): Promise<void> {
    const hypervisors = new Set<string>();
    /** Per hypervisor, the domains of the interrupted captures (for a scoped recovery). */
    const domains = new Map<string, Set<string>>();
    for (const task of interrupted) {
      if (!task.hypervisorId) continue;
      // Ended meanwhile (its worker was alive after all, or another process recovered it).
      const current = await this.ctx.repos.tasks.get(task.id);
      if (current?.status !== 'running' && current?.status !== 'queued') continue;
      hypervisors.add(task.hypervisorId);
      if (task.type !== 'capture' || task.subjectKind !== 'image') continue;
      const image = await this.ctx.repos.images.get(task.subjectId);
      if (!image?.sourceInstanceId) continue;
      const instance = await this.ctx.host.getInstance(image.sourceInstanceId).catch(() => null);
      if (instance) domains.set(task.hypervisorId, (domains.get(task.hypervisorId) ?? new Set()).add(instance.domainName));
    }
    if (hypervisors.size === 0) return;
    // Another live process capturing there would lose its backup job and scratch files.
    const busy = new Set(
      (await collectPages((cursor) => this.ctx.repos.tasks.list({ statuses: ['running'] }, { cursor, limit: 500 })))
        .filter((t) => knownTaskIds.has(t.id) || !lapsed(t))
        .map((t) => t.hypervisorId),
    );
    for (const hypervisorId of hypervisors) {
      // With a live task there, only the interrupted captures' own domains are recovered.
      const scope = busy.has(hypervisorId) ? [...(domains.get(hypervisorId) ?? [])] : [undefined];
      if (scope.length === 0)
        report.hypervisorActions.push(
          `${hypervisorId}: skipped (a live task of another process runs there and the interrupted domain is unknown)`,
        );
      try {
        const driver = await this.drivers.hypervisorDriver(hypervisorId);
        for (const domainName of scope) {
          const actions = await driver.recover(domainName);
          report.hypervisorActions.push(...actions.map((a) => `${hypervisorId}: ${a.action} ${a.detail}`));
        }
      } catch (error) {
        this.ctx.logger.warn('hypervisor recovery failed', { hypervisorId, error: String(error) });
      }
    }
  }

  /**
   * Start-up recovery: running tasks whose heartbeat lapsed and queued tasks no process keeps alive
   * (neither known to this one nor heartbeated by another within the timeout) are failed as
   * interrupted; their leftovers are removed and their images go to `error` (reason INTERRUPTED)
   * in the same write as the task's end;
   * each hypervisor of those tasks first runs its driver's recovery (scoped to the interrupted
   * captures' domains when a live task runs there), so that a task ends only once its hypervisor
   * side is clean (a task waiting to start there counts on it). Safe to call from every process.
   */
  async recover(knownTaskIds: ReadonlySet<string> = new Set(), orphaned: (task: Task) => boolean = () => false): Promise<RecoveryReport> {
    const report: RecoveryReport = { interruptedTasks: [], failedImages: [], removedFiles: [], hypervisorActions: [] };
    const now = this.ctx.now();
    const cutoff = now.getTime() - this.ctx.settings.heartbeatTimeoutMs;
    const lapsed = (task: Task): boolean => orphaned(task) || (task.heartbeatAt ?? task.createdAt).getTime() < cutoff;
    const stale = (await this.ctx.repos.tasks.listStale(new Date(cutoff))).filter((t) => !knownTaskIds.has(t.id));
    const running = await collectPages((cursor) => this.ctx.repos.tasks.list({ statuses: ['running'] }, { cursor, limit: 500 }));
    stale.push(...running.filter((t) => !knownTaskIds.has(t.id) && orphaned(t) && !stale.some((s) => s.id === t.id)));
    const queued = (await collectPages((cursor) => this.ctx.repos.tasks.list({ statuses: ['queued'] }, { cursor, limit: 500 }))).filter(
      (t) => !knownTaskIds.has(t.id) && lapsed(t),
    );
    const interrupted = [...stale, ...queued];
    // The hypervisor side first, while the tasks are still unended: a task about to start on that
    // hypervisor (in any process) waits for them (the hypervisor gate), so it never meets a dead
    // capture's backup job or scratch files, nor has its own job aborted by this cleanup.
    // (A queued task never started: nothing of it is on a hypervisor.)
    await this.recoverHypervisors(stale, knownTaskIds, lapsed, report);
    for (const task of interrupted) {
      const ended = await this.endInterrupted(task, now, report);
      if (!ended) continue;
      report.interruptedTasks.push(task.id);
      if (task.subjectKind !== 'image' || (task.type !== 'capture' && task.type !== 'deploy')) continue;
      const image = await this.ctx.repos.images.get(task.subjectId);
      if (image) await this.releaseChunkLease(task, image);
    }
    // Images left in a transient status without any live task (e.g. a crash between inserting the
    // image and its task) would otherwise stay there forever.
    for (const [status, type] of [
      ['creating', 'capture'],
      ['deleting', 'delete'],
    ] as const) {
      for await (const images of eachPage((cursor) => this.ctx.repos.images.list({ statuses: [status] }, { cursor, limit: 500 }))) {
        for (const image of images) {
          // A creating image's task is a capture, a copy or an import: any live task of the image counts.
          const active = await this.ctx.repos.tasks.list(
            { subjectId: image.id, ...(status === 'creating' ? {} : { type }), statuses: ['queued', 'running'] },
            { limit: 1 },
          );
          // A very recent image may be another process's, between inserting it and its task.
          if (active.items.length > 0 || report.failedImages.includes(image.id) || image.updatedAt.getTime() >= cutoff) continue;
          const reason = failureReason(status === 'creating' ? 'capture' : 'delete', 'INTERRUPTED');
          const moved = await transitionImage(this.ctx, image, 'error', {}, 'system', reason).then(
            () => true,
            () => false,
          );
          if (moved) report.failedImages.push(image.id);
        }
      }
    }
    return report;
  }
}
