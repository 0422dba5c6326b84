/**
 * The host lifecycle hooks over HTTP (admin only): an account suspended, unsuspended or closed, an
 * instance deleted. Each calls one method of `InstanceImages.accounts` and is idempotent.
 * @module
 */
import { z } from 'zod';
import { ImageSchema } from '../../src/model/image';
import { AccountStateSchema } from '../../src/model/settings';
import { TaskSchema } from '../../src/model/task';
import { defineRoute, type RouteDefinition } from './route-types';

const id = (params: Record<string, string>, name: string): string => params[name] as string;

/** A closed account and the task deleting its images (null when nothing was left). */
export const AccountClosingSchema = z.object({ state: AccountStateSchema, task: TaskSchema.nullable() });
/** A deleted instance's images, kept and marked. */
export const InstanceDeletionSchema = z.object({ instanceId: z.string(), images: z.array(ImageSchema) });

/** The host lifecycle hook routes. */
export const HOST_HOOK_ROUTES: readonly RouteDefinition[] = [
  defineRoute({
    method: 'put',
    path: '/admin/accounts/:accountId/suspension',
    operationId: 'suspendAccount',
    summary: 'The host suspended the account: no new captures or deploys; its images stay and are billed (idempotent)',
    tag: 'admin: accounts',
    admin: true,
    success: { status: 200, description: 'The suspended state (its `since` is the first suspension)', schema: AccountStateSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.accounts.suspendAccount(actor, id(params, 'accountId')),
    }),
  }),
  defineRoute({
    method: 'delete',
    path: '/admin/accounts/:accountId/suspension',
    operationId: 'unsuspendAccount',
    summary: 'The host made the account active again (idempotent)',
    tag: 'admin: accounts',
    admin: true,
    success: { status: 204, description: 'Active' },
    errors: [409],
    handle: async ({ actor, params, runtime }) => {
      await runtime.service.accounts.unsuspendAccount(actor, id(params, 'accountId'));
      return { status: 204 };
    },
  }),
  defineRoute({
    method: 'post',
    path: '/admin/accounts/:accountId/close',
    operationId: 'closeAccount',
    summary: 'The host closed the account: billing stops now and a task deletes every image (idempotent; final)',
    tag: 'admin: accounts',
    admin: true,
    success: {
      status: 202,
      description: 'The closed state and the `close-account` task (null when nothing was left)',
      schema: AccountClosingSchema,
    },
    handle: async ({ actor, params, runtime }) => ({
      status: 202,
      body: await runtime.service.accounts.closeAccount(actor, id(params, 'accountId')),
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/instances/:instanceId/deleted',
    operationId: 'instanceDeleted',
    summary: 'The host deleted the instance: its images are kept and marked, a capture from it is cancelled (idempotent)',
    tag: 'admin: accounts',
    admin: true,
    success: { status: 200, description: "The instance's images, marked", schema: InstanceDeletionSchema },
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.accounts.instanceDeleted(actor, id(params, 'instanceId')),
    }),
  }),
];
