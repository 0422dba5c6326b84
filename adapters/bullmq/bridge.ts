/**
 * Events across processes: what a process emits on the SDK's `events` is published on a Redis
 * channel, and every other process of the deployment re-emits it on its own `events`, typed as
 * the local map (dates come back as `Date`). Each event gets an id; `handleOnce` ({@link BullmqTaskQueue.handleOnce})
 * runs a listener in exactly one process per event (a Redis `SET NX` claim on the event id).
 * Delivery is Redis pub/sub: at most once, to the processes connected when it is published.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { InstanceImagesEmitter, InstanceImagesEvents, Logger } from '../../src';

/** What is sent on the channel. */
interface WireEvent {
  id: string;
  origin: string;
  type: keyof InstanceImagesEvents;
  payload: unknown;
}

/** Information about an event for `handleOnce` ({@link BullmqTaskQueue.handleOnce}) listeners. */
export interface ClusterEventMeta {
  /** The event's id: the same in every process (use it to deduplicate). */
  readonly eventId: string;
  /** Whether the event was emitted by this process. */
  readonly local: boolean;
}

/** A listener run in exactly one process of the deployment for each event. */
export type ClusterEventListener<K extends keyof InstanceImagesEvents> = (
  payload: InstanceImagesEvents[K],
  meta: ClusterEventMeta,
) => unknown;

/** JSON with dates kept: a Date becomes `{ "$date": ISO }` and comes back as a Date. */
export function encodeWire(value: WireEvent): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v: unknown) {
    const raw = this[key];
    return raw instanceof Date ? { $date: raw.toISOString() } : v;
  });
}

/** The inverse of {@link encodeWire}. */
export function decodeWire(text: string): WireEvent {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      const date = (v as { $date?: unknown }).$date;
      if (keys.length === 1 && typeof date === 'string') return new Date(date);
    }
    return v;
  }) as WireEvent;
}

/** Connects one process's `events` to the deployment's event channel. */
export class EventBridge {
  /** This process, as the origin of what it publishes. */
  readonly origin = randomUUID();
  private readonly ids = new WeakMap<object, { eventId: string; local: boolean }>();
  private events: InstanceImagesEmitter | null = null;
  private localEmit: InstanceImagesEmitter['emit'] | null = null;
  private readonly pending: (() => void)[] = [];

  constructor(
    private readonly publisher: Redis,
    private readonly channel: string,
    private readonly claimPrefix: string,
    private readonly logger: () => Logger,
    /** How long a claim of {@link handleOnce} is kept (ms). */
    private readonly claimTtlMs: number,
  ) {}

  /** Wraps `events.emit`: emits here, then publishes. */
  attach(events: InstanceImagesEmitter): void {
    if (this.events) throw new Error('The event bridge is attached already');
    this.events = events;
    const localEmit = events.emit.bind(events) as InstanceImagesEmitter['emit'];
    this.localEmit = localEmit;
    events.emit = ((type: keyof InstanceImagesEvents, payload: InstanceImagesEvents[keyof InstanceImagesEvents]) => {
      const id = randomUUID();
      if (payload !== null && typeof payload === 'object') this.ids.set(payload, { eventId: id, local: true });
      localEmit(type, payload);
      this.publisher
        .publish(this.channel, encodeWire({ id, origin: this.origin, type, payload }))
        .catch((error: unknown) => this.logger().warn('publishing an event to Redis failed', { type, error: String(error) }));
    }) as InstanceImagesEmitter['emit'];
    for (const attachListener of this.pending.splice(0)) attachListener();
  }

  /** A message of the channel: re-emitted here unless this process published it. */
  receive(message: string): void {
    if (!this.localEmit) return;
    let event: WireEvent;
    try {
      event = decodeWire(message);
    } catch (error) {
      this.logger().warn('an unreadable event arrived from Redis', { error: String(error) });
      return;
    }
    if (event.origin === this.origin) return;
    if (event.payload !== null && typeof event.payload === 'object') this.ids.set(event.payload, { eventId: event.id, local: false });
    (this.localEmit as (type: string, payload: unknown) => void)(event.type, event.payload);
  }

  /**
   * Runs `listener` for every `type` event of the deployment in exactly one process: each process
   * that receives the event claims `name` + event id in Redis, and only the winner runs it.
   * @returns a function that removes the listener from this process.
   */
  handleOnce<K extends keyof InstanceImagesEvents>(name: string, type: K, listener: ClusterEventListener<K>): () => void {
    if (!/^[\w.-]{1,100}$/.test(name)) throw new TypeError('handleOnce: name must be 1-100 letters, digits, _ . or -');
    const handler = (payload: InstanceImagesEvents[K]): void => {
      const meta = this.ids.get(payload as object);
      if (!meta) return;
      this.publisher
        .set(`${this.claimPrefix}:${name}:${meta.eventId}`, this.origin, 'PX', this.claimTtlMs, 'NX')
        .then((won) => (won === 'OK' ? listener(payload, meta) : undefined))
        .catch((error: unknown) => this.logger().error('a handleOnce listener failed', { name, type, error: String(error) }));
    };
    let attached = false;
    const attach = () => {
      this.events?.on(type, handler);
      attached = true;
    };
    if (this.events) attach();
    else this.pending.push(attach);
    return () => {
      if (attached) this.events?.off(type, handler);
      else this.pending.splice(this.pending.indexOf(attach), 1);
    };
  }
}
