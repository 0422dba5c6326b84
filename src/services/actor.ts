/**
 * Actors and authorization. Every service call takes an actor: a customer of an account, or an
 * admin (operator). A customer only ever sees their own account's images, tasks and instances, and
 * customer-visible stock items; a foreign id answers NOT_FOUND exactly like a missing one.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError } from '../errors';
import { IdSchema } from '../model/common';
import { parseOrThrow } from '../util/validate';
import type { EventActor } from '../events';

/** Who is calling: a customer of an account, or an operator. */
export type Actor = { kind: 'customer'; accountId: string; userId?: string } | { kind: 'admin'; userId?: string };

/** Validates an {@link Actor}. */
export const ActorSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('customer'), accountId: IdSchema, userId: IdSchema.optional() }),
  z.object({ kind: z.literal('admin'), userId: IdSchema.optional() }),
]);

/** Validates the actor (VALIDATION_FAILED for a malformed one). */
export function checkActor(actor: Actor): Actor {
  return parseOrThrow(ActorSchema, actor, 'The actor');
}

/** Throws FORBIDDEN unless the actor is an admin. */
export function requireAdmin(actor: Actor): void {
  checkActor(actor);
  if (actor.kind !== 'admin') throw new InstanceImagesError('FORBIDDEN', 'Only an administrator can do this');
}

/** True when the actor may see things of `accountId`. */
export function ownsAccount(actor: Actor, accountId: string | null): boolean {
  return actor.kind === 'admin' || (accountId !== null && actor.accountId === accountId);
}

/** The event view of an actor. */
export function eventActor(actor: Actor | 'system'): EventActor {
  if (actor === 'system') return { kind: 'system' };
  return actor.kind === 'admin'
    ? { kind: 'admin', ...(actor.userId ? { userId: actor.userId } : {}) }
    : { kind: 'customer', accountId: actor.accountId, ...(actor.userId ? { userId: actor.userId } : {}) };
}
