/**
 * Feeds the panel's own `notifications` table from the SDK's typed events.
 *
 * Each handler turns one event payload into at most one notification: who it is for (a customer,
 * or `null` for the operators), a topic and a message written for that reader. Because the SDK's
 * records live in the same database, a handler can look up what the payload does not carry (the
 * image's title for a billing event) with one synchronous query.
 *
 * Events are emitted after the SDK's change is stored. A notification is written right then; the
 * `dedupe_key` (UNIQUE, `INSERT OR IGNORE`) keeps a repeated event from notifying twice.
 * @module
 */
import type Database from 'better-sqlite3';
import type { Image, InstanceImagesEmitter, InstanceImagesEvents, Task } from '../../src';

/** One row for the panel's `notifications` table. */
export interface PanelNotification {
  /** The customer to notify, or `null` for the panel's operators. */
  customerId: string | null;
  /** A short machine-readable topic, e.g. `image.ready`. */
  topic: string;
  /** The text shown to the reader. */
  message: string;
  /** Identifies the occurrence; a second notification with the same key is dropped. */
  dedupeKey: string;
}

/** Options of {@link forwardNotifications}. */
export interface ForwardNotificationsOptions {
  /** The clock for `created_on`. @default () => new Date() */
  clock?: () => Date;
  /**
   * Called when writing a notification fails. Handlers run inside the SDK's `emit` call, so they
   * must never throw into it. @default logs to `console.error`
   */
  onError?: (error: unknown, event: keyof InstanceImagesEvents) => void;
}

const taskLabels: Record<Task['type'], string> = {
  capture: 'image creation',
  delete: 'image deletion',
  deploy: 'server setup from an image',
  'iso-upload': 'ISO upload',
  'refresh-size': 'image size refresh',
  reconcile: 'storage check',
  'close-account': 'account closing',
  copy: 'image copy to another storage',
  'chunk-gc': 'storage cleanup',
  'chunk-verify': 'storage verification',
  import: 'image import from a URL',
};

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

/** Who reads about an image: its owner, or the operators for a stock (catalog) image. */
const readerOf = (image: Image) => (image.kind === 'custom' ? image.accountId : null);

/**
 * Subscribes to the SDK's events and writes the panel's notifications into `db`.
 * @returns a function that unsubscribes again.
 */
export function forwardNotifications(
  events: InstanceImagesEmitter,
  db: Database.Database,
  options: ForwardNotificationsOptions = {},
): () => void {
  const clock = options.clock ?? (() => new Date());
  const onError = options.onError ?? ((error, event) => console.error(`notification for ${event} not written:`, error));
  const write = db.prepare(
    'INSERT OR IGNORE INTO notifications (customer_id, topic, message, dedupe_key, created_on) VALUES (?, ?, ?, ?, ?)',
  );
  // The panel's own tables are right here: billing events only carry ids.
  const imageTitle = db.prepare('SELECT title FROM panel_vm_images WHERE id = ?').pluck();
  const regionCurrency = db.prepare("SELECT json_extract(value, '$.currency') FROM panel_settings WHERE name = ?").pluck();

  const unsubscribers: (() => void)[] = [];
  function on<K extends keyof InstanceImagesEvents>(
    event: K,
    notify: (payload: InstanceImagesEvents[K]) => PanelNotification | null,
  ): void {
    const handler = (payload: InstanceImagesEvents[K]) => {
      try {
        const n = notify(payload);
        if (n) write.run(n.customerId, n.topic, n.message, n.dedupeKey, clock().getTime());
      } catch (error) {
        onError(error, event);
      }
    };
    events.on(event, handler);
    unsubscribers.push(() => events.off(event, handler));
  }

  on('image.available', ({ image }) =>
    image.kind !== 'custom'
      ? null
      : {
          customerId: image.accountId,
          topic: 'image.ready',
          message: `Your image ${image.name} is ready${image.sourceInstanceName ? ` (captured from ${image.sourceInstanceName})` : ''}. You can now create servers from it.`,
          dedupeKey: `image.available:${image.id}`,
        },
  );

  on('image.failed', ({ image, message }) => ({
    customerId: readerOf(image),
    topic: 'image.failed',
    message: `Your image ${image.name} could not be created: ${message}`,
    // A retried image can fail again: each failure is its own occurrence.
    dedupeKey: `image.failed:${image.id}:${image.updatedAt.getTime()}`,
  }));

  on('image.deleted', ({ image }) => ({
    customerId: readerOf(image),
    topic: 'image.deleted',
    message:
      image.kind === 'custom'
        ? `Your image ${image.name} was deleted; billing for it has stopped.`
        : `The OS image ${image.name} was removed from the catalog.`,
    dedupeKey: `image.deleted:${image.id}`,
  }));

  on('usage.started', ({ interval }) => {
    const title = (imageTitle.get(interval.imageId) as string | undefined) ?? interval.imageId;
    const currency = regionCurrency.get(`images.region.${interval.locationId}`) as string | undefined;
    const price = currency ? `${interval.rate} ${currency}` : interval.rate;
    return {
      customerId: interval.accountId,
      topic: 'billing.started',
      message: `Storage for image ${title} is now billed: ${gib(interval.sizeBytes)} at ${price} per GB-month.`,
      dedupeKey: `usage.started:${interval.id}`,
    };
  });

  on('task.finished', ({ task }) => {
    // A failed capture is already told by image.failed; completed tasks tell nothing new
    // except a deploy, which the customer is waiting for.
    const label = taskLabels[task.type];
    const base = { customerId: task.accountId, dedupeKey: `task.finished:${task.id}:${task.status}` };
    if (task.status === 'cancelled') return { ...base, topic: 'task.cancelled', message: `The ${label} was cancelled.` };
    if (task.status === 'failed' && task.type !== 'capture')
      return { ...base, topic: 'task.failed', message: `The ${label} failed: ${task.errorMessage ?? task.errorCode ?? 'unknown error'}` };
    if (task.status === 'completed' && task.type === 'deploy')
      return { ...base, topic: 'task.completed', message: "Your server's disk was created from the image you picked." };
    return null;
  });

  return () => {
    for (const unsubscribe of unsubscribers) unsubscribe();
  };
}
