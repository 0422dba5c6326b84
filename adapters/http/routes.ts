/**
 * The route table: every route of the images API, customer and admin. The handler and the
 * OpenAPI document are both built from it, so neither can forget a route.
 * @module
 */
import {
  CreateOsImageInputSchema,
  DeployInputSchema,
  IsoInputSchema,
  MediaGroupInputSchema,
  UpdateIsoInputSchema,
  UpdateOsImageInputSchema,
} from '../../src/services/catalog';
import { CreateImageInputSchema, ListImagesQuerySchema, ListTasksQuerySchema } from '../../src/services/images';
import { LocationSettingsInputSchema } from '../../src/services/settings';
import { CreateStorageInputSchema, ReconcileOptionsSchema, UpdateStorageInputSchema } from '../../src/services/storages';
import { ChunkGcOptionsSchema } from '../../src/services/chunked-storage';
import type { Actor } from '../../src/services/actor';
import { HOST_HOOK_ROUTES } from './account-routes';
import { taskForAudience } from './problem';
import { defineRoute, type RouteDefinition } from './route-types';
import {
  AccountLimitBodySchema,
  AccountLimitResponseSchema,
  AdminUsageQuerySchema,
  BindingBodySchema,
  BrowsePageSchema,
  BrowseQuerySchema,
  DeleteIsoQuerySchema,
  DeployableImagesSchema,
  DeployStartedSchema,
  HealthQuerySchema,
  ImagePageSchema,
  ImageResponseSchema,
  ImageSchema,
  ImageWithTaskSchema,
  IsoPageSchema,
  IsoSchema,
  IsoUploadQuerySchema,
  LocationSettingsListSchema,
  LocationSettingsSchema,
  MediaGroupListSchema,
  MediaGroupSchema,
  MountIsoBodySchema,
  MyImagesQuerySchema,
  MyTasksQuerySchema,
  MyUsageQuerySchema,
  OsImageListQuerySchema,
  OsPickerQuerySchema,
  PageQuerySchema,
  RecoveryReportSchema,
  ReconcileResultSchema,
  RefreshSizeResponseSchema,
  StorageBindingSchema,
  StorageHealthSchema,
  StorageListQuerySchema,
  StorageListSchema,
  StorageViewSchema,
  TaskPageSchema,
  TaskSchema,
  UsageReportSchema,
} from './schemas';
import { MOVE_ROUTES } from './move-routes';
import { MOVING_ROUTES } from './routes-moving';
import { streamTaskEvents } from './sse';
import { receiveIsoUpload } from './upload';

