/**
 * Operator routes under `/admin`: image storages and the catalog (from their own modules), then
 * location settings and account limits, images and tasks of every account, the usage report and
 * recovery.
 * @module
 */
import { ListImagesQuerySchema, ListTasksQuerySchema } from '../../src/services/images';
import { LocationSettingsInputSchema } from '../../src/services/settings';
import { ADMIN_CATALOG_ROUTES } from './routes-admin-catalog';
import { ADMIN_STORAGE_ROUTES } from './routes-admin-storages';
import { defineRoute, type RouteDefinition } from './route-types';
import {
  AccountLimitBodySchema,
  AccountLimitResponseSchema,
  AdminUsageQuerySchema,
  ImagePageSchema,
  ImageWithTaskSchema,
  LocationSettingsListSchema,
  LocationSettingsSchema,
  RecoveryReportSchema,
  RefreshSizeResponseSchema,
  TaskPageSchema,
  UsageReportSchema,
} from './schemas';

const id = (params: Record<string, string>, name: string): string => params[name] as string;

/** Operator routes under `/admin` (customers get 403 FORBIDDEN before anything else happens). */
export const ADMIN_ROUTES: readonly RouteDefinition[] = [
  ...ADMIN_STORAGE_ROUTES,
  ...ADMIN_CATALOG_ROUTES,
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
    summary: "Set an account's image cap override (count, and optionally total bytes)",
    tag: 'admin: settings',
    admin: true,
    body: AccountLimitBodySchema,
    success: { status: 200, description: 'The override', schema: AccountLimitResponseSchema },
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: {
        limit: await runtime.service.settings.setAccountLimit(
          actor,
          id(params, 'accountId'),
          body.imageLimit,
          body.imageBytesLimit ?? null,
        ),
      },
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
