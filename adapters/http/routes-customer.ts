/**
 * The customer routes of the route table: My Images, tasks and their event streams, the OS picker,
 * ISOs to mount, the usage report (admins may call them too; the services scope every answer to
 * the actor), and the deploy route of the host's create-instance flow.
 * @module
 */
import { DeployInputSchema } from '../../src/services/catalog';
import { CreateImageInputSchema } from '../../src/services/images';
import type { Actor } from '../../src/services/actor';
import { taskForAudience } from './problem';
import { defineRoute, type RouteDefinition } from './route-types';
import {
  DeployableImagesSchema,
  DeployStartedSchema,
  ImagePageSchema,
  ImageSchema,
  ImageWithTaskSchema,
  IsoPageSchema,
  MountIsoBodySchema,
  MyImagesQuerySchema,
  MyTasksQuerySchema,
  MyUsageQuerySchema,
  OsPickerQuerySchema,
  PageQuerySchema,
  TaskPageSchema,
  TaskSchema,
  UsageReportSchema,
} from './schemas';
import { streamTaskEvents } from './sse';

const id = (params: Record<string, string>, name: string): string => params[name] as string;
/** The plan of an OS picker query (disk size, firmware, architecture), or undefined when none is given. */
const planOf = (query: { diskBytes?: number; firmware?: 'bios' | 'uefi'; architecture?: string }) => {
  const plan = Object.fromEntries(
    (['diskBytes', 'firmware', 'architecture'] as const).filter((key) => query[key] !== undefined).map((key) => [key, query[key]]),
  );
  return Object.keys(plan).length > 0 ? plan : undefined;
};
const audienceOf = (actor: Actor): 'admin' | 'customer' => (actor.kind === 'admin' ? 'admin' : 'customer');

