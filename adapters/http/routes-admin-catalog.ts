/**
 * Operator routes of the catalog: stock OS images, media groups and ISOs (including the streamed
 * ISO upload).
 * @module
 */
import {
  CreateOsImageInputSchema,
  IsoInputSchema,
  MediaGroupInputSchema,
  UpdateIsoInputSchema,
  UpdateOsImageInputSchema,
} from '../../src/services/catalog';
import { defineRoute, type RouteDefinition } from './route-types';
import {
  DeleteIsoQuerySchema,
  ImagePageSchema,
  ImageResponseSchema,
  ImageSchema,
  IsoPageSchema,
  IsoSchema,
  IsoUploadQuerySchema,
  MediaGroupListSchema,
  MediaGroupSchema,
  OsImageListQuerySchema,
  PageQuerySchema,
} from './schemas';
import { receiveIsoUpload } from './upload';

const id = (params: Record<string, string>, name: string): string => params[name] as string;

/** Operator routes of OS images, media groups and ISOs. */
export const ADMIN_CATALOG_ROUTES: readonly RouteDefinition[] = [
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
];
