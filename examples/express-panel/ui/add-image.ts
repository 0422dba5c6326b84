/**
 * My Images' "Add an image" forms, shown where the operator allows customers to bring their own
 * images (the location's URL imports): Import from a URL (the download runs as a task on the
 * panel), and Upload a file, resumable (tus): the page sends the file in pieces with a progress
 * bar; after a dropped connection it asks the panel where the upload stands and goes on from the
 * last byte stored; Pause aborts the request under way and Resume continues it.
 * @module
 */
import type { ResumableUpload } from '../../../src/client';
import { announce, errorBox, field, formatBytes, h } from './dom';
import type { AppContext } from './session';

/** What the host tells the customer pages about its location. */
export interface HostFeatures {
  locationId: string;
  /** Customers may import and upload images (the operator's location settings). */
  urlImportEnabled: boolean;
  /** The locations a customer may copy an image to (empty when the operator does not allow copies). */
  copyLocations: string[];
}

/** Bytes per upload request: small enough for a progress bar that moves, large enough to be quick. */
export const UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024;

const SHA256_HINT = 'Optional: the sha256 of the (uncompressed) image; the panel refuses a file that does not match.';

/** The host's features (`GET /demo/features`). */
export async function loadFeatures(ctx: AppContext): Promise<HostFeatures> {
  const response = await ctx.host('/demo/features');
  if (!response.ok) throw new Error(`The panel could not tell which features it offers (${response.status})`);
  return (await response.json()) as HostFeatures;
}

function sha256Input(id: string): HTMLInputElement {
  return h('input', { id, name: 'sha256', pattern: '[0-9a-fA-F]{64}', autocomplete: 'off', spellcheck: 'false' });
}

/** The Import from a URL form; `started` runs once the panel accepted the import. */
function importForm(ctx: AppContext, features: HostFeatures, started: () => Promise<void>): HTMLFormElement {
  const url = h('input', { id: 'import-url', name: 'url', type: 'url', required: true, maxlength: 8192, placeholder: 'https://' });
  const name = h('input', { id: 'import-name', name: 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const sha256 = sha256Input('import-sha256');
  const status = h('div', { id: 'import-status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Import');
  const form = h(
    'form',
    { id: 'import', 'aria-labelledby': 'import-title' },
    h('h3', { id: 'import-title' }, 'Import from a URL'),
    field('Image URL', url, 'http or https; raw, qcow2, vmdk, vhdx, vpc or iso, optionally gz, xz, zst or bz2 compressed.'),
    field('Image name', name),
    field('Expected sha256', sha256, SHA256_HINT),
    status,
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      submit.disabled = true;
      status.replaceChildren();
      try {
        const { data } = await ctx.client.api.POST('/images/import', {
          body: {
            url: url.value,
            name: name.value,
            locationId: features.locationId,
            ...(sha256.value ? { sha256: sha256.value.toLowerCase() } : {}),
          },
        });
        announce(`Importing ${data?.image.name ?? name.value}`);
        form.reset();
        await started();
      } catch (error) {
        status.replaceChildren(errorBox(error));
        url.focus();
      } finally {
        submit.disabled = false;
      }
    })();
  });
  return form;
}

