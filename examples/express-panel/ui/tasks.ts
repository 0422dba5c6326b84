/**
 * The tasks page: the session's tasks (every account's for the operator), newest first, with the
 * running ones' progress live, the failed ones' reason, and paging.
 * @module
 */
import type { ApiTask } from '../../../src/client';
import { errorBox, h, row, table, TASK_STATUS_LABELS, time } from './dom';
import type { AppContext } from './session';
import { taskProgress, type TaskProgressElement } from './task-progress';

const MAX_FOLLOWED = 3;

const TYPE_LABELS: Record<string, string> = {
  capture: 'Create image',
  delete: 'Delete image',
  deploy: 'Deploy image',
  import: 'Import image',
  copy: 'Copy image',
  'iso-upload': 'Upload ISO',
  'refresh-size': 'Refresh size',
  reconcile: 'Reconcile storage',
  'close-account': 'Close account',
  'chunk-gc': 'Collect chunks',
  'chunk-verify': 'Verify chunks',
};

/** Renders the tasks page into `main`. */
export async function tasksPage(ctx: AppContext, main: HTMLElement, signal: AbortSignal): Promise<void> {
  const admin = ctx.session.kind === 'admin';
  const headings = ['Task', 'Subject', 'Status', 'Progress', 'Started', 'Finished', ...(admin ? ['Account'] : [])];
  const list = h('div', { id: 'tasks-list' });
  const more = h('button', { type: 'button', hidden: true }, 'Show older tasks');
  const tasks: ApiTask[] = [];
  let cursor: string | null = null;
  const followed = new Map<string, TaskProgressElement>();

  function render(): void {
    const rows = tasks.map((task) => {
      const progress = followed.get(task.id) ?? taskProgress(`Progress of task ${task.id}`);
      progress.update(task);
      // Each followed task holds a connection (browsers allow 6 per host over HTTP/1.1): a few at most.
      if ((task.status === 'queued' || task.status === 'running') && !followed.has(task.id) && followed.size < MAX_FOLLOWED) {
        followed.set(task.id, progress);
        void ctx.client
          .followTask(task.id, { signal, onUpdate: (t) => progress.update(t) })
          .catch(() => undefined)
          .finally(() => {
            followed.delete(task.id);
            void reload();
          });
      }
      const outcome =
        task.status === 'failed' || task.status === 'cancelled'
          ? h('div', {}, TASK_STATUS_LABELS[task.status], h('p', { class: 'reason' }, task.errorMessage ?? ''))
          : TASK_STATUS_LABELS[task.status];
      return row(
        headings,
        [
          TYPE_LABELS[task.type] ?? task.type,
          h('code', {}, task.subjectId),
          h('span', { class: `badge task-${task.status}` }, outcome),
          progress,
          time(task.startedAt ?? task.createdAt),
          time(task.finishedAt),
          ...(admin ? [task.accountId ?? '—'] : []),
        ],
        { 'data-id': task.id, 'data-status': task.status },
      );
    });
    list.replaceChildren(tasks.length === 0 ? h('p', {}, 'No tasks yet.') : table('Tasks', headings, rows));
    more.hidden = cursor === null;
  }

  async function load(next: string | null): Promise<void> {
    try {
      const query = { limit: 25, ...(next ? { cursor: next } : {}) };
      const { data } = admin
        ? await ctx.client.api.GET('/admin/tasks', { params: { query } })
        : await ctx.client.api.GET('/tasks', { params: { query } });
      tasks.push(...(data?.items ?? []));
      cursor = data?.nextCursor ?? null;
      render();
    } catch (error) {
      list.replaceChildren(errorBox(error));
    }
  }

  async function reload(): Promise<void> {
    if (signal.aborted) return;
    tasks.length = 0;
    await load(null);
  }

  more.addEventListener('click', () => void load(cursor));
  main.replaceChildren(h('h1', { tabindex: '-1' }, 'Tasks'), list, more);
  await load(null);
}
