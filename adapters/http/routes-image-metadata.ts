/**
 * Routes of an image's own metadata: edit the name, description and capability metadata (PATCH),
 * and protect or unprotect it against deletion. Owners and operators (the service scopes them).
 * @module
 */
import { UpdateImageInputSchema } from '../../src/services/image-metadata';
import { defineRoute, type RouteDefinition } from './route-types';
import { ImageSchema, ProtectionBodySchema } from './schemas';

const id = (params: Record<string, string>, name: string): string => params[name] as string;

/** PATCH /images/:imageId and PUT /images/:imageId/protection. */
export const IMAGE_METADATA_ROUTES: readonly RouteDefinition[] = [
  defineRoute({
    method: 'patch',
    path: '/images/:imageId',
    operationId: 'updateImage',
    summary: "Change an image's name, description or capability metadata (minimum disk, firmware, architecture, cloud-init, OS type)",
    tag: 'images',
    admin: false,
    body: UpdateImageInputSchema,
    success: { status: 200, description: 'The updated image', schema: ImageSchema },
    errors: [409],
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: await runtime.service.metadata.updateImage(actor, id(params, 'imageId'), body),
    }),
  }),
  defineRoute({
    method: 'put',
    path: '/images/:imageId/protection',
    operationId: 'setImageProtection',
    summary: 'Protect an image against deletion (`protected: true`) or lift the protection',
    tag: 'images',
    admin: false,
    body: ProtectionBodySchema,
    success: { status: 200, description: 'The image with its protection', schema: ImageSchema },
    errors: [409],
    handle: async ({ actor, params, body, runtime }) => ({
      status: 200,
      body: await runtime.service.metadata.setProtected(actor, id(params, 'imageId'), body.protected),
    }),
  }),
];