const id = (params: Record<string, string>, name: string): string => params[name] as string;
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
    summary: 'The OS picker: stock images by visible media group, plus My Images',
    tag: 'deploy',
    admin: false,
    query: OsPickerQuerySchema,
    success: { status: 200, description: 'Deployable images', schema: DeployableImagesSchema },
    handle: async ({ actor, query, runtime }) => ({
      status: 200,
      body: await runtime.service.catalog.listDeployableImages(actor, query.accountId ? { accountId: query.accountId } : {}),
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

/** Operator routes under `/admin` (customers get 403 FORBIDDEN before anything else happens). */
export const ADMIN_ROUTES: readonly RouteDefinition[] = [
  // ---------- image storages ----------
  defineRoute({
    method: 'get',
    path: '/admin/storages',
    operationId: 'listStorages',
    summary: 'Image storages (secrets masked)',
    tag: 'admin: storages',
    admin: true,
    query: StorageListQuerySchema,
    success: { status: 200, description: 'Storages', schema: StorageListSchema },
    handle: async ({ actor, query, runtime }) => ({
      status: 200,
      body: { items: await runtime.service.storages.listStorages(actor, query.purpose ? { purpose: query.purpose } : {}) },
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/storages',
    operationId: 'createStorage',
    summary: 'Create an image storage (config validated by the driver)',
    tag: 'admin: storages',
    admin: true,
    body: CreateStorageInputSchema,
    success: {
      status: 201,
      description: 'The storage',
      schema: StorageViewSchema,
      location: 'The new storage (`GET /admin/storages/{storageId}`)',
    },
    handle: async ({ actor, body, runtime, baseUrl }) => {
      const storage = await runtime.service.storages.createStorage(actor, body);
      return { status: 201, body: storage, location: `${baseUrl}/admin/storages/${encodeURIComponent(storage.id)}` };
    },
  }),
  defineRoute({
    method: 'get',
    path: '/admin/storages/:storageId',
    operationId: 'getStorage',
    summary: 'One image storage',
    tag: 'admin: storages',
    admin: true,
    success: { status: 200, description: 'The storage', schema: StorageViewSchema },
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.storages.getStorage(actor, id(params, 'storageId')),
    }),
  }),
  defineRoute({
    method: 'patch',
    path: '/admin/storages/:storageId',
    operationId: 'updateStorage',
    summary: 'Edit a storage (a masked secret keeps its value)',
    tag: 'admin: storages',
    admin: true,
    body: UpdateStorageInputSchema,
    success: { status: 200, description: 'The storage', schema: StorageViewSchema },
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: await runtime.service.storages.updateStorage(actor, id(params, 'storageId'), body),
    }),
  }),
  defineRoute({
    method: 'delete',
    path: '/admin/storages/:storageId',
    operationId: 'deleteStorage',
    summary: 'Delete a storage (409 IN_USE while images or ISOs live on it)',
    tag: 'admin: storages',
    admin: true,
    success: { status: 204, description: 'Deleted' },
    errors: [409],
    handle: async ({ actor, params, runtime }) => {
      await runtime.service.storages.deleteStorage(actor, id(params, 'storageId'));
      return { status: 204 };
    },
  }),
  defineRoute({
    method: 'post',
    path: '/admin/storages/:storageId/bindings',
    operationId: 'bindStorage',
    summary: 'Bind a storage to a hypervisor (idempotent)',
    tag: 'admin: storages',
    admin: true,
    body: BindingBodySchema,
    success: { status: 201, description: 'The binding', schema: StorageBindingSchema },
    handle: async ({ actor, params, body, runtime }) => ({
      status: 201,
      body: await runtime.service.storages.bindHypervisor(actor, id(params, 'storageId'), body.hypervisorId),
    }),
  }),
  defineRoute({
    method: 'delete',
    path: '/admin/storages/:storageId/bindings/:hypervisorId',
    operationId: 'unbindStorage',
    summary: 'Unbind a storage from a hypervisor',
    tag: 'admin: storages',
    admin: true,
    success: { status: 204, description: 'Unbound' },
    errors: [409],
    handle: async ({ actor, params, runtime }) => {
      await runtime.service.storages.unbindHypervisor(actor, id(params, 'storageId'), id(params, 'hypervisorId'));
      return { status: 204 };
    },
  }),
  defineRoute({
    method: 'get',
    path: '/admin/storages/:storageId/health',
    operationId: 'checkStorageHealth',
    summary: 'Check a storage (never fails for an unhealthy backend: see `ok`)',
    tag: 'admin: storages',
    admin: true,
    query: HealthQuerySchema,
    success: { status: 200, description: 'The health', schema: StorageHealthSchema },
    handle: async ({ actor, params, query, runtime }) => ({
      status: 200,
      body: await runtime.service.storages.checkHealth(actor, id(params, 'storageId'), query.hypervisorId),
    }),
  }),
  defineRoute({
    method: 'get',
    path: '/admin/storages/:storageId/browse',
    operationId: 'browseStorage',
    summary: 'The image browser: a page of the files on a storage, classified against the records',
    tag: 'admin: storages',
    admin: true,
    query: BrowseQuerySchema,
    success: { status: 200, description: 'A page of files', schema: BrowsePageSchema },
    errors: [503],
    handle: async ({ actor, params, query, runtime }) => ({
      status: 200,
      body: await runtime.service.storages.browse(actor, id(params, 'storageId'), query),
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/storages/:storageId/reconcile',
    operationId: 'reconcileStorage',
    summary: 'Reconcile a storage against the records (dry run unless `dryRun: false`)',
    tag: 'admin: storages',
    admin: true,
    body: ReconcileOptionsSchema,
    success: { status: 200, description: 'Every finding, with the action taken or simulated', schema: ReconcileResultSchema },
    errors: [503],
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: { findings: await runtime.service.storages.reconcile(actor, id(params, 'storageId'), body) },
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/storages/:storageId/chunk-gc',
    operationId: 'collectStorageGarbage',
    summary: 'Garbage-collect a chunked storage: a `chunk-gc` task deletes chunks no image or running capture names',
    tag: 'admin: storages',
    admin: true,
    body: ChunkGcOptionsSchema,
    success: { status: 202, description: 'The garbage collection task (the running one, if any)', schema: TaskSchema },
    errors: [404, 409],
    handle: async ({ actor, params, body, runtime }) => ({
      status: 202,
      body: await runtime.service.storages.collectGarbage(actor, id(params, 'storageId'), body),
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/storages/:storageId/chunk-verify',
    operationId: 'verifyStorageChunks',
    summary: 'Verify a chunked storage: a `chunk-verify` task re-hashes every chunk; images with broken data go to error',
    tag: 'admin: storages',
    admin: true,
    success: { status: 202, description: 'The verification task (the running one, if any)', schema: TaskSchema },
    errors: [404, 409],
    handle: async ({ actor, params, runtime }) => ({
      status: 202,
      body: await runtime.service.storages.verifyChunks(actor, id(params, 'storageId')),
    }),
  }),
  // ---------- OS images ----------
  defineRoute({
    method: 'get',
    path: '/admin/os-images',
    operationId: 'listOsImages',
    summary: 'Stock OS images',
    tag: 'admin: catalog',
    admin: true,
    query: OsImageListQuerySchema,
    success: { status: 200, description: 'A page of OS images', schema: ImagePageSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.catalog.listOsImages(actor, query) }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/os-images',
    operationId: 'createOsImage',
    summary: 'Add a stock OS image from a file on a template storage',
    tag: 'admin: catalog',
    admin: true,
    body: CreateOsImageInputSchema,
    success: { status: 201, description: 'The OS image', schema: ImageSchema },
    errors: [503],
    handle: async ({ actor, body, runtime }) => ({ status: 201, body: await runtime.service.catalog.createOsImage(actor, body) }),
  }),
  defineRoute({
    method: 'patch',
    path: '/admin/os-images/:imageId',
    operationId: 'updateOsImage',
    summary: 'Edit a stock OS image',
    tag: 'admin: catalog',
    admin: true,
    body: UpdateOsImageInputSchema,
    success: { status: 200, description: 'The OS image', schema: ImageSchema },
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: await runtime.service.catalog.updateOsImage(actor, id(params, 'imageId'), body),
    }),
  }),
  defineRoute({
    method: 'delete',
    path: '/admin/os-images/:imageId',
    operationId: 'deleteOsImage',
    summary: 'Delete a stock OS image (its source file is kept)',
    tag: 'admin: catalog',
    admin: true,
    success: { status: 200, description: 'The deleted OS image', schema: ImageResponseSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: { image: await runtime.service.catalog.deleteOsImage(actor, id(params, 'imageId')) },
    }),
  }),
  // ---------- media groups ----------
  defineRoute({
    method: 'get',
    path: '/admin/media-groups',
    operationId: 'listMediaGroups',
    summary: 'Media groups',
    tag: 'admin: catalog',
    admin: true,
    success: { status: 200, description: 'Media groups', schema: MediaGroupListSchema },
    handle: async ({ actor, runtime }) => ({ status: 200, body: { items: await runtime.service.catalog.listMediaGroups(actor) } }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/media-groups',
    operationId: 'createMediaGroup',
    summary: 'Create a media group',
    tag: 'admin: catalog',
    admin: true,
    body: MediaGroupInputSchema,
    success: { status: 201, description: 'The media group', schema: MediaGroupSchema },
    handle: async ({ actor, body, runtime }) => ({ status: 201, body: await runtime.service.catalog.createMediaGroup(actor, body) }),
  }),
  defineRoute({
    method: 'patch',
    path: '/admin/media-groups/:groupId',
    operationId: 'updateMediaGroup',
    summary: 'Edit a media group',
    tag: 'admin: catalog',
    admin: true,
    body: MediaGroupInputSchema.partial(),
    success: { status: 200, description: 'The media group', schema: MediaGroupSchema },
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: await runtime.service.catalog.updateMediaGroup(actor, id(params, 'groupId'), body),
    }),
  }),
  defineRoute({
    method: 'delete',
    path: '/admin/media-groups/:groupId',
    operationId: 'deleteMediaGroup',
    summary: 'Delete a media group (409 IN_USE while OS images belong to it)',
    tag: 'admin: catalog',
    admin: true,
    success: { status: 204, description: 'Deleted' },
    errors: [409],
    handle: async ({ actor, params, runtime }) => {
      await runtime.service.catalog.deleteMediaGroup(actor, id(params, 'groupId'));
      return { status: 204 };
    },
  }),
  // ---------- ISOs ----------
  defineRoute({
    method: 'get',
    path: '/admin/isos',
    operationId: 'listAllIsos',
    summary: 'All ISOs, any status or visibility',
    tag: 'admin: catalog',
    admin: true,
    query: PageQuerySchema,
    success: { status: 200, description: 'A page of ISOs', schema: IsoPageSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.catalog.listIsos(actor, query) }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/isos',
    operationId: 'registerIso',
    summary: 'Register an ISO file already on a template storage',
    tag: 'admin: catalog',
    admin: true,
    body: IsoInputSchema,
    success: { status: 201, description: 'The ISO', schema: IsoSchema },
    errors: [503],
    handle: async ({ actor, body, runtime }) => ({ status: 201, body: await runtime.service.catalog.registerIso(actor, body) }),
  }),
  defineRoute({
    method: 'put',
    path: '/admin/isos/upload',
    operationId: 'uploadIso',
    summary: 'Upload an ISO: the raw body is streamed to the template storage (never buffered), up to the size limit',
    tag: 'admin: catalog',
    admin: true,
    query: IsoUploadQuerySchema,
    rawBody: { contentTypes: ['application/octet-stream', 'application/x-iso9660-image'] },
    success: { status: 201, description: 'The uploaded ISO (available, with size and checksum)', schema: IsoSchema },
    errors: [409, 413, 415, 422, 503, 507],
    handle: (ctx) => receiveIsoUpload(ctx),
  }),
  defineRoute({
    method: 'patch',
    path: '/admin/isos/:isoId',
    operationId: 'updateIso',
    summary: 'Edit an ISO',
    tag: 'admin: catalog',
    admin: true,
    body: UpdateIsoInputSchema,
    success: { status: 200, description: 'The ISO', schema: IsoSchema },
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: await runtime.service.catalog.updateIso(actor, id(params, 'isoId'), body),
    }),
  }),
  defineRoute({
    method: 'delete',
    path: '/admin/isos/:isoId',
    operationId: 'deleteIso',
    summary: 'Delete an ISO record (with `deleteFile=true`, its file too)',
    tag: 'admin: catalog',
    admin: true,
    query: DeleteIsoQuerySchema,
    success: { status: 204, description: 'Deleted' },
    errors: [503],
    handle: async ({ actor, params, query, runtime }) => {
      await runtime.service.catalog.deleteIso(actor, id(params, 'isoId'), query);
      return { status: 204 };
    },
  }),
  // ---------- settings ----------
  defineRoute({
    method: 'get',
    path: '/admin/locations',
    operationId: 'listLocationSettings',
    summary: 'Every location with settings',
    tag: 'admin: settings',
    admin: true,
    success: { status: 200, description: 'Location settings', schema: LocationSettingsListSchema },
    handle: async ({ actor, runtime }) => ({ status: 200, body: { items: await runtime.service.settings.listLocationSettings(actor) } }),
  }),
  defineRoute({
    method: 'get',
    path: '/admin/locations/:locationId/settings',
    operationId: 'getLocationSettings',
    summary: "A location's settings (defaults when never set)",
    tag: 'admin: settings',
    admin: true,
    success: { status: 200, description: 'The settings', schema: LocationSettingsSchema },
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.settings.getLocationSettings(actor, id(params, 'locationId')),
    }),
  }),
  defineRoute({
    method: 'put',
    path: '/admin/locations/:locationId/settings',
    operationId: 'setLocationSettings',
    summary: "Change a location's settings (a price change applies from now)",
    tag: 'admin: settings',
    admin: true,
    body: LocationSettingsInputSchema,
    success: { status: 200, description: 'The settings', schema: LocationSettingsSchema },
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: await runtime.service.settings.setLocationSettings(actor, id(params, 'locationId'), body),
    }),
  }),
  defineRoute({
    method: 'get',
    path: '/admin/accounts/:accountId/limit',
    operationId: 'getAccountLimit',
    summary: "An account's image cap override",
    tag: 'admin: settings',
    admin: true,
    success: { status: 200, description: 'The override, or null', schema: AccountLimitResponseSchema },
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: { limit: await runtime.service.settings.getAccountLimit(actor, id(params, 'accountId')) },
    }),
  }),
  defineRoute({
    method: 'put',
    path: '/admin/accounts/:accountId/limit',
    operationId: 'setAccountLimit',
    summary: "Set an account's image cap override",
    tag: 'admin: settings',
    admin: true,
    body: AccountLimitBodySchema,
    success: { status: 200, description: 'The override', schema: AccountLimitResponseSchema },
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: { limit: await runtime.service.settings.setAccountLimit(actor, id(params, 'accountId'), body.imageLimit) },
    }),
  }),
  defineRoute({
    method: 'delete',
    path: '/admin/accounts/:accountId/limit',
    operationId: 'removeAccountLimit',
    summary: "Remove an account's cap override (the location default applies)",
    tag: 'admin: settings',
    admin: true,
    success: { status: 204, description: 'Removed' },
    handle: async ({ actor, params, runtime }) => {
      await runtime.service.settings.setAccountLimit(actor, id(params, 'accountId'), null);
      return { status: 204 };
    },
  }),
  // ---------- images and tasks of every account ----------
  defineRoute({
    method: 'get',
    path: '/admin/tasks',
    operationId: 'listAllTasks',
    summary: 'Tasks of every account, with filters',
    tag: 'admin: operations',
    admin: true,
    query: ListTasksQuerySchema,
    success: { status: 200, description: 'A page of tasks', schema: TaskPageSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.images.listTasks(actor, query) }),
  }),
  defineRoute({
    method: 'get',
    path: '/admin/images',
    operationId: 'listAllImages',
    summary: 'Images of every account (custom and stock), with filters; includeDeleted=true adds deleted images (history)',
    tag: 'admin: operations',
    admin: true,
    query: ListImagesQuerySchema,
    success: { status: 200, description: 'A page of images', schema: ImagePageSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.images.listImages(actor, query) }),
  }),
  defineRoute({
    method: 'delete',
    path: '/admin/images/:imageId',
    operationId: 'adminDeleteImage',
    summary: "Delete any account's image",
    tag: 'admin: operations',
    admin: true,
    success: { status: 202, description: 'The image in `deleting` and its task', schema: ImageWithTaskSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 202,
      body: await runtime.service.images.deleteImage(actor, id(params, 'imageId')),
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/images/:imageId/refresh-size',
    operationId: 'refreshImageSize',
    summary: 'Re-stat an image on its backend and correct its billed size',
    tag: 'admin: operations',
    admin: true,
    success: { status: 200, description: 'The image and the finished task', schema: RefreshSizeResponseSchema },
    errors: [503],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.settings.refreshImageSize(actor, id(params, 'imageId')),
    }),
  }),
  defineRoute({
    method: 'get',
    path: '/admin/usage',
    operationId: 'usageReport',
    summary: 'The usage report for one account or all accounts',
    tag: 'admin: operations',
    admin: true,
    query: AdminUsageQuerySchema,
    success: { status: 200, description: 'The report', schema: UsageReportSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.settings.usageReport(actor, query) }),
  }),
  defineRoute({
    method: 'post',
    path: '/admin/recover',
    operationId: 'recover',
    summary:
      'Run a recovery pass now (the reaper of the SDK also runs one at start and every tasks.reaperIntervalMs): fail interrupted tasks, clean leftovers',
    tag: 'admin: operations',
    admin: true,
    success: { status: 200, description: 'What recovery did', schema: RecoveryReportSchema },
    handle: async ({ runtime }) => ({ status: 200, body: await runtime.service.recover() }),
  }),
];

/** Every route of the images API, in matching order. */
export const IMAGES_ROUTES: readonly RouteDefinition[] = [
  ...CUSTOMER_ROUTES,
  ...MOVE_ROUTES,
  ...MOVING_ROUTES,
  ...ADMIN_ROUTES,
  ...HOST_HOOK_ROUTES,
];