/** The Upload a file form with its progress bar, Pause and Resume. */
function uploadForm(ctx: AppContext, features: HostFeatures, started: () => Promise<void>, signal: AbortSignal): HTMLFormElement {
  const file = h('input', { id: 'upload-file', name: 'file', type: 'file', required: true });
  const name = h('input', { id: 'upload-name', name: 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const sha256 = sha256Input('upload-sha256');
  const bar = h('progress', { id: 'upload-progress', max: 100, value: 0, 'aria-label': 'Upload progress', hidden: true });
  const text = h('span', { id: 'upload-text', class: 'progress-text' });
  const status = h('div', { id: 'upload-status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Upload');
  const pause = h('button', { type: 'button', id: 'upload-pause', hidden: true }, 'Pause upload');
  let upload: ResumableUpload | null = null;
  let running = false;
  let resumes = 0;
  signal.addEventListener('abort', () => upload?.pause());

  file.addEventListener('change', () => {
    const chosen = file.files?.[0];
    if (chosen && !name.value) name.value = chosen.name.replace(/\.(gz|xz|zst|bz2)$/i, '').replace(/\.[^.]+$/, '');
  });

  const show = (stored: number, total: number) => {
    const percent = total === 0 ? 100 : Math.floor((stored / total) * 100);
    bar.value = percent;
    bar.setAttribute('aria-valuetext', `${percent}%`);
    bar.dataset.stored = String(stored);
    text.textContent = `${formatBytes(stored)} of ${formatBytes(total)} (${percent}%)`;
  };

  async function run(): Promise<void> {
    if (!upload) return;
    running = true;
    pause.textContent = 'Pause upload';
    pause.hidden = false;
    submit.disabled = true;
    try {
      const outcome = await upload.start();
      status.replaceChildren(h('p', { class: 'ok' }, 'Upload complete. The panel is checking and storing the image.'));
      announce(`Upload of ${name.value} complete`);
      pause.hidden = true;
      upload = null;
      form.dataset.imageId = outcome.imageId ?? '';
      form.reset();
      await started();
    } catch (error) {
      if (signal.aborted) return;
      const paused = error instanceof DOMException && error.name === 'AbortError';
      if (paused) {
        status.replaceChildren(h('p', {}, `Paused at ${formatBytes(upload?.offset ?? 0)}. Resume to go on from there.`));
        announce('Upload paused');
      } else status.replaceChildren(errorBox(error));
      // What the panel refused (a problem answer) does not pass by resuming; a dropped connection does.
      const refused = error instanceof Error && error.name === 'ImagesApiError';
      pause.textContent = 'Resume upload';
      pause.hidden = refused;
      if (refused) upload = null;
    } finally {
      running = false;
      submit.disabled = upload !== null;
    }
  }

  const form = h(
    'form',
    { id: 'upload', 'aria-labelledby': 'upload-title' },
    h('h3', { id: 'upload-title' }, 'Upload an image file'),
    field('Image file', file, 'A disk image from your computer; an interrupted upload goes on where it stopped.'),
    field('Image name', name),
    field('Expected sha256', sha256, SHA256_HINT),
    h('div', { class: 'upload-progress' }, bar, text),
    status,
    h('div', { class: 'row-actions' }, submit, pause),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen || running) return;
    resumes = 0;
    form.dataset.resumes = '0';
    status.replaceChildren();
    bar.hidden = false;
    bar.setAttribute('aria-label', `Upload of ${name.value}`);
    show(0, chosen.size);
    upload = ctx.client.upload({
      file: chosen,
      chunkBytes: UPLOAD_CHUNK_BYTES,
      metadata: {
        name: name.value,
        locationId: features.locationId,
        filename: chosen.name,
        ...(sha256.value ? { sha256: sha256.value.toLowerCase() } : {}),
      },
      onProgress: show,
      onResume: (offset) => {
        resumes++;
        form.dataset.resumes = String(resumes);
        form.dataset.resumedAt = String(offset);
        status.replaceChildren(h('p', {}, `The connection dropped; resumed from ${formatBytes(offset)}.`));
        announce(`Connection dropped; the upload resumed from ${formatBytes(offset)}`);
      },
    });
    void run();
  });
  pause.addEventListener('click', () => {
    if (running) upload?.pause();
    else void run();
  });
  return form;
}

/** The "Add an image" section: both forms where the operator allows it, else a line saying so. */
export function addImageSection(ctx: AppContext, features: HostFeatures, started: () => Promise<void>, signal: AbortSignal): HTMLElement {
  const section = h(
    'section',
    { id: 'add-image', 'aria-labelledby': 'add-image-title' },
    h('h2', { id: 'add-image-title' }, 'Add an image'),
  );
  if (!features.urlImportEnabled) {
    section.append(h('p', {}, 'Your provider has not enabled importing or uploading images in this location.'));
    return section;
  }
  section.append(h('div', { class: 'cards' }, importForm(ctx, features, started), uploadForm(ctx, features, started, signal)));
  return section;
}
