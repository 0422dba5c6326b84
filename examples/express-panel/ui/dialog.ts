/**
 * Modal dialogs on the native `<dialog>` element: `showModal()` makes the rest of the page inert
 * and Escape closes it; the first control (or the safe choice) gets the focus, and the focus goes
 * back to what opened the dialog when it closes.
 * @module
 */
import { h } from './dom';

/** Options of {@link confirmDialog}. */
export interface ConfirmOptions {
  title: string;
  message: string;
  /** The label of the button that confirms, e.g. "Delete image". */
  confirmLabel: string;
  /** Styles the confirm button as destructive. */
  danger?: boolean;
}

/** Asks a yes/no question; resolves `true` only when the person confirms. Cancel has the focus. */
export function confirmDialog(options: ConfirmOptions): Promise<boolean> {
  const opener = document.activeElement as HTMLElement | null;
  const titleId = `dlg-${Math.random().toString(36).slice(2, 9)}`;
  const cancel = h('button', { type: 'button', value: 'cancel' }, 'Cancel');
  const confirm = h('button', { type: 'button', value: 'confirm', class: options.danger ? 'danger' : 'primary' }, options.confirmLabel);
  const dialog = h(
    'dialog',
    { 'aria-labelledby': titleId, 'aria-describedby': `${titleId}-msg` },
    h('h2', { id: titleId }, options.title),
    h('p', { id: `${titleId}-msg` }, options.message),
    h('div', { class: 'actions' }, cancel, confirm),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    let answer = false;
    cancel.addEventListener('click', () => dialog.close());
    confirm.addEventListener('click', () => {
      answer = true;
      dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      opener?.focus();
      resolve(answer);
    });
    dialog.showModal();
    cancel.focus();
  });
}

/** Options of {@link formDialog}. */
export interface FormDialogOptions {
  title: string;
  /** What the dialog is about (read with its title). */
  description?: string;
  /** The labelled controls (see `field`). The first one gets the focus. */
  fields: HTMLElement[];
  /** The label of the submit button, e.g. "Share". */
  submitLabel: string;
  /**
   * Runs on submit while the dialog stays open: resolve to close it (with the value), throw to show
   * the error inside the dialog (announced) and keep the focus in it.
   */
  onSubmit: (form: HTMLFormElement) => Promise<unknown>;
  /** Renders the error of a failed submit. */
  renderError: (error: unknown) => HTMLElement;
  /** Content shown below the fields (e.g. a list of the image's shares). */
  extra?: HTMLElement;
}

/**
 * A modal form: the first field has the focus, Escape or Cancel closes it (resolving `null`), a
 * failed submit shows its error in the dialog; the focus returns to the opener on close.
 */
export function formDialog(options: FormDialogOptions): Promise<unknown> {
  const opener = document.activeElement as HTMLElement | null;
  const titleId = `dlg-${Math.random().toString(36).slice(2, 9)}`;
  const status = h('div', { class: 'dialog-status', 'aria-live': 'assertive' });
  const cancel = h('button', { type: 'button' }, 'Cancel');
  const submit = h('button', { type: 'submit', class: 'primary' }, options.submitLabel);
  const form = h(
    'form',
    { method: 'dialog', class: 'dialog-form' },
    ...options.fields,
    status,
    h('div', { class: 'actions' }, cancel, submit),
  );
  const dialog = h(
    'dialog',
    { 'aria-labelledby': titleId, ...(options.description ? { 'aria-describedby': `${titleId}-msg` } : {}) },
    h('h2', { id: titleId }, options.title),
    options.description ? h('p', { id: `${titleId}-msg` }, options.description) : null,
    form,
    options.extra ?? null,
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    let result: unknown = null;
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      submit.disabled = true;
      status.replaceChildren();
      options
        .onSubmit(form)
        .then((value) => {
          result = value ?? true;
          dialog.close();
        })
        .catch((error: unknown) => {
          status.replaceChildren(options.renderError(error));
          form.querySelector<HTMLElement>('input, select')?.focus();
        })
        .finally(() => (submit.disabled = false));
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      opener?.focus();
      resolve(result);
    });
    dialog.showModal();
    form.querySelector<HTMLElement>('input, select, button')?.focus();
  });
}

/** A modal with content and a Close button (which has the focus unless `focus` names another element). */
export function infoDialog(title: string, content: HTMLElement[], focus?: HTMLElement): Promise<void> {
  const opener = document.activeElement as HTMLElement | null;
  const titleId = `dlg-${Math.random().toString(36).slice(2, 9)}`;
  const close = h('button', { type: 'button' }, 'Close');
  const dialog = h(
    'dialog',
    { 'aria-labelledby': titleId },
    h('h2', { id: titleId }, title),
    ...content,
    h('div', { class: 'actions' }, close),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    close.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      opener?.focus();
      resolve();
    });
    dialog.showModal();
    (focus ?? close).focus();
  });
}
