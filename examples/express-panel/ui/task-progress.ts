/**
 * `<ii-task-progress>`: a task's progress bar, fed with the task states `followTask` delivers.
 * The bar never goes backwards (a late or repeated event cannot lower it); the step and bytes are
 * text next to it; step changes and the end are said in a polite live region, not every percent.
 * Framework-agnostic: any page creates it and calls `update(task)`.
 * @module
 */
import type { ApiTask } from '../../../src/client';
import { formatBytes } from './dom';

/** A step name for people: "capturing" → "Capturing". */
function stepLabel(step: string): string {
  return step.charAt(0).toUpperCase() + step.slice(1);
}

/** The element. */
export class TaskProgressElement extends HTMLElement {
  private readonly bar = document.createElement('progress');
  private readonly text = document.createElement('span');
  private readonly live = document.createElement('span');
  private percent = 0;
  private step = '';

  connectedCallback(): void {
    if (this.bar.isConnected) return;
    this.bar.max = 100;
    this.bar.value = this.percent;
    this.bar.setAttribute('aria-label', this.getAttribute('label') ?? 'Progress');
    this.text.className = 'progress-text';
    this.live.className = 'visually-hidden';
    this.live.setAttribute('role', 'status');
    this.live.setAttribute('aria-live', 'polite');
    this.append(this.bar, this.text, this.live);
  }

  /** The highest percent shown so far. */
  get value(): number {
    return this.percent;
  }

  /** Shows a state of the task (ignored where it would move the bar back). */
  update(task: ApiTask): void {
    const finished = task.status === 'completed' || task.status === 'failed' || task.status === 'cancelled';
    this.percent = Math.max(this.percent, Math.min(100, Math.round(task.progress.percent)));
    this.bar.value = this.percent;
    this.bar.setAttribute('aria-valuetext', `${this.percent}%`);
    this.dataset.percent = String(this.percent);
    const step = stepLabel(task.progress.step);
    const bytes = task.progress.bytesTotal ? ` (${formatBytes(task.progress.bytesDone)} of ${formatBytes(task.progress.bytesTotal)})` : '';
    this.text.textContent = finished ? '' : `${step} ${this.percent}%${bytes}`;
    if (finished) this.live.textContent = task.status === 'completed' ? 'Finished' : `Stopped: ${task.status}`;
    else if (step !== this.step) this.live.textContent = step;
    this.step = step;
  }
}

if (!customElements.get('ii-task-progress')) customElements.define('ii-task-progress', TaskProgressElement);

/** A new progress element with an accessible label. */
export function taskProgress(label: string): TaskProgressElement {
  const element = document.createElement('ii-task-progress') as TaskProgressElement;
  element.setAttribute('label', label);
  return element;
}
