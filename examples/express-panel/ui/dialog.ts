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