/** Customer routes (admins may call them too; the services scope every answer to the actor). */
export const CUSTOMER_ROUTES: readonly RouteDefinition[] = [
  defineRoute({
    method: 'get',
    path: '/images',
    operationId: 'listMyImages',
    summary: "My Images: a page of the account's images",
    tag: 'images',
    admin: false,
    query: MyImagesQuerySchema,
    success: { status: 200, description: 'A page of images', schema: ImagePageSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.images.listImages(actor, query) }),
  }),
  defineRoute({
    method: 'post',
    path: '/images',
    operationId: 'createImage',
    summary: 'Create an image from an instance (the capture runs in the background)',
    tag: 'images',
    admin: false,
    body: CreateImageInputSchema,
    success: {
      status: 202,
      description: 'The image in `creating` and its capture task',
      schema: ImageWithTaskSchema,
      location: 'The new image (`GET /images/{imageId}`)',
    },
    errors: [403, 404, 409, 503, 507],
    handle: async ({ actor, body, runtime, baseUrl }) => {
      const result = await runtime.service.images.createImage(actor, body);
      return { status: 202, body: result, location: `${baseUrl}/images/${encodeURIComponent(result.image.id)}` };
    },
  }),
  defineRoute({
    method: 'get',
    path: '/images/:imageId',
    operationId: 'getImage',
    summary: "One of the account's images",
    tag: 'images',
    admin: false,
    success: { status: 200, description: 'The image', schema: ImageSchema },
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.images.getImage(actor, id(params, 'imageId')),
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/images/:imageId/retry',
    operationId: 'retryImage',
    summary: 'Retry a failed capture',
    tag: 'images',
    admin: false,
    success: { status: 202, description: 'The image back in `creating` and its new task', schema: ImageWithTaskSchema },
    errors: [403, 409],
    handle: async ({ actor, params, runtime }) => ({
      status: 202,
      body: await runtime.service.images.retryImage(actor, id(params, 'imageId')),
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/images/:imageId/cancel',
    operationId: 'cancelCapture',
    summary: 'Cancel a capture in progress',
    tag: 'images',
    admin: false,
    success: { status: 200, description: 'The image (in `error`, reason CANCELLED)', schema: ImageSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.images.cancelCapture(actor, id(params, 'imageId')),
    }),
  }),
  defineRoute({
    method: 'delete',
    path: '/images/:imageId',
    operationId: 'deleteImage',
    summary: 'Delete an image (billing stops now; the file is removed in the background)',
    tag: 'images',
    admin: false,
    success: {
      status: 202,
      description: 'The image in `deleting` and its task (task null when it was already being deleted)',
      schema: ImageWithTaskSchema,
    },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 202,
      body: await runtime.service.images.deleteImage(actor, id(params, 'imageId')),
    }),
  }),
  defineRoute({
    method: 'get',
    path: '/tasks',
    operationId: 'listMyTasks',
    summary: "The tasks page: the account's tasks, newest first",
    tag: 'tasks',
    admin: false,
    query: MyTasksQuerySchema,
    success: { status: 200, description: 'A page of tasks', schema: TaskPageSchema },
    handle: async ({ actor, query, runtime }) => {
      const page = await runtime.service.images.listTasks(actor, query);
      return { status: 200, body: { ...page, items: page.items.map((task) => taskForAudience(task, audienceOf(actor))) } };
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tasks/:taskId',
    operationId: 'getTask',
    summary: 'One task with its progress',
    tag: 'tasks',
    admin: false,
    success: { status: 200, description: 'The task', schema: TaskSchema },
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: taskForAudience(await runtime.service.images.getTask(actor, id(params, 'taskId')), audienceOf(actor)),
    }),
  }),
  defineRoute({
    method: 'get',
    path: '/tasks/:taskId/events',
    operationId: 'streamTaskEvents',
    summary:
      'Task progress as Server-Sent Events: `task` (the current state), then `task.progress`… and `task.finished`, then the stream ends',
    tag: 'tasks',
    admin: false,
    success: { status: 200, description: 'An event stream; each `data:` line is the task as JSON', contentType: 'text/event-stream' },
    handle: (ctx) => streamTaskEvents(ctx, id(ctx.params, 'taskId')),
  }),
  defineRoute({
    method: 'get',
    path: '/os-picker',
    operationId: 'listDeployableImages',
    summary: 'The OS picker: stock images by visible media group, plus My Images (with a plan, only images that boot on it)',
    tag: 'deploy',
    admin: false,
    query: OsPickerQuerySchema,
    success: { status: 200, description: 'Deployable images', schema: DeployableImagesSchema },
    handle: async ({ actor, query, runtime }) => ({
      status: 200,
      body: await runtime.service.catalog.listDeployableImages(actor, {
        ...(query.accountId ? { accountId: query.accountId } : {}),
        ...(planOf(query) ? { plan: planOf(query) } : {}),
      }),
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/deployments',
    operationId: 'deployImage',
    summary:
      "Materialize an image as the standalone disk of a new instance (the host's create-instance flow; the host chooses the disk path)",
    tag: 'deploy',
    admin: true,
    body: DeployInputSchema,
    success: {
      status: 202,
      description: 'The deploy task (queued); the disk exists once it is `completed`: follow `GET /tasks/{taskId}` or its events stream',
      schema: DeployStartedSchema,
    },
    errors: [409, 422],
    handle: async ({ actor, body, baseUrl, runtime }) => {
      const started = await runtime.service.catalog.deployImage(actor, body);
      return { status: 202, body: started, location: `${baseUrl}/tasks/${encodeURIComponent(started.task.id)}` };
    },
  }),
  defineRoute({
    method: 'get',
    path: '/isos',
    operationId: 'listIsos',
    summary: 'ISOs the caller may mount',
    tag: 'isos',
    admin: false,
    query: PageQuerySchema,
    success: { status: 200, description: 'A page of ISOs', schema: IsoPageSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.catalog.listIsos(actor, query) }),
  }),
  defineRoute({
    method: 'post',
    path: '/instances/:instanceId/iso',
    operationId: 'mountIso',
    summary: 'Mount an ISO to an own instance and boot from it',
    tag: 'isos',
    admin: false,
    body: MountIsoBodySchema,
    success: { status: 204, description: 'Mounted' },
    errors: [409, 503],
    handle: async ({ actor, params, body, runtime }) => {
      await runtime.service.catalog.mountIso(actor, { instanceId: id(params, 'instanceId'), isoId: body.isoId });
      return { status: 204 };
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/instances/:instanceId/iso',
    operationId: 'unmountIso',
    summary: 'Unmount the ISO of an own instance (idempotent)',
    tag: 'isos',
    admin: false,
    success: { status: 204, description: 'Unmounted' },
    errors: [503],
    handle: async ({ actor, params, runtime }) => {
      await runtime.service.catalog.unmountIso(actor, { instanceId: id(params, 'instanceId') });
      return { status: 204 };
    },
  }),
  defineRoute({
    method: 'get',
    path: '/usage',
    operationId: 'myUsageReport',
    summary: "The usage report's Images section for a period [from, to)",
    tag: 'billing',
    admin: false,
    query: MyUsageQuerySchema,
    success: { status: 200, description: 'The report; amounts are decimal strings', schema: UsageReportSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.settings.usageReport(actor, query) }),
  }),
];
