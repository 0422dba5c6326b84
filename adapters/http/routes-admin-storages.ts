/**
 * Operator routes of image storages: CRUD, hypervisor bindings, health, browse, reconcile, and
 * the garbage collection and verification of chunked storages.
 * @module
 */
import { CreateStorageInputSchema, ReconcileOptionsSchema, UpdateStorageInputSchema } from '../../src/services/storages';
import { ChunkGcOptionsSchema } from '../../src/services/chunked-storage';
import { defineRoute, type RouteDefinition } from './route-types';
import {
  BindingBodySchema,
  BrowsePageSchema,
  BrowseQuerySchema,
  HealthQuerySchema,
  ReconcileResultSchema,
  StorageBindingSchema,
  StorageHealthSchema,
  StorageListQuerySchema,
  StorageListSchema,
  StorageViewSchema,
  TaskSchema,
} from './schemas';

const id = (params: Record<string, string>, name: string): string => params[name] as string;

/** Operator routes of image storages. */
export const ADMIN_STORAGE_ROUTES: readonly RouteDefinition[] = [
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
];
